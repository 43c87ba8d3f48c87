"""Delay levels (rmqstore.delay_levels): placement in SCHEDULE_TOPIC_XXXX, delivery when due, the
progress file, restarts, and a model of which messages a tick delivers."""

from __future__ import annotations

import asyncio
import tempfile
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rmqstore
from rmqstore.delay_levels import (
    DEFAULT_DELAY_LEVELS,
    SCHEDULE_TOPIC,
    ScheduleService,
    parse_delay_levels,
)
from rmqstore.options import PutOptions
from rmqstore.protocol.fastjson import loads as loads_fastjson

LADDER = "100ms 200ms 300ms"


def test_parse_default_ladder_and_units():
    delays = parse_delay_levels(DEFAULT_DELAY_LEVELS)
    assert len(delays) == 18
    assert delays[:5] == (1000, 5000, 10_000, 30_000, 60_000)
    assert delays[-1] == 2 * 3_600_000
    assert parse_delay_levels("250ms 2s 1d") == (250, 2000, 86_400_000)
    for bad in ("", "5", "1x", "ms", "-1s", "1.5s"):
        with pytest.raises(ValueError):
            parse_delay_levels(bad)


def test_placement_properties_and_unit_tags_code(tmp_path, small_config):
    with rmqstore.open(tmp_path, **small_config) as store:
        store.create_topic("orders", 4)
        sched = ScheduleService(store, LADDER)
        before = int(time.time() * 1000)
        p = sched.put_delayed("orders", b"x", 2, queue_id=3, tags="A")
        after = int(time.time() * 1000)
        r = p.result
        assert r.queue_id == 1  # level 2 -> queue 1
        m = store.get(SCHEDULE_TOPIC, 1, 0).messages[0]
        assert m.properties["REAL_TOPIC"] == "orders"
        assert m.properties["REAL_QID"] == "3"
        assert m.properties["DELAY"] == "2"
        # The unit's tags code is the delivery time, not the tag's hash.
        _, _, tags_code = store.consume_queues.get(SCHEDULE_TOPIC, 1).unit(0)
        assert before + 200 <= tags_code <= after + 200
        # A level past the ladder is its last level (CommitLog.putMessage clamps it).
        p = sched.put_delayed("orders", b"y", 99, queue_id=0)
        assert p.result.queue_id == 2
        assert store.get(SCHEDULE_TOPIC, 2, 0).messages[0].properties["DELAY"] == "3"
        with pytest.raises(ValueError):
            sched.put_delayed("orders", b"z", 0)


def test_a_level_of_days_stamps_its_delivery_time(tmp_path, small_config):
    """A level of 30 days (past 2**31 ms) stamps the delivery time as a level of seconds does:
    the native queue state keeps the delay in 64 bits."""
    with rmqstore.open(tmp_path, **small_config) as store:
        store.create_topic("orders", 4)
        sched = ScheduleService(store, "1s 30d")
        before = int(time.time() * 1000)
        assert sched.put_delayed("orders", b"x", 2, queue_id=0).result.queue_id == 1
        after = int(time.time() * 1000)
        _, _, tags_code = store.consume_queues.get(SCHEDULE_TOPIC, 1).unit(0)
        assert before + 30 * 86_400_000 <= tags_code <= after + 30 * 86_400_000


def test_delivery_restores_the_message(tmp_path):
    with rmqstore.open(tmp_path, background=False, compression="zlib",
                       compress_over_bytes=64) as store:
        store.create_topic("orders", 3)
        sched = ScheduleService(store, LADDER)
        big = b"a" * 5000
        # The broker's entry point (a retry handed back): the producer's address kept.
        record = PutOptions(tags="T1", keys=["k1", "k2"], properties={"color": "red"}, flag=7,
                            born_timestamp=1234, reconsume_times=2).record()
        record.born_host = ("10.0.0.9", 4321)
        p = sched.put_delayed_record("orders", big, 1, 2, record)
        stored_at = p.result.store_timestamp
        assert sched.tick(stored_at + 99) == 0
        assert store.max_offset("orders", 2) == 0
        assert sched.tick(stored_at + 100) == 1
        m = store.get("orders", 2, 0).messages[0]
        assert m.body == big
        assert m.tags == "T1" and m.keys == ["k1", "k2"]
        props = m.properties
        assert "DELAY" not in props
        assert props["color"] == "red"
        assert props["REAL_TOPIC"] == "orders" and props["REAL_QID"] == "2"  # kept, as 4.x
        assert (m.flag, m.born_timestamp, m.reconsume_times) == (7, 1234, 2)
        assert m.born_host == ("10.0.0.9", 4321)
        assert [x.commitlog_offset for x in store.query("orders", "k2")] == [m.commitlog_offset]
        assert sched.tick(stored_at + 10_000) == 0  # nothing twice
        sched.close()


def test_progress_file_shape_and_restart(tmp_path, small_config):
    with rmqstore.open(tmp_path, **small_config) as store:
        sched = ScheduleService(store, LADDER)
        t0 = sched.put_delayed("t", b"1", 1, queue_id=0).result.store_timestamp
        sched.put_delayed("t", b"3", 3, queue_id=0)
        assert sched.tick(t0 + 150) == 1
        sched.close()
    text = (tmp_path / "config" / "delayOffset.json").read_text()
    assert '"1"' not in text  # fastjson's bare integer keys
    assert loads_fastjson(text) == {"offsetTable": {"1": 1}}
    with rmqstore.open(tmp_path, **small_config) as store:
        sched = ScheduleService(store, LADDER)
        assert sched.offsets == {1: 1}
        assert sched.tick(t0 + 150) == 0  # level 1 not delivered again
        assert sched.tick(t0 + 10_000) == 1
        assert [m.body for m in store.get("t", 0, 0).messages] == [b"1", b"3"]
        sched.close()


