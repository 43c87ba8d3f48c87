"""The timer store (rmqstore.timer): delivery at any time, checked against a model with a fake
clock, across restarts and crashes, and at a million pending entries."""

from __future__ import annotations

import dataclasses
import struct

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rmqstore import open_store
from rmqstore.timer import TIMER_TOPIC, TimerConfig, TimerSchedule, TimerService
from rmqstore.timer.checkpoint import FIELDS
from rmqstore.timer.timerlog import RECORD, RECORD_SIZE
from rmqstore.timer.wheel import SLOT

T0 = 1_700_000_000_000
P = 10  # precision_ms of the small wheel below
# 8 slots of 10 ms: an 80 ms window, so delays of a few hundred ms roll several times; tiny
# timer-log segments, so delivered ones get deleted while others are pending.
SMALL = TimerConfig(precision_ms=P, wheel_slots=8, log_segment_bytes=RECORD_SIZE * 4,
                    flush_interval_ms=50, max_delay_ms=10_000)
STORE = {"commitlog_segment_bytes": 1 << 16, "consumequeue_units": 64, "index_enable": False,
         "background": False}


class Clock:
    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


class Harness:
    """A store plus its timer service, reopened at will, and the delivered messages."""

    def __init__(self, path, config: TimerConfig = SMALL) -> None:
        self.path, self.config, self.clock = path, config, Clock()
        self.seen = 0
        self.open()

    def open(self) -> None:
        self.store = open_store(self.path, **STORE)
        self.timers = TimerService(self.store, self.config, clock=self.clock)

    def close(self) -> None:
        self.timers.close()
        self.store.close()

    def crash(self) -> None:
        """The timer files are left as they are, without a final persist."""
        self.timers.schedule.abandon()
        self.timers._closed = True
        self.store.close()

    def tick(self, step_ms: int):
        self.clock.now += step_ms
        return self.timers.tick(self.clock.now)

    def delivered(self) -> list[tuple[int, dict[str, str]]]:
        """New messages in topic T since the last call: (id, properties)."""
        got = self.store.get("T", 0, self.seen, 10_000) if self.store.max_offset("T", 0) else []
        out = [(int(m.body), m.properties) for m in got]
        self.seen += len(out)
        return out


def slot_end(deliver_ms: int) -> int:
    return deliver_ms // P * P + P


def test_layouts_known_bytes():
    assert RECORD.pack(-1, 1700000000120, 1700000000123, 4096, 310, 0).hex() == (
        "ffffffffffffffff0000018bcfe568780000018bcfe5687b00000000000010000000013600000000")
    assert SLOT.pack(1700000000120, 80, 3, 0).hex() == (
        "0000018bcfe5687800000000000000500000000300000000")
    assert FIELDS.pack(1700000000100, 12, 120, 20, 1 << 21, 1, 1).hex() == (
        "0000018bcfe56864000000000000000c000000000000007800000014002000000000000100000001")


actions = st.lists(st.one_of(
    st.tuples(st.just("put"), st.integers(-50, 700)),   # delay; <= 0 is stored at once
    st.tuples(st.just("tick"), st.integers(0, 130)),    # clock step, then a tick
    st.tuples(st.just("restart"), st.just(0)),
), max_size=60)


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=actions)
# A timer-log segment loaded at open, then appended to, was deleted while older records in it
# still waited (its newest slot was taken from the appends alone).
@example(actions=[("put", 130), ("tick", 34), ("put", 76), ("tick", 46), ("put", 1),
                  ("restart", 0), ("tick", 50)])
