"""The delivery runners sleep while idle and a put wakes them: an idle timer until its next
filled slot is due, the delay levels until their next head is due; no polling every
tick_interval_ms or 100 ms (an idle broker spent 11-20 ms CPU a second on it)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

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


@dataclass
class Runner:
    service: Counting | CountingDelays
    put: Callable[[], object]  # a message due DELAY_MS from now, into T queue 0
    stop_thread: Callable[[], None]
    run: Callable[[], object]  # the asyncio runner's coroutine


def _timer(store) -> Runner:
    timers = Counting(store, CONFIG)
    return Runner(timers, lambda: timers.put("T", b"x", delay_ms=DELAY_MS, queue_id=0),
                  timers.close, timers.run)


def _delays(store) -> Runner:
    store.create_topic("T", 1)
    sched = CountingDelays(store, f"{DELAY_MS}ms")
    return Runner(sched, lambda: sched.put_delayed("T", b"x", 1, queue_id=0), sched.stop,
                  lambda: sched.run(lambda topic, queue_id: None))


RUNNERS = pytest.mark.parametrize("make", [_timer, _delays], ids=["timer", "delay-levels"])


def _check(took_s: float) -> None:
    assert DELAY_MS / 1000 - 0.001 <= took_s < LATE_MS / 1000, took_s


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


@RUNNERS
def test_thread_runner_sleeps_while_idle_and_wakes_for_a_put(tmp_path, make) -> None:
    with open_store(tmp_path, **STORE) as store:
        runner = make(store)
        runner.service.start()
        try:
            time.sleep(0.2)  # the first looks persist; then it is idle
            runner.service.looks = 0
            time.sleep(WATCH_S)
            looks = runner.service.looks
            assert looks <= 3, f"{looks} looks in {WATCH_S} s while idle"
            put_at = time.time()
            runner.put()
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not store.max_offset("T", 0):
                time.sleep(0.005)
            _check(time.time() - put_at)
        finally:
            runner.stop_thread()


@RUNNERS
def test_asyncio_runner_sleeps_while_idle_and_wakes_for_a_put(tmp_path, make) -> None:
    async def scenario(runner: Runner, store) -> float:
        task = asyncio.create_task(runner.run())
        try:
            await asyncio.sleep(0.2)
            runner.service.looks = 0
            await asyncio.sleep(WATCH_S)
            looks = runner.service.looks
            assert looks <= 3, f"{looks} looks in {WATCH_S} s while idle"
            put_at = time.time()
            await asyncio.to_thread(runner.put)  # from another thread, as an embedded producer
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not store.max_offset("T", 0):
                await asyncio.sleep(0.005)
            return time.time() - put_at
        finally:
            task.cancel()

    with open_store(tmp_path, **STORE) as store:
        runner = make(store)
        try:
            _check(asyncio.run(scenario(runner, store)))
        finally:
            runner.service.close()
