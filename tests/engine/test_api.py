"""Lookups by time, offset and id; concurrent writers and readers."""

from __future__ import annotations

import threading
import time

import pytest

import rmqstore
from rmqstore.message import GetStatus
from rmqstore.options import PutOptions, RecordInput


def test_offset_for_time_and_earliest_store_time(tmp_path, small_config):
    with rmqstore.open(tmp_path, **small_config) as s:
        assert s.earliest_store_time() is None
        first = s.put("T", b"a")
        time.sleep(0.02)
        mid = s.put("T", b"b")
        s.put("T", b"c")
        assert s.earliest_store_time() == first.store_timestamp
        assert s.offset_for_time("T", 0, 0) == 0
        assert s.offset_for_time("T", 0, mid.store_timestamp) == mid.queue_offset
        assert s.offset_for_time("T", 0, first.store_timestamp + 1) == 1
        assert s.offset_for_time("T", 0, 2 ** 62) == 3
        assert s.offset_for_time("nope", 0, 0) == 0


def test_lookup_by_id_and_offset(tmp_path, small_config):
    with rmqstore.open(tmp_path, **small_config) as s:
        rs = [s.put("T", b"m%d" % i, keys=[f"k{i}"], properties={"color": "red"})
              for i in range(50)]
        for r in rs[::7]:
            m = s.get_by_id(r.msg_id)
            assert m.queue_offset == r.queue_offset and m.msg_id == r.msg_id
            assert m.properties["color"] == "red"
            assert s.get_by_commitlog_offset(r.commitlog_offset).body == m.body
        assert s.get_by_commitlog_offset(10 ** 9) is None
        with pytest.raises(ValueError):
            s.get_by_id("not-hex")
        assert [m.body for m in s.query("T", "k13")] == [b"m13"]
        assert s.query("T", "k13", end_ms=rs[0].store_timestamp - 1) == []
        assert s.query("Other", "k13") == []


def test_get_statuses(tmp_path, small_config):
    with rmqstore.open(tmp_path, **small_config) as s:
        assert s.get("T", 0, 0).status is GetStatus.NO_MATCHED_LOGIC_QUEUE
        for i in range(5):
            s.put("T", b"x", tags="A" if i % 2 else "B")
        assert s.get("T", 0, 5).status is GetStatus.OFFSET_OVERFLOW_ONE
        res = s.get("T", 0, 9)
        assert res.status is GetStatus.OFFSET_OVERFLOW_BADLY and res.next_offset == 0
        res = s.get("T", 0, 0, tags="C")
        assert res.status is GetStatus.NO_MATCHED_MESSAGE and res.next_offset == 5
        res = s.get("T", 0, 0, tags="A || B")
        assert res.status is GetStatus.FOUND and len(res) == 5


