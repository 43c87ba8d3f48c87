"""Frames at random and mutated from valid SEND, PULL, admin and NameServer requests (JSON and
binary headers), thrown at a real `rmqstore serve` with a fixed seed (tests/fuzz_frames.py).
After every batch the server must still answer well-formed requests on both ports, and every
send it acknowledged, fuzzed or not, must read back byte for byte; no reply may carry an
exception's text, and memory stays flat."""

from __future__ import annotations

from tests.fuzz_frames import BatchResult, FuzzSession

from .conftest import ServeFactory

SEED = 20260
BATCHES = 18
FRAMES_PER_BATCH = 2_000
# small store files; caps so that fuzzed topic names and queue ids cannot fill the disk
CONF = "maxTopicNums=300\nmaxQueueNumsPerBroker=800\nmaxQueueNumsPerTopic=16\n"
STORE = ("--store", "commitlog_segment_bytes=16777216", "--store", "consumequeue_units=2000",
         "--store", "index_slots=4000", "--store", "index_entries=16000")


def test_fuzzed_frames_leave_the_server_answering_and_the_acked_messages_intact(
        serve: ServeFactory) -> None:
    srv = serve(CONF, store_args=STORE)
    session = FuzzSession(srv.broker_address, srv.namesrv_address, SEED)
    session.prepare()
    base_rss = srv.rss_bytes()
    total = BatchResult()
    for _ in range(BATCHES):
        result = session.batch(FRAMES_PER_BATCH)
        assert srv.proc.running, srv.proc.log()[-3000:]
        assert not result.bad_remarks, result.bad_remarks[:3]
        session.check(result)
        total.merge(result)
    read = sum(a.topic not in session.reconfigured for a in total.acked)
    print(f"fuzz: {total.frames} frames on {total.connections} connections, "
          f"{total.replies} replies, {read} acked sends read back ({total.compressed} flagged "
          f"compressed; {len(total.acked) - read} in reconfigured topics not read), "
          f"RSS {srv.rss_bytes() >> 20} MiB (from {base_rss >> 20})")
    assert total.frames == BATCHES * FRAMES_PER_BATCH
    assert read > 1000, read  # the valid share was stored and checked
    assert total.compressed > 100, total.compressed  # compressed bodies among them
    assert not session.verify(total.acked)  # all still there at the end
    assert srv.rss_bytes() - base_rss < 64 << 20
