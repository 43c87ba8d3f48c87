"""An HA link on loopback, both ends in this process on one event loop: catch-up and follow,
SYNC waits, and what a broken stream, a garbage frame, a diverged slave or a silent peer do.
Every wait is bounded."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
from collections.abc import AsyncIterator

import pytest

import rmqstore
from rmqstore.ha import HAClient, HAConfig, HAService
from rmqstore.protocol.ha import encode_report, encode_transfer
from tests.ha.fakes import CuttingProxy, FakeMaster, garbage_frame
from tests.log_digest import log_digest

SEG = 64 * 1024
CFG = dict(commitlog_segment_bytes=SEG, consumequeue_units=256, index_slots=256,
           index_entries=4096)
FAST = HAConfig(heartbeat_interval_ms=200, housekeeping_interval_ms=1000,
                reconnect_interval_ms=100, slave_timeout_ms=500)
ONCE = dataclasses.replace(FAST, reconnect_interval_ms=60_000)  # no second link in a test


def fill(store, n: int, topic: str = "T") -> None:
    for i in range(n):
        store.put(topic, os.urandom(50 + i % 400), tags=f"t{i % 3}", keys=[f"k{i}"])


async def until(predicate, timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.01)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


@contextlib.asynccontextmanager
async def linked(master, replica, config: HAConfig = FAST, server_tls=None, client_tls=None
                 ) -> AsyncIterator[tuple[HAService, HAClient]]:
    """An HAService of master on loopback and an HAClient of replica following it, both
    closed after."""
    service = HAService(master, "127.0.0.1", 0, config, tls=server_tls)
    await service.start()
    client = HAClient(replica, "127.0.0.1:%d" % service.address[1], config, tls=client_tls)
    await client.start()
    try:
        yield service, client
    finally:
        await client.close()
        await service.close()


def test_a_slave_catches_up_and_follows(stores) -> None:
    master, replica = stores
    fill(master, 1500)  # several segments: an empty slave gets the last one only

    async def main():
        async with linked(master, replica) as (service, _):
            await until(lambda: replica.replica.end == master.commitlog.max_offset)
            start = master.commitlog.max_offset // SEG * SEG
            assert replica.commitlog.min_offset == start
            for i in range(200):  # following: every put reaches the slave (it pushes itself)
                master.put("T", b"live %d" % i)
            await until(lambda: replica.replica.dispatched == master.commitlog.max_offset)
            assert service.acked == master.commitlog.max_offset
            assert log_digest(replica, start) == log_digest(master, start)
            assert replica.max_offset("T", 0) == master.max_offset("T", 0)
            assert replica.get("T", 0, master.max_offset("T", 0) - 1).messages[0].body \
                == b"live 199"

    run(main())


def test_a_lone_message_is_dispatched_with_nothing_behind_it(stores) -> None:
    """The dispatch thread gathers small appends; one that nothing follows (no heartbeat
    within the test either) is dispatched too, within milliseconds (the link's idle clock),
    readable on the replica."""
    master, replica = stores
    quiet = dataclasses.replace(FAST, heartbeat_interval_ms=30_000,
                                housekeeping_interval_ms=60_000)

    async def main():
        async with linked(master, replica, quiet):
            for i in range(3):
                await until(lambda: replica.replica.end == master.commitlog.max_offset)
                await asyncio.sleep(0.05)
                master.put("Lone", b"alone %d" % i)
                await until(lambda n=i + 1: replica.max_offset("Lone", 0) == n, 1.0)
                assert replica.get("Lone", 0, i).messages[0].body == b"alone %d" % i

    run(main())


def test_sync_waits_end_when_a_slave_holds_the_bytes(stores) -> None:
    master, replica = stores

    async def main():
        service = HAService(master, "127.0.0.1", 0, FAST)
        await service.start()
        loop = asyncio.get_running_loop()

        async def replicated(end: int) -> bool:
            fut = loop.create_future()
            service.when_replicated(end, fut.set_result)
            return await fut

        master.put("T", b"no slave yet")
        assert not service.slave_ok(master.commitlog.max_offset)
        t0 = loop.time()
        assert not await replicated(master.commitlog.max_offset)  # FLUSH_SLAVE_TIMEOUT
        assert 0.45 <= loop.time() - t0 < 2.0
        client = HAClient(replica, "127.0.0.1:%d" % service.address[1], FAST)
        await client.start()
        try:
            await until(lambda: service.links)
            for i in range(20):
                master.put("T", b"sync %d" % i)
                end = master.commitlog.max_offset
                assert service.slave_ok(end)
                assert await replicated(end)
                assert replica.replica.end >= end  # the slave holds it when the wait ends
        finally:
            await client.close()
            await service.close()

    run(main())


def test_a_link_cut_mid_frame_resumes_with_no_gap_and_no_byte_twice(stores, tmp_path) -> None:
    master, replica = stores
    fill(master, 200)  # within the first segment, where an empty slave starts
    assert master.commitlog.max_offset < SEG

    async def main():
        service = HAService(master, "127.0.0.1", 0, FAST)
        await service.start()
        proxy = CuttingProxy(("127.0.0.1", service.address[1]), cut_after=15_001, cuts=2)
        client = HAClient(replica, await proxy.start(), FAST)
        await client.start()
        try:
            await until(lambda: proxy.connections >= 2)  # cut once: the slave came back
            await until(lambda: replica.replica.end == master.commitlog.max_offset)
            assert proxy.connections == 3  # cut twice, then whole
        finally:
            await client.close()
            await proxy.close()
            await service.close()

    run(main())
    assert log_digest(replica, 0) == log_digest(master, 0)
    replica.replica.dispatch()
    assert replica.max_offset("T", 0) == master.max_offset("T", 0) == 200


def test_a_cut_leaves_a_valid_store_that_recovery_keeps_whole(tmp_path) -> None:
    """After a cut mid-frame the replica ends at a record boundary: reopened (as after a
    crash), recovery keeps every byte it had and the link resumes from there."""
    master = rmqstore.open(tmp_path / "m", **CFG)
    replica = rmqstore.open(tmp_path / "r", replica=True, **CFG)
    fill(master, 200)

    async def cut_once() -> int:
        # 4 KiB frames: the whole ones before the cut are appended, the cut one is not
        service = HAService(master, "127.0.0.1", 0,
                            dataclasses.replace(FAST, transfer_batch_bytes=4096))
        await service.start()
        proxy = CuttingProxy(("127.0.0.1", service.address[1]), cut_after=20_007)
        client = HAClient(replica, await proxy.start(), ONCE)
        await client.start()
        await until(lambda: replica.replica.end > 0 and not client.connected)  # cut
        await client.close()
        await proxy.close()
        await service.close()
        return replica.replica.end

    try:
        end = run(cut_once())
        assert 0 < end < master.commitlog.max_offset
        assert master.holds_boundary(end)
        replica.close()
        (tmp_path / "r" / "abort").touch()  # reopened as after a crash: the full recovery
        replica = rmqstore.open(tmp_path / "r", replica=True, **CFG)
        assert replica.replica.end == end  # nothing for recovery to cut
        assert log_digest(replica, 0) == log_digest(master, 0, end)

        async def resume():
            service = HAService(master, "127.0.0.1", 0, FAST)
            await service.start()
            client = HAClient(replica, "127.0.0.1:%d" % service.address[1], FAST)
            await client.start()
            await until(lambda: replica.replica.end == master.commitlog.max_offset)
            await client.close()
            await service.close()

        run(resume())
        assert log_digest(replica, 0) == log_digest(master, 0)
    finally:
        master.close()
        replica.close()


@pytest.mark.parametrize("garbage", ["body", "offset", "size"])
def test_a_garbage_frame_closes_the_link_and_appends_nothing(stores, garbage, caplog) -> None:
    master, replica = stores
    fill(master, 100)
    good = master.read_log(0, 1 << 20)
    half = master.get("T", 0, 50, 1).messages[0].commitlog_offset

    def frames(first: int) -> list[bytes]:
        assert first == 0
        bad = {"body": garbage_frame(half),
               "offset": encode_transfer(half + 100, bytes(good[half + 100:half + 300])),
               "size": bytes.fromhex("%016x" % half) + bytes.fromhex("7fffffff")}[garbage]
        return [encode_transfer(0, bytes(good[:half])), bad]

    async def main():
        fake = FakeMaster(frames)
        client = HAClient(replica, await fake.start(), ONCE)
        with caplog.at_level(logging.WARNING, logger="rmqstore.ha"):
            await client.start()
            await asyncio.wait_for(fake.closed.wait(), 10)  # the slave hung up
        assert replica.replica.end == half  # the good frame, nothing of the bad one
        assert fake.reports == [0, half]  # at connect, then what the good frame gave
        # pointed at the real master, it resumes at its own end
        service = HAService(master, "127.0.0.1", 0, FAST)
        await service.start()
        client.set_master("127.0.0.1:%d" % service.address[1])
        await until(lambda: replica.replica.end == master.commitlog.max_offset)
        await client.close()
        await service.close()
        await fake.close()

    run(main())
    assert any("connection closed" in r.message for r in caplog.records)
    assert log_digest(replica, 0) == log_digest(master, 0)


@pytest.mark.parametrize("where", ["past the end", "inside a record"])
def test_the_master_refuses_an_offset_it_does_not_hold(stores, where, caplog) -> None:
    master, _ = stores
    fill(master, 50)
    offset = {"past the end": master.commitlog.max_offset + 100,
              "inside a record": master.get("T", 0, 10, 1).messages[0].commitlog_offset + 7}[where]

    async def main():
        service = HAService(master, "127.0.0.1", 0, FAST)
        await service.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", service.address[1])
        with caplog.at_level(logging.WARNING, logger="rmqstore.ha"):
            writer.write(encode_report(offset))
            got = await asyncio.wait_for(reader.read(), 5)  # EOF: closed, nothing sent
        assert got == b""
        writer.close()
        await service.close()

    run(main())
    assert any(str(offset) in r.message and "diverged" in r.message for r in caplog.records)


def test_a_silent_peer_is_dropped_after_the_housekeeping_interval(stores, caplog) -> None:
    master, replica = stores

    async def main():
        silent = FakeMaster(lambda first: [])  # accepts, reads, never sends
        client = HAClient(replica, await silent.start(), ONCE)
        service = HAService(master, "127.0.0.1", 0, FAST)
        await service.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", service.address[1])
        writer.write(encode_report(0))  # then silence: no heartbeat
        with caplog.at_level(logging.INFO, logger="rmqstore.ha"):
            await client.start()
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            await asyncio.wait_for(silent.closed.wait(), 5)
            assert 0.9 <= loop.time() - t0 < 3.0  # haHousekeepingInterval: 1 s here
            heartbeats = await asyncio.wait_for(reader.read(), 5)  # until the master hangs up
            assert heartbeats and heartbeats == encode_transfer(0, b"") * (len(heartbeats) // 12)
        await client.close()
        await silent.close()
        await service.close()
        writer.close()

    run(main())
    assert any("nothing for 1 s" in r.message for r in caplog.records)
    assert any("no report for 1 s" in r.message for r in caplog.records)


def test_a_master_takes_at_most_max_slaves_links(stores, caplog) -> None:
    """Every link costs the master a task and a write buffer: one past max_slaves is closed
    at once, with a warning, and the others go on."""
    master, _ = stores
    fill(master, 20)

    async def main():
        service = HAService(master, "127.0.0.1", 0, dataclasses.replace(
            FAST, max_slaves=2, housekeeping_interval_ms=30_000))  # silent links stay
        await service.start()
        port = service.address[1]
        links = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
        await until(lambda: len(service.links) == 2)
        with caplog.at_level(logging.WARNING, logger="rmqstore.ha"):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert await asyncio.wait_for(reader.read(), 2) == b""  # closed, nothing sent
        writer.close()
        r0, w0 = links[0]
        w0.write(encode_report(0))  # a linked one is served all the same
        head = await asyncio.wait_for(r0.readexactly(12), 5)
        assert head[:8] == (0).to_bytes(8, "big")
        for _, w in links:
            w.close()
        await service.close()

    run(main())
    assert any("max_slaves" in r.message for r in caplog.records)


def test_a_master_with_no_slave_schedules_nothing_per_append(stores) -> None:
    """A standalone master's appends cost no loop callback each (nothing would be pushed);
    a slave that links afterwards still gets them, from its own start."""
    master, replica = stores

    async def main():
        service = HAService(master, "127.0.0.1", 0, ONCE)
        await service.start()
        loop = asyncio.get_running_loop()
        scheduled = []
        real = loop.call_soon

        def counting(callback, *args, **kw):
            scheduled.append(callback)
            return real(callback, *args, **kw)

        loop.call_soon = counting
        try:
            fill(master, 20)
            await asyncio.sleep(0)
        finally:
            del loop.call_soon
        assert not [cb for cb in scheduled if getattr(cb, "__name__", "") == "_push_all"]
        client = HAClient(replica, "127.0.0.1:%d" % service.address[1], ONCE)
        await client.start()
        try:
            await until(lambda: replica.replica.end == master.commitlog.max_offset)
            master.put("T", b"after the link")
            await until(lambda: replica.replica.end == master.commitlog.max_offset)
        finally:
            await client.close()
            await service.close()

    run(main())
