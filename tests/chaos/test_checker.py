"""The chaos checkers against histories with the faults they exist to find: an acknowledged
message missing from the drain, a queue's acknowledgements out of order, a SEND_OK from a master
of an older epoch for a send started after a newer epoch was decided, epochs decided out of
order or one epoch with two masters, and the RTO and failures of a fault; and the controllers'
decisions read from their logs. No cluster: the histories are written here."""

from __future__ import annotations

from pathlib import Path

from rmqstore.chaos.checker import Decision, check, decisions, log_digest
from rmqstore.chaos.history import Dequeue, Enqueue, Fault, History

A, B = "10.0.0.1:19877", "10.0.0.2:19877"


def ok(worker: int, key: str, start: float, end: float, broker: str = A, epoch: int = 1,
       offset: int = 0) -> Enqueue:
    return Enqueue(worker, key, "ok", start, end, broker, epoch, worker, offset)


def drained(*oks: Enqueue) -> list[Dequeue]:
    return [Dequeue(e.key, e.worker, e.offset or 0, B) for e in oks]


def test_a_clean_history_passes_and_the_rto_is_measured() -> None:
    h = History(0.0)
    sends = [ok(0, "a", 0.0, 0.1, offset=0), ok(0, "b", 1.0, 1.1, offset=1),
             ok(0, "c", 4.0, 4.2, B, 2, offset=2)]
    failed = Enqueue(0, "x", "fail", 2.0, 3.0, error="RemotingTimeout: no response")
    h.enqueues = [*sends, failed]
    h.dequeues = drained(*sends)
    h.faults = [Fault("kill-master", A, 1.5, heal=2.5, epoch_before=1)]
    r = check(h, [Decision(0.0, "b", 1, 1), Decision(3.0, "b", 2, 2)])
    assert r.ok and r.acked == 3 and r.failed == 1 and r.lost == []
    (f,) = r.faults
    assert f["rto_s"] == 2.7 and f["failed_sends"] == 1  # first SEND_OK of epoch 2 at 4.2
    assert f["failures"] == ["1 x RemotingTimeout: no response"]


def test_a_send_failed_by_the_next_fault_is_charged_to_it() -> None:
    """An etcd kill fails no send; a send begun during it, still waiting when the next fault
    (a master kill) reset its connection, is the master kill's failure."""
    h = History(0.0)
    sends = [ok(0, "a", 0.0, 0.1, offset=0), ok(0, "c", 7.0, 7.2, B, 2, offset=1)]
    reset = Enqueue(0, "x", "fail", 4.9, 5.0, error="ConnectionClosed: [Errno 104] reset")
    h.enqueues = [*sends, reset]
    h.dequeues = drained(*sends)
    h.faults = [Fault("kill-etcd-leader", "n1", 1.0, heal=1.5, epoch_before=1),
                Fault("kill-master", A, 4.95, heal=6.0, epoch_before=1)]
    r = check(h, [Decision(0.0, "b", 1, 1), Decision(5.5, "b", 2, 2)])
    etcd, master = r.faults
    assert etcd["failed_sends"] == 0 and not etcd["role_changed"]
    assert master["failed_sends"] == 1
    assert master["rto_s"] == 2.25


def test_an_acknowledged_message_missing_from_the_drain_is_lost() -> None:
    h = History(0.0)
    sends = [ok(0, "a", 0.0, 0.1), ok(0, "b", 1.0, 1.1, offset=1)]
    h.enqueues, h.dequeues = sends, drained(sends[0])
    r = check(h, [Decision(0.0, "b", 1, 1)])
    assert r.lost == ["b"] and not r.ok


def test_acknowledgements_out_of_queue_order() -> None:
    h = History(0.0)
    first, second = ok(0, "a", 0.0, 0.1, offset=5), ok(0, "b", 1.0, 1.1, offset=4)
    h.enqueues, h.dequeues = [first, second], drained(first, second)
    r = check(h, [Decision(0.0, "b", 1, 1)])
    assert r.order_violations and not r.ok


def test_a_stale_masters_ack_after_a_newer_epoch() -> None:
    h = History(0.0)
    before = ok(0, "a", 1.0, 1.1)  # epoch 1 still the newest when it was sent: fine
    late = ok(1, "b", 3.5, 3.6)  # sent after epoch 2 was decided, acked by epoch 1's master
    h.enqueues, h.dequeues = [before, late], drained(before, late)
    r = check(h, [Decision(0.0, "b", 1, 1), Decision(3.0, "b", 2, 2)])
    assert len(r.stale_acks) == 1 and "b: SEND_OK by epoch 1" in r.stale_acks[0]
    assert not r.ok


def test_epochs_out_of_order_or_with_two_masters() -> None:
    h = History(0.0)
    a, b = ok(0, "a", 0.0, 0.1, A, 1), ok(1, "b", 0.2, 0.3, B, 1)  # epoch 1 from two brokers
    h.enqueues, h.dequeues = [a, b], drained(a, b)
    r = check(h, [Decision(0.0, "b", 1, 1), Decision(1.0, "b", 2, 1), Decision(2.0, "b", 1, 1)])
    assert any("decided after" in v for v in r.epoch_violations)
    assert any("masters 1 and 2" in v for v in r.epoch_violations)
    assert any("acknowledged by" in v for v in r.epoch_violations)


def test_decisions_are_read_from_the_controllers_logs(tmp_path: Path) -> None:
    log = tmp_path / "namesrv.log"
    log.write_text(
        "2026-01-01 00:00:00,000 INFO rmqstore.server.controller.service: controller: broker-a "
        "master 2 epoch 3 (in sync [2]) decided at 1000500 ms\n"
        "2026-01-01 00:00:00,000 INFO rmqstore.server.controller.service: controller: broker-z "
        "master 1 epoch 9 (in sync [1]) decided at 1000600 ms\n")
    assert decisions([log, tmp_path / "absent.log"], "broker-a", 1000.0) == [
        Decision(0.5, "broker-a", 2, 3)]


def test_the_replica_digest_sees_one_byte_and_stops_at_the_end(tmp_path: Path) -> None:
    def store(name: str, data: bytes) -> Path:
        root = tmp_path / name
        (root / "commitlog").mkdir(parents=True)
        (root / "commitlog" / "00000000000000000000").write_bytes(data[:8])
        (root / "commitlog" / "00000000000000000008").write_bytes(data[8:] + b"\0" * 4)
        return root
    a = store("a", b"0123456789abcdef")
    b = store("b", b"0123456789abcdeX")
    assert log_digest(a, 16) != log_digest(b, 16)
    assert log_digest(a, 15) == log_digest(b, 15)  # only what both hold up to the end counts
