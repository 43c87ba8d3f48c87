"""A slave that catches up copies first and dispatches after (ha_follow.c, dispatch_thread.py):
while a catch-up streams, its log grows and its queues wait; once the link drains every record
is dispatched and the queues and the index answer as the master's. The wait is bounded (bytes
or time), and steady traffic after a catch-up is dispatched as it comes. The slave's appends are
slowed down (tests/ha/test_slow_disk.py's way) so that a catch-up lasts long enough to watch
on any machine; every wait is bounded."""

from __future__ import annotations

import asyncio
import statistics
import time

import pytest

from rmqstore.ha import HAClient, HAService, native_link
from tests.ha.conftest import store_pair
from tests.ha.test_link import ONCE, linked, run, until
from tests.ha.test_slow_disk import CFG, fill, seed

MiB = 1 << 20
CATCH_UP_MIB = 24  # six of CFG's 4 MiB segments


@pytest.fixture
def slow_stores(tmp_path, slow_followers):
    """A master holding CATCH_UP_MIB MiB, a replica holding its first records (so the master
    streams the rest), and the native links made from now on, their appends slowed down."""
    for master, replica in store_pair(tmp_path, CFG):
        fill(master, CATCH_UP_MIB, seed=5)
        seed(master, replica)
        yield master, replica, slow_followers


async def follow_watched(master, replica) -> list[tuple[int, int]]:
    """Follow the master until every record it holds is dispatched; the replica's (end,
    dispatched) sampled every millisecond or so meanwhile."""
    end = master.commitlog.max_offset
    samples: list[tuple[int, int]] = []
    async with linked(master, replica):
        async def watch() -> None:
            while True:
                samples.append((replica.replica.end, replica.replica.dispatched))
                await asyncio.sleep(0.001)

        watcher = asyncio.create_task(watch())
        try:
            await until(lambda: replica.replica.dispatched == end, 30)
        finally:
            watcher.cancel()
    return samples


def same_answers(master, replica) -> None:
    """The replica's queues and index answer as the master's."""
    for q in range(4):
        assert replica.max_offset("Ring", q) == master.max_offset("Ring", q)
        last = master.max_offset("Ring", q) - 1
        for offset in (0, last // 2, last):
            [want] = master.get("Ring", q, offset, 1).messages
            [got] = replica.get("Ring", q, offset, 1).messages
            assert (got.commitlog_offset, got.body) == (want.commitlog_offset, want.body)
            [key] = want.keys
            assert [m.body for m in replica.query("Ring", key)] == [want.body]


def test_a_catch_up_dispatches_once_the_link_drains(slow_stores, monkeypatch) -> None:
    """The log grows by most of the catch-up while the queues stay where they were (the
    dispatch is not woken at segment ends nor every few MiB); then everything is dispatched
    and the queues and the index answer as the master's."""
    monkeypatch.setattr(native_link, "DEFER_MAX_S", 60.0)  # only the byte bound, far away
    master, replica, made = slow_stores
    samples = run(follow_watched(master, replica))
    assert made[0].catch_ups >= 1
    ahead = max(end - dispatched for end, dispatched in samples)
    assert ahead >= (CATCH_UP_MIB - 8) * MiB, (
        f"the log was at most {ahead} bytes ahead of the queues: dispatched while copying")
    same_answers(master, replica)


@pytest.mark.parametrize("bound", ["bytes", "time"])
def test_the_dispatch_runs_during_a_catch_up_past_the_bound(slow_stores, monkeypatch,
                                                             bound) -> None:
    """Past DEFER_BYTES appended, or DEFER_MAX_S into a catch-up, the dispatch runs beside the
    link: the queues never fall far behind the log."""
    if bound == "bytes":
        monkeypatch.setattr(native_link, "DEFER_BYTES", 2 * MiB)
        monkeypatch.setattr(native_link, "DEFER_MAX_S", 60.0)
    else:
        monkeypatch.setattr(native_link, "DEFER_MAX_S", 0.05)
    master, replica, made = slow_stores
    samples = run(follow_watched(master, replica))
    assert made[0].catch_ups >= 1
    ahead = max(end - dispatched for end, dispatched in samples)
    assert ahead < 12 * MiB, f"the log ran {ahead} bytes ahead of the queues"
    same_answers(master, replica)


def test_steady_traffic_after_a_catch_up_is_dispatched_as_it_comes(slow_stores,
                                                                  monkeypatch) -> None:
    """Once caught up, single puts are readable on the replica within a second each (the
    catch-up ended when the link drained; no bound is near), and none starts a catch-up."""
    monkeypatch.setattr(native_link, "DEFER_MAX_S", 60.0)
    master, replica, made = slow_stores
    seen: list[float] = []

    async def main() -> None:
        async with linked(master, replica):
            end = master.commitlog.max_offset
            await until(lambda: replica.replica.dispatched == end, 30)
            caught_up = made[0].catch_ups
            assert caught_up >= 1
            for i in range(20):
                put = time.monotonic()
                master.put("Steady", b"steady %d" % i)
                await until(lambda n=i + 1: replica.max_offset("Steady", 0) == n, 1.0)
                seen.append(time.monotonic() - put)
                await asyncio.sleep(0.01)
            assert made[0].catch_ups == caught_up
            assert len(made) == 1  # one link throughout

    run(main())
    assert statistics.median(seen) < 0.5


def test_a_catch_up_at_loopback_speed_leaves_nothing_undispatched(tmp_path) -> None:
    """Without slowed appends (the catch-up ends when the master has sent its log, with most
    segment ends passed while the dispatch slept), every record is dispatched: the link's idle
    return wakes the dispatch for all of it."""
    for master, replica in store_pair(tmp_path, CFG):
        fill(master, CATCH_UP_MIB, seed=6)
        seed(master, replica)
        run(follow_watched(master, replica))
        same_answers(master, replica)


def test_a_link_lost_mid_catch_up_dispatches_all_the_slave_holds(slow_stores,
                                                                  monkeypatch) -> None:
    """The master goes away while the slave catches up with its dispatch held back: every
    record the slave holds is dispatched at once (a consumer that falls back to the slave
    must find all of it), not at the bound nor at the next link."""
    monkeypatch.setattr(native_link, "DEFER_MAX_S", 60.0)
    master, replica, made = slow_stores

    async def main() -> None:
        service = HAService(master, "127.0.0.1", 0, ONCE)
        await service.start()
        client = HAClient(replica, "127.0.0.1:%d" % service.address[1], ONCE)
        await client.start()
        try:
            await until(lambda: replica.replica.end >= 8 * MiB, 30)
            assert replica.replica.dispatched < 8 * MiB  # held back
            await service.close()
            await until(lambda: not client.connected, 10)
            held = replica.replica.end
            assert held < master.commitlog.max_offset  # lost mid catch-up
            await until(lambda: replica.replica.dispatched == held, 2.0)
        finally:
            await client.close()

    run(main())
    assert made[0].catch_ups == 1
    for q in range(4):
        last = replica.max_offset("Ring", q) - 1
        [got] = replica.get("Ring", q, last, 1).messages
        assert got.body == master.get("Ring", q, last, 1).messages[0].body