def test_model_each_once_never_early_in_order(tmp_path_factory, actions):
    h = Harness(tmp_path_factory.mktemp("timer"))
    due: dict[int, int] = {}  # id -> deliver ms
    direct: set[int] = set()
    got: dict[int, int] = {}  # id -> times delivered
    order: list[int] = []
    try:
        for kind, arg in actions + [("tick", 1000), ("tick", 1000)]:
            if kind == "put":
                i = len(due)
                due[i] = h.clock.now + arg
                h.timers.put("T", str(i).encode(), deliver_at_ms=due[i], queue_id=0)
                if arg <= 0:
                    direct.add(i)
            elif kind == "restart":
                h.close()
                h.open()
            else:
                h.tick(arg)
            for i, props in h.delivered():
                got[i] = got.get(i, 0) + 1
                order.append(i)
                if i not in direct:
                    assert int(props["TIMER_OUT_MS"]) == due[i]
                    assert "REAL_TOPIC" not in props and "REAL_QID" not in props
            if kind == "tick":
                # Exactly what is due by now, once each: never early, never a slot late.
                expected = {i for i, d in due.items() if i in direct or slot_end(d) <= h.clock.now}
                assert set(got) == expected
                assert all(n == 1 for n in got.values())
        assert set(got) == set(due)
        # Due-time order, within one slot: nothing timed follows a message due a slot later
        # (those put with a time already passed were stored at once, in put order).
        latest = None
        for i in (i for i in order if i not in direct):
            if latest is not None:
                assert due[i] > latest - P, (i, due[i], latest)
            latest = due[i] if latest is None else max(latest, due[i])
    finally:
        h.close()


def test_restart_with_pending(tmp_path):
    h = Harness(tmp_path)
    for i, delay in enumerate([30, 200, 450, 900]):
        h.timers.put("T", str(i).encode(), delay_ms=delay, queue_id=0)
    h.tick(100)
    assert [i for i, _ in h.delivered()] == [0]
    h.close()
    h.open()
    h.tick(150)
    assert [i for i, _ in h.delivered()] == [1]
    h.tick(800)
    assert [i for i, _ in h.delivered()] == [2, 3]
    h.tick(1000)
    assert h.delivered() == []
    h.close()


def test_due_while_down_delivered_at_start(tmp_path):
    h = Harness(tmp_path)
    for i in range(5):
        h.timers.put("T", str(i).encode(), delay_ms=100 + 300 * i, queue_id=0)
    h.tick(20)
    h.close()
    h.clock.now += 5_000  # all came due while closed
    h.open()
    h.tick(0)
    assert sorted(i for i, _ in h.delivered()) == [0, 1, 2, 3, 4]
    h.tick(1000)
    assert h.delivered() == []
    h.close()


def test_crash_redelivers_at_least_once(tmp_path):
    h = Harness(tmp_path, dataclasses.replace(SMALL, flush_interval_ms=10**9))
    for i in range(30):
        h.timers.put("T", str(i).encode(), delay_ms=10 * i, queue_id=0)
    h.tick(60)
    h.timers.persist()
    h.tick(100)  # delivered, but not in the checkpoint
    before = [i for i, _ in h.delivered()]
    assert before == list(range(16))
    h.crash()
    h.open()  # the wheel is rebuilt from the timer log
    h.tick(1000)
    after = [i for i, _ in h.delivered()]
    assert set(before) | set(after) == set(range(30))
    # Only what was delivered (or rolled) after the last persist can come again.
    assert not set(range(6)) & set(after)
    h.close()


def test_put_checks_and_direct(tmp_path):
    h = Harness(tmp_path)
    with pytest.raises(ValueError, match="max_delay_ms"):
        h.timers.put("T", b"1", delay_ms=10_001)
    with pytest.raises(ValueError):
        h.timers.put("T", b"1")
    assert h.store.max_offset(TIMER_TOPIC, 0) == 0
    h.timers.put("T", b"7", deliver_at_ms=h.clock.now - 5, queue_id=0)  # past: stored now
    assert [i for i, _ in h.delivered()] == [7]
    h.close()


def test_bad_timer_messages_lose_nothing(tmp_path):
    h = Harness(tmp_path)
    h.store.put(TIMER_TOPIC, b"1", queue_id=0, properties={"REAL_TOPIC": "T", "REAL_QID": "0",
                                                           "TIMER_OUT_MS": "soon"})
    h.store.put(TIMER_TOPIC, b"2", queue_id=0, properties={"TIMER_OUT_MS": str(T0 + 5)})
    h.tick(1)
    assert [i for i, _ in h.delivered()] == [1]  # an unreadable time: delivered at once
    assert h.store.max_offset(TIMER_TOPIC, 0) == 2  # the one without REAL_TOPIC stays there
    h.close()


