"""The delivery runners sleep while idle and a put wakes them: an idle timer until its next
filled slot is due, the delay levels until their next head is due; no polling every
tick_interval_ms or 100 ms (an idle broker spent 11-20 ms CPU a second on it)."""

from __future__ import annotations

import asyncio
import time

from rmqstore import open_store
from rmqstore.delay_levels import ScheduleService
from rmqstore.timer import TimerConfig, TimerService
from rmqstore.timer.service import IDLE_WAIT_MAX_MS

STORE = {"commitlog_segment_bytes": 1 << 16, "consumequeue_units": 64, "index_enable": False,
         "background": False}
CONFIG = TimerConfig(precision_ms=10, wheel_slots=1024, tick_interval_ms=10)
WATCH_S = 0.6  # long enough for 60 polls of a 10 ms tick
DELAY_MS = 300
LATE_MS = 1_000  # far below IDLE_WAIT_MAX_MS + DELAY_MS: a missed wake shows


class CountingDelays(ScheduleService):
    """Counts the runner's looks at the delay levels."""

    looks = 0

    def deliver_due(self, now_ms: int | None = None) -> list[tuple[str, int]]:
        self.looks += 1
        return super().deliver_due(now_ms)


class Counting(TimerService):
    """Counts the runner's looks at the timer (each one a wake of its thread)."""

    looks = 0

    def idle_tick(self, now_ms: int | None = None) -> bool:
        self.looks += 1
        return super().idle_tick(now_ms)


def _delivered_at(store, deadline_s: float) -> float | None:
    while time.monotonic() < deadline_s:
        if store.max_offset("T", 0):
            return time.time()
        time.sleep(0.005)
    return None


def test_idle_wait_is_until_the_filled_slot(tmp_path) -> None:
    now = [1_700_000_000_000]
    with open_store(tmp_path, **STORE) as store:
        timers = TimerService(store, CONFIG, clock=lambda: now[0])
        timers.tick()
        assert timers.idle_tick()
        assert timers.idle_wait_ms() == IDLE_WAIT_MAX_MS + 1  # nothing filed
        timers.put("T", b"x", delay_ms=95, queue_id=0)
        timers.tick()
        assert timers.idle_tick()
        slot_end = (now[0] + 95) // 10 * 10 + 10
        assert timers.idle_wait_ms() == slot_end - now[0] + 1
        timers.close()




def test_thread_runner_sleeps_while_idle_and_wakes_for_a_put(tmp_path) -> None:
    with open_store(tmp_path, **STORE) as store:
        timers = Counting(store, CONFIG)
        timers.start()
        try:
            time.sleep(0.2)  # the first ticks persist; then it is idle
            timers.looks = 0
            time.sleep(WATCH_S)
            assert timers.looks <= 3, f"{timers.looks} looks in {WATCH_S} s while idle"
            put_at = time.time()
            timers.put("T", b"x", delay_ms=DELAY_MS, queue_id=0)
            arrived = _delivered_at(store, time.monotonic() + 5)
            assert arrived is not None
            assert put_at + DELAY_MS / 1000 <= arrived + 0.001 < put_at + LATE_MS / 1000
        finally:
            timers.close()


def test_asyncio_runner_sleeps_while_idle_and_wakes_for_a_put(tmp_path) -> None:
    async def scenario(timers: Counting, store) -> float | None:
        runner = asyncio.create_task(timers.run())
        try:
            await asyncio.sleep(0.2)
            timers.looks = 0
            await asyncio.sleep(WATCH_S)
            assert timers.looks <= 3, f"{timers.looks} looks in {WATCH_S} s while idle"
            put_at = time.time()
            # from another thread, as an embedded producer would
            await asyncio.to_thread(timers.put, "T", b"x", delay_ms=DELAY_MS, queue_id=0)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not store.max_offset("T", 0):
                await asyncio.sleep(0.005)
            assert store.max_offset("T", 0)
            return time.time() - put_at
        finally:
            runner.cancel()

    with open_store(tmp_path, **STORE) as store:
        timers = Counting(store, CONFIG)
        try:
            took = asyncio.run(scenario(timers, store))
        finally:
            timers.close()
    assert DELAY_MS / 1000 - 0.001 <= took < LATE_MS / 1000


def test_delay_thread_runner_sleeps_while_idle_and_wakes_for_a_put(tmp_path) -> None:
    with open_store(tmp_path, **STORE) as store:
        store.create_topic("T", 1)
        sched = CountingDelays(store, f"{DELAY_MS}ms")
        sched.start()
        try:
            time.sleep(0.2)
            sched.looks = 0
            time.sleep(WATCH_S)
            assert sched.looks <= 1, f"{sched.looks} looks in {WATCH_S} s while idle"
            put_at = time.time()
            sched.put_delayed("T", b"x", 1, queue_id=0)
            arrived = _delivered_at(store, time.monotonic() + 5)
            assert arrived is not None
            assert put_at + DELAY_MS / 1000 <= arrived + 0.001 < put_at + LATE_MS / 1000
        finally:
            sched.stop()


def test_delay_asyncio_runner_wakes_for_a_put_from_another_thread(tmp_path) -> None:
    async def scenario(sched: CountingDelays, store) -> float:
        runner = asyncio.create_task(sched.run(lambda topic, queue_id: None))
        try:
            await asyncio.sleep(0.2)
            sched.looks = 0
            await asyncio.sleep(WATCH_S)
            assert sched.looks <= 1, f"{sched.looks} looks in {WATCH_S} s while idle"
            put_at = time.time()
            await asyncio.to_thread(sched.put_delayed, "T", b"x", 1, queue_id=0)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not store.max_offset("T", 0):
                await asyncio.sleep(0.005)
            assert store.max_offset("T", 0)
            return time.time() - put_at
        finally:
            runner.cancel()

    with open_store(tmp_path, **STORE) as store:
        store.create_topic("T", 1)
        sched = CountingDelays(store, f"{DELAY_MS}ms")
        try:
            took = asyncio.run(scenario(sched, store))
        finally:
            sched.close()
    assert DELAY_MS / 1000 - 0.001 <= took < LATE_MS / 1000
