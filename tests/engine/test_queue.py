"""The everyday API: Queue, Consumer, acks that survive a restart."""

from __future__ import annotations

import threading
import time

import rmqstore


def test_consumer_resumes_at_lowest_unacked(tmp_path, small_config):
    with rmqstore.Queue(tmp_path, "jobs", **small_config) as q:
        for i in range(10):
            q.put(b"job-%d" % i)
        assert len(q) == 10
        with q.consumer("workers") as c:
            msgs = [c.get(timeout=0) for _ in range(5)]
            assert [m.body for m in msgs] == [b"job-%d" % i for i in range(5)]
            c.ack(msgs[0])
            c.ack(msgs[1])
            c.ack(msgs[3])  # out of order: the committed offset stops before job-2
    with rmqstore.Queue(tmp_path, "jobs", **small_config) as q:
        with q.consumer("workers") as c:
            assert c.get(timeout=0).body == b"job-2"
        with q.consumer("others") as c:  # another group starts from the beginning
            assert c.get(timeout=0).body == b"job-0"


def test_get_times_out_then_wakes_on_put(tmp_path, small_config):
    with rmqstore.Queue(tmp_path, "jobs", **small_config) as q:
        c = q.consumer("g")
        t0 = time.monotonic()
        assert c.get(timeout=0.05) is None
        assert time.monotonic() - t0 >= 0.05
        got = []
        t = threading.Thread(target=lambda: got.append(c.get(timeout=10)))
        t.start()
        time.sleep(0.05)
        q.put(b"late")
        t.join(10)
        assert got and got[0].body == b"late"


def test_iteration_stops_on_close(tmp_path, small_config):
    with rmqstore.Queue(tmp_path, "jobs", **small_config) as q:
        for i in range(3):
            q.put(b"%d" % i)
        c = q.consumer("g")
        seen = []
        for msg in c:
            seen.append(msg.body)
            c.ack(msg)
            if len(seen) == 3:
                c.close()
        assert seen == [b"0", b"1", b"2"]
        assert q.store.committed_offset("g", "jobs", 0) == 3


def test_queue_on_an_open_store_leaves_it_open(tmp_path, small_config):
    with rmqstore.open(tmp_path, **small_config) as store:
        with rmqstore.Queue(store, "a") as q:
            q.put(b"x")
        assert store.put("a", b"y", queue_id=0).queue_offset == 1


def test_compressed_bodies_read_back(tmp_path, small_config):
    cfg = dict(small_config, commitlog_segment_bytes=1 << 16)
    big = b"abcdefgh" * 2000
    for codec in ("zlib", "lz4"):
        root = tmp_path / codec
        with rmqstore.open(root, compression=codec, **cfg) as s:
            r = s.put("T", big)
            m = s.get("T", 0, r.queue_offset).messages[0]
            assert m.sysflag & 1
            assert len(m.body_view) < len(big) // 4
            assert m.body == big
            assert s.get_by_id(r.msg_id).body == big