def test_concurrent_writers_and_readers(tmp_path, small_config):
    cfg = dict(small_config, commitlog_segment_bytes=1 << 14)
    with rmqstore.open(tmp_path, **cfg) as s:
        s.create_topic("T", 4)
        errors = []
        per = 300

        def writer(q):
            try:
                for i in range(per):
                    if i % 10 == 0:
                        s.put_batch("T", [b"%d-%d-b" % (q, i)] * 3, queue_id=q)
                    else:
                        s.put("T", b"%d-%d" % (q, i), queue_id=q, tags="t" if i % 3 else None)
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)

        def reader(q):
            off = 0
            deadline = time.monotonic() + 20
            while off < per + 2 * (per // 10) and time.monotonic() < deadline:
                res = s.get("T", q, off, 50)
                for k, m in enumerate(res.messages):
                    assert m.queue_offset == off + k
                    assert m.body.startswith(b"%d-" % q)
                off = res.next_offset if res.messages else off

        threads = [threading.Thread(target=writer, args=(q,)) for q in range(4)]
        threads += [threading.Thread(target=reader, args=(q,)) for q in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not errors
        for q in range(4):
            assert s.max_offset("T", q) == per + 2 * (per // 10)


def test_born_host_and_producer_sysflag_pass_through(tmp_path, small_config):
    import zlib

    with rmqstore.open(tmp_path, **dict(small_config, commitlog_segment_bytes=1 << 16)) as s:
        # The broker's entry point: put() takes no producer address or sysflag.
        r4 = s.put_record("T", b"v4", None, RecordInput({}, born_host=("10.1.2.3", 5555))).result
        r6 = s.put_record("T", b"v6", None, RecordInput({}, born_host=("fe80::1", 6666),
                                                         born_timestamp=42)).result
        packed = zlib.compress(b"z" * 5000)
        # The producer compressed it already.
        rc = s.put_record("T", packed, None, RecordInput({}, sysflag=0x1)).result
        with pytest.raises(TypeError):
            s.put("T", b"v", born_host=("10.1.2.3", 5555))
        m4, m6, mc = (s.get_by_commitlog_offset(r.commitlog_offset) for r in (r4, r6, rc))
        assert m4.born_host == ("10.1.2.3", 5555) and m4.sysflag & 0x10 == 0
        assert m6.born_host == ("fe80::1", 6666) and m6.sysflag & 0x10
        assert m6.born_timestamp == 42 and m6.body == b"v6"
        assert m6.store_host == ("127.0.0.1", 10911)
        assert bytes(mc.body_view) == packed and mc.body == b"z" * 5000
    with rmqstore.open(tmp_path, **dict(small_config, commitlog_segment_bytes=1 << 16)) as s:
        assert s.get("T", 0, 0, 10).messages[1].born_host == ("fe80::1", 6666)


def test_bodies_may_be_any_bytes_like(tmp_path, small_config):
    with rmqstore.open(tmp_path, **small_config) as s:
        s.put("T", b"a", queue_id=0)  # the next puts take the hot path's checks
        s.put("T", bytearray(b"b"), queue_id=0)
        s.put("T", memoryview(b"xcx")[1:2], queue_id=0)
        s.put_batch("T", [bytearray(b"d"), memoryview(b"e")], queue_id=0)
        assert [m.body for m in s.get("T", 0, 0).messages] == [b"a", b"b", b"c", b"d", b"e"]
        with pytest.raises(TypeError):
            s.put("T", "text", queue_id=0)
        assert s.max_offset("T", 0) == 5


def test_put_options_value_or_keywords(tmp_path, small_config):
    with rmqstore.open(tmp_path, **small_config) as s:
        opts = PutOptions(tags="A", keys=["k1", "k2"], properties={"p": "1"}, flag=3,
                          born_timestamp=7, reconsume_times=2)
        s.create_topic("T", 2)
        by_value = [s.put("T", b"a", queue_id=0, options=opts),
                    s.put_async("T", b"b", queue_id=0, options=opts).result]
        by_keywords = s.put("T", b"c", queue_id=0, tags="A", keys=["k1", "k2"],
                            properties={"p": "1"}, flag=3, born_timestamp=7, reconsume_times=2)
        for r in (*by_value, by_keywords):
            m = s.get_by_commitlog_offset(r.commitlog_offset)
            assert (m.tags, m.keys, m.properties["p"]) == ("A", ["k1", "k2"], "1")
            assert (m.flag, m.born_timestamp, m.reconsume_times) == (3, 7, 2)
        assert len(s.query("T", "k2")) == 3
        assert len(s.get("T", 0, 0, 10, tags="A").messages) == 3
        batch = s.put_batch("T", [b"d", b"e"], queue_id=1, options=PutOptions(tags="B"))
        assert [m.tags for m in s.get("T", 1, batch.first_queue_offset).messages] == ["B", "B"]
        with pytest.raises(TypeError):
            s.put("T", b"x", options=opts, tags="A")  # a value or keywords, not both
        with pytest.raises(TypeError):
            s.put("T", b"x", sysflag=1)  # the broker's, on put_record
        with pytest.raises(TypeError):
            s.put_batch("T", [b"x"], born_timestamp=1)  # a batch has the store's time
