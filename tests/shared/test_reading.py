"""Reading a shared store: a reader catches its files up with what the others wrote the quick
way while the ends move inside its last files, the long way across files, and reads each
message once, in order; a consumer's read after a wake-up and its acks do no work twice.

Two opens of one store in one process stand for two processes (flock locks belong to open
file descriptions, so they share the store as two processes would)."""

from __future__ import annotations

from pathlib import Path

import pytest

import rmqstore
from rmqstore.shared.control import Control

# the log rolls every ~300 records, the queue every 100: both roll many times below
SMALL = dict(commitlog_segment_bytes=64 << 10, consumequeue_units=100, index_slots=100,
             index_entries=400)


def test_two_stores_writing_and_reading_in_turns_see_every_message_once(tmp_path: Path) -> None:
    with rmqstore.open(tmp_path, shared=True, **SMALL) as a, \
            rmqstore.open(tmp_path, shared=True, **SMALL) as b:
        a.create_topic("T", 1)
        sent: list[bytes] = []
        read = {id(a): 0, id(b): 0}
        for turn in range(60):  # 60 turns of 1..13 puts: 1,500 records, rolls mid-turn
            writer, reader = (a, b) if turn % 2 else (b, a)
            for k in range(1 + turn % 13):
                body = b"%d-%d-" % (turn, k) + bytes(180)
                writer.put("T", body, queue_id=0)
                sent.append(body)
            for store in (reader, writer):  # the reader catches up, then the writer reads too
                got = store.get("T", 0, read[id(store)], 1000)
                assert [m.body for m in got.messages] == sent[read[id(store)]:]
                assert [m.queue_offset for m in got.messages] == \
                    list(range(read[id(store)], len(sent)))
                read[id(store)] = got.next_offset
        assert a.max_offset("T", 0) == b.max_offset("T", 0) == len(sent)
    with rmqstore.open(tmp_path, **SMALL) as alone:  # and on disk, as one process reads it
        got = alone.get("T", 0, 0, 2000)
        assert [m.body for m in got.messages] == sent


def test_a_consumer_reads_once_per_wake_up(tmp_path: Path, monkeypatch) -> None:
    """A consumer that read up to the queue's end waits before it reads again: a read that
    finds nothing, once per message, was a third of a woken reader's CPU."""
    with rmqstore.open(tmp_path, shared=True, **SMALL) as w, \
            rmqstore.open(tmp_path, shared=True, **SMALL) as r:
        q = rmqstore.Queue(r, "T")
        reads = []
        get = r.get
        monkeypatch.setattr(r, "get", lambda *a, **k: reads.append(a) or get(*a, **k))
        with q.consumer("g") as c:
            assert c.get(timeout=0.05) is None
            for i in range(20):
                w.put("T", b"%d" % i, queue_id=0)
                msg = c.get(timeout=5)
                assert msg is not None and msg.body == b"%d" % i
                c.ack(msg)
            assert c.get(timeout=0.05) is None
        assert len(reads) == 1 + 20  # the first look, then one per message


def test_acks_look_the_offset_slot_up_once(tmp_path: Path, monkeypatch) -> None:
    found = []
    find = Control.find_offset
    monkeypatch.setattr(Control, "find_offset",
                        lambda self, *a, **k: found.append(a) or find(self, *a, **k))
    with rmqstore.open(tmp_path, shared=True, **SMALL) as store:
        q = rmqstore.Queue(store, "T")
        for i in range(50):
            q.put(b"%d" % i)
        with q.consumer("g") as c:
            for _ in range(50):
                c.ack(c.get(timeout=5))
        assert store.committed_offset("g", "T", 0) == 50
        assert len(found) <= 3  # the consumer's start, the slot's creation, one lookup


def test_a_commit_past_this_process_view_is_checked_against_the_others(tmp_path: Path) -> None:
    """An ack looks at this process's view of the queue first; an offset past it is checked
    against what the others published, and refused only past that."""
    with rmqstore.open(tmp_path, shared=True, **SMALL) as a, \
            rmqstore.open(tmp_path, shared=True, **SMALL) as b:
        a.create_topic("T", 1)
        a.put("T", b"x", queue_id=0)
        assert b.get("T", 0, 0).next_offset == 1  # b's view: one message
        for _ in range(4):
            a.put("T", b"y", queue_id=0)
        b.commit_offset("g", "T", 0, 5)  # past b's view, within what a published
        assert a.committed_offset("g", "T", 0) == 5
        with pytest.raises(rmqstore.InvalidQueueError, match="outside T/0's 0..5"):
            b.commit_offset("g", "T", 0, 6)


def test_a_consumer_closed_during_its_wait_returns_without_waiting_again(tmp_path: Path,
                                                                          monkeypatch) -> None:
    """get(timeout=None) waits in rounds of 0.5 s: one that ends with the consumer closed
    returns at once, not after another round."""
    with rmqstore.open(tmp_path, shared=True, **SMALL) as store:
        q = rmqstore.Queue(store, "T")
        q.put(b"0")
        with q.consumer("g") as c:
            c.ack(c.get(timeout=5))  # read up to the end: the next get waits first
            waits = []

            def wait(*args) -> bool:  # a round of the wait that ends with nothing, closed
                waits.append(args)
                c.close()
                return False

            monkeypatch.setattr(store, "wait_for_message", wait)
            assert c.get() is None
            assert len(waits) == 1




def test_a_stale_append_reattaches_a_queue_writer_that_is_off_the_file(tmp_path: Path) -> None:
    """The state a writer process of test_sync_flush was found in (1 run in ~6): its native
    queue writer on no file (cq NULL, at unit 0), its Python view of the queue's last file
    caught up to the published end. Its append answers STALE; the quick catch-up found the
    end inside that file and moved nothing else, so every retry was STALE and the put failed
    ("append refused with code -6 after rolling"). The STALE catch-up re-attaches."""
    with rmqstore.open(tmp_path, shared=True) as a, rmqstore.open(tmp_path, shared=True) as b:
        a.create_topic("T", 1)
        b.put("T", b"b", queue_id=0)
        for _ in range(3):
            a.put("T", b"a", queue_id=0)
        b.get("T", 0, 0, 10)  # b's view of the file caught up to the end
        b.consume_queues.get("T", 0).writer.detach(0)  # b's native writer off the file
        assert b.put("T", b"b", queue_id=0).queue_offset == 4
        assert [m.body for m in a.get("T", 0, 0, 10).messages] == [b"b", b"a", b"a", b"a", b"b"]
