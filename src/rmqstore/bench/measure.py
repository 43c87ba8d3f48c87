"""The timed loops. Times are sums of the timed calls (preparing the next messages is left
out) except with several writer threads, where the wall time of the whole run counts."""

from __future__ import annotations

import threading
import time

from .options import Bound
from .systems import System
from .workloads import QUEUES, WINDOW_QUEUE, Cursor

ASYNC_CHUNK = 128  # messages handed to put_each per timed call in async rows


def percentiles(lat_ns: list[int]) -> dict[str, float] | None:
    """p50 / p99 / p999 in microseconds (nearest rank)."""
    if not lat_ns:
        return None
    s = sorted(lat_ns)

    def pick(p: float) -> float:
        return s[min(len(s) - 1, int(p * len(s)))] / 1000

    return {"p50": round(pick(0.50), 1), "p99": round(pick(0.99), 1),
            "p999": round(pick(0.999), 1), "calls": len(s)}


def run_singles(system: System, cursor: Cursor, pool, bound: Bound, sync: bool
                ) -> tuple[int, float, list[int]]:
    """put_each: 128 messages per call in async rows, one per call (latency) in sync rows."""
    chunk = 1 if sync else ASYNC_CHUNK
    deadline, clock = bound.deadline(), time.perf_counter_ns
    done, busy, lat = 0, 0, []
    while (room := bound.room(done)) and time.perf_counter() < deadline:
        msgs = cursor.singles(pool, min(chunk, room))
        t0 = clock()
        system.put_each(msgs)
        dt = clock() - t0
        busy += dt
        done += len(msgs)
        if sync:
            lat.append(dt)
    return done, busy / 1e9, lat


def run_batches(system: System, cursor: Cursor, pool, bound: Bound, batch: int,
                window: bool = False) -> tuple[int, float, list[int]]:
    """put_batch (or put_window) calls of `batch` messages; latency per call."""
    deadline, clock = bound.deadline(), time.perf_counter_ns
    done, busy, lat, k = 0, 0, [], 0
    while (room := bound.room(done)) and time.perf_counter() < deadline:
        n = min(batch, room)
        q, off, bodies = cursor.batch(pool, k, n, WINDOW_QUEUE if window else None)
        t0 = clock()
        if window:
            system.put_window(off, bodies)
        else:
            system.put_batch(q, off, bodies)
        dt = clock() - t0
        busy += dt
        done += n
        lat.append(dt)
        k += 1
    return done, busy / 1e9, lat


def run_writers(system: System, cursor: Cursor, pool, bound: Bound, writers: int
                ) -> tuple[int, float, list[int]]:
    """`writers` threads, each calling put_each with one message until the bound."""
    lock = threading.Lock()
    lats: list[list[int]] = [[] for _ in range(writers)]
    state = {"done": 0}
    deadline = bound.deadline()
    errors: list[BaseException] = []

    def work(lat: list[int]) -> None:
        clock = time.perf_counter_ns
        try:
            while time.perf_counter() < deadline:
                with lock:
                    if not bound.room(state["done"]):
                        return
                    state["done"] += 1
                    msgs = cursor.singles(pool, 1)
                t0 = clock()
                system.put_each(msgs)
                lat.append(clock() - t0)
        except BaseException as exc:  # reported by the caller, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(lat,), name=f"bench-writer-{i}")
               for i, lat in enumerate(lats)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return sum(len(lat) for lat in lats), wall, [x for lat in lats for x in lat]


def warm_up(system: System, cursor: Cursor, pool, window: bool) -> None:
    """Untimed, for every system alike: the first message of each queue (and of the window
    queue in sync stores), so that one-time file creation stays out of the rows."""
    system.put_each(cursor.singles(pool, QUEUES))
    if window:
        _, off, bodies = cursor.batch(pool, 0, 1, WINDOW_QUEUE)
        system.put_window(off, bodies)


def timed(fn, *args) -> tuple[object, float]:
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0