def test_message_due_while_down_is_delivered_after_restart(tmp_path, small_config):
    with rmqstore.open(tmp_path, **small_config) as store:
        sched = ScheduleService(store, "50ms")
        sched.put_delayed("t", b"late", 1, queue_id=0)
        sched.close()
    time.sleep(0.1)
    with rmqstore.open(tmp_path, **small_config) as store:
        sched = ScheduleService(store, "50ms")
        assert sched.tick() == 1
        assert store.get("t", 0, 0).messages[0].body == b"late"
        sched.close()


def test_bad_progress_is_clamped_and_undeliverable_passed_over(tmp_path, small_config):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "delayOffset.json").write_text('{"offsetTable":{1:500}}')
    with rmqstore.open(tmp_path, **small_config) as store:
        # A message without REAL_TOPIC (written straight into the queue) cannot be delivered.
        store.put(SCHEDULE_TOPIC, b"orphan", queue_id=0)
        sched = ScheduleService(store, LADDER)
        sched.put_delayed("t", b"ok", 1, queue_id=0)
        assert sched.offsets == {1: 500}
        # correctDelayOffset: 500 is past the queue's end, so it becomes the end (2).
        assert sched.tick(int(time.time() * 1000) + 1000) == 0
        assert sched.offsets == {1: 2}
        sched._offsets[1] = 0
        assert sched.tick(int(time.time() * 1000) + 1000) == 1
        assert sched.offsets == {1: 2}
        assert [m.body for m in store.get("t", 0, 0).messages] == [b"ok"]
        assert store.get(SCHEDULE_TOPIC, 0, 0).messages[0].body == b"orphan"  # left in place
        [aside] = store.get("rmq_sys_set_aside", 0, 0).messages  # and copied aside, once
        assert aside.body == b"orphan" and aside.properties["SET_ASIDE_BY"] == "delay-levels"
        assert aside.properties["SET_ASIDE_FROM"] == f"{SCHEDULE_TOPIC}:0:0"
        assert sched.set_aside.count == 1
        sched.close()


def test_thread_runner_delivers_no_earlier_than_the_delay(tmp_path, small_config):
    with rmqstore.open(tmp_path, **small_config) as store:
        sched = ScheduleService(store, "150ms")
        sched.start()
        try:
            stored = sched.put_delayed("t", b"x", 1, queue_id=0).result.store_timestamp
            assert store.wait_for_message("t", 0, 0, timeout=5)
            m = store.get("t", 0, 0).messages[0]
            assert m.store_timestamp >= stored + 150
        finally:
            sched.stop()
        assert loads_fastjson((tmp_path / "config" / "delayOffset.json").read_text()) == \
            {"offsetTable": {"1": 1}}


def test_async_runner_reports_delivered_queues(tmp_path, small_config):
    async def scenario(store):
        sched = ScheduleService(store, "50ms 100ms")
        seen: list[tuple[str, int]] = []
        arrived = asyncio.Event()

        def on_delivered(topic, qid):
            seen.append((topic, qid))
            if len(seen) == 2:
                arrived.set()

        task = asyncio.ensure_future(sched.run(on_delivered))
        store.create_topic("b", 2)
        sched.put_delayed("a", b"1", 1, queue_id=0)
        sched.put_delayed("b", b"2", 2, queue_id=1)
        await asyncio.wait_for(arrived.wait(), 5)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        sched.close()
        return seen

    with rmqstore.open(tmp_path, **small_config) as store:
        assert asyncio.run(scenario(store)) == [("a", 0), ("b", 1)]


# -- model: which messages a tick delivers ---------------------------------------------------

_op = st.one_of(
    st.tuples(st.just("put"), st.integers(1, 4)),  # level 4 is past the ladder: clamped to 3
    st.tuples(st.just("tick"), st.integers(0, 250)),  # advance the fake clock by ms
    st.tuples(st.just("restart"), st.just(0)),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_op, max_size=30))
def test_model_delivers_exactly_the_due_messages_once(ops):
    delays = parse_delay_levels(LADDER)
    with tempfile.TemporaryDirectory() as d:
        cfg = {"background": False, "commitlog_segment_bytes": 8192, "consumequeue_units": 8}
        store = rmqstore.open(d, **cfg)
        sched = ScheduleService(store, LADDER)
        pending: list[tuple[int, bytes]] = []  # (due ms, body) not yet delivered
        delivered: list[bytes] = []
        now = int(time.time() * 1000)
        try:
            for i, (kind, arg) in enumerate(ops):
                if kind == "put":
                    body = b"m%d" % i
                    r = sched.put_delayed("t", body, arg, queue_id=0).result
                    pending.append((r.store_timestamp + delays[min(arg, 3) - 1], body))
                elif kind == "tick":
                    now = max(now + arg, int(time.time() * 1000))
                    due = [b for t, b in pending if t <= now]
                    assert sched.tick(now) == len(due)
                    pending = [(t, b) for t, b in pending if t > now]
                    delivered.extend(due)
                    got = [m.body for m in store.get("t", 0, 0, 1000).messages]
                    assert sorted(got) == sorted(delivered)  # each once, nothing early
                else:
                    sched.close()
                    store.close()
                    store = rmqstore.open(d, **cfg)
                    sched = ScheduleService(store, LADDER)
        finally:
            sched.close()
            store.close()


def test_unreadable_progress_is_a_clear_error(tmp_path, small_config):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "delayOffset.json").write_text('{"offsetTable":{"1":"many"}}')
    with rmqstore.open(tmp_path, **small_config) as store, \
            pytest.raises(ValueError, match="delayOffset.json"):
        ScheduleService(store, LADDER)