def test_wheel_shape_cannot_change(tmp_path):
    h = Harness(tmp_path)
    h.close()
    store = open_store(tmp_path, **STORE)
    try:
        with pytest.raises(ValueError, match="cannot change"):
            TimerService(store, TimerConfig(precision_ms=P, wheel_slots=16), clock=Clock())
    finally:
        store.close()


def test_million_pending_tick_reads_only_the_due_slot(tmp_path):
    config = TimerConfig(precision_ms=10, wheel_slots=1 << 17)
    sched = TimerSchedule(tmp_path, config, T0)
    n, per_slot = 1_000_000, 10
    add = sched.add
    for k in range(n):
        # spread over 100,000 slots (1,000 s), 10 entries each
        add(T0 + (k % (n // per_slot)) * 10 + k % 7, k, 100)
    assert sched.log.end == n * RECORD_SIZE
    sched.wheel.slot_reads = sched.log.record_reads = 0
    due = sched.due_slot(T0 + 10)
    assert len(due) == per_slot and all(r.deliver_ms < T0 + 10 for r in due)
    assert sorted(r.cl_offset for r in due) == list(range(0, n, n // per_slot))
    assert sched.wheel.slot_reads == 1 and sched.log.record_reads == per_slot
    sched.slot_done()
    assert sched.due_slot(T0 + 19) is None  # the next slot is not due yet
    sched.close(0)


def test_schedule_reopens_after_clean_close_and_crash(tmp_path):
    config = TimerConfig(precision_ms=10, wheel_slots=64, log_segment_bytes=RECORD_SIZE * 8)
    sched = TimerSchedule(tmp_path, config, T0)
    for k in range(50):
        sched.add(T0 + 5 * k, k, 1)
    sched.close(50)
    sched = TimerSchedule(tmp_path, config, T0 + 10**6)
    assert (sched.read_ms, sched.enqueue_offset, sched.log.end) == (T0, 50, 50 * RECORD_SIZE)
    first = sched.due_slot(T0 + 10)
    sched.slot_done()
    sched.persist(50)
    for k in range(50, 60):  # filed after the last persist: lost with the crash
        sched.add(T0 + 5 * k, k, 1)
    struct.pack_into(">q", sched.wheel.mm, 0, 12345)  # and a torn wheel page
    sched.abandon()
    sched = TimerSchedule(tmp_path, config, T0 + 10**6)
    assert (sched.read_ms, sched.log.end) == (T0 + 10, 50 * RECORD_SIZE)
    assert [r.cl_offset for r in first] == [0, 1]
    got = []
    now = T0 + 1000
    while (recs := sched.due_slot(now)) is not None:
        got += [r.cl_offset for r in recs]
        sched.slot_done()
    assert got == list(range(2, 50))
    sched.close(50)


def test_idle_tick_passes_empty_slots_and_leaves_work_to_tick(tmp_path):
    """The asyncio runner's cheap path: only an idle timer is served by idle_tick."""
    h = Harness(tmp_path)
    h.tick(0)  # the first persist
    start = h.timers.schedule.read_ms
    h.clock.now += 5 * P
    assert h.timers.idle_tick()  # nothing filed, nothing due: moves past the empty slots
    assert h.timers.schedule.read_ms == start + 5 * P
    h.timers.put("T", b"7", delay_ms=3 * P, queue_id=0)
    assert not h.timers.idle_tick()  # a new timer message: a full tick must file it
    h.tick(0)
    h.clock.now += P
    assert h.timers.idle_tick()  # filed, not due yet
    h.clock.now += 3 * P
    assert not h.timers.idle_tick()  # its slot is due: tick() delivers it
    assert h.delivered() == []
    h.tick(0)
    assert [i for i, _ in h.delivered()] == [7]
    h.clock.now += SMALL.flush_interval_ms
    assert not h.timers.idle_tick()  # progress to persist
    h.close()
