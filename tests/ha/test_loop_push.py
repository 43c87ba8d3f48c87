"""A SYNC_MASTER's appends on its event loop's thread are sent to a sleeping fed link by that
thread (NativeFeed.push, rmq_feeder_push), the slave's reports are read by that thread while
sends wait (NativeFeed.read_here, rmq_feeder_take_reports), and the HAService's store hook is
there only while a link is attached. A raw socket plays the slave, so every frame and every
report is the test's: the bytes arrive whole, in order, once; a wait ends only after the
report. Bounded waits."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import struct

import pytest

import rmqstore
from rmqstore import _native
from rmqstore.ha import HAClient, HAService
from rmqstore.ha.native_feed import NativeFeed
from rmqstore.protocol.ha import encode_report
from tests.ha.test_link import CFG, FAST, fill, run, until

# Nothing is sent or reported by a clock: only appends move bytes, only reports end waits.
QUIET = dataclasses.replace(FAST, heartbeat_interval_ms=60_000,
                            housekeeping_interval_ms=120_000, slave_timeout_ms=2_000)
HEADER = struct.Struct(">qi")


def log_bytes(store, start: int, end: int) -> bytes:
    out = bytearray()
    while start + len(out) < end:
        chunk = store.read_log(start + len(out), end - start - len(out))
        assert chunk, "the master's log ends early"
        out += chunk
    return bytes(out)


def test_the_loops_pushes_arrive_whole_and_a_wait_ends_only_with_the_report(
        tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    master = rmqstore.open(tmp_path / "m", **CFG)  # 64 KiB segments: the rounds cross two
    pushed: list[bool] = []
    real_push = NativeFeed.push

    def counting(feed: NativeFeed) -> bool:
        sent = real_push(feed)
        pushed.append(sent)
        return sent

    monkeypatch.setattr(NativeFeed, "push", counting)
    taken: list[int] = []  # what the event loop's own reads of the slave's reports gave
    real_take = _native.Feeder.take_reports

    def taking(feeder: _native.Feeder) -> int:
        taken.append(real_take(feeder))
        return taken[-1]

    monkeypatch.setattr(_native.Feeder, "take_reports", taking)
    rng = random.Random(13)

    async def main() -> None:
        service = HAService(master, "127.0.0.1", 0, QUIET)
        await service.start()
        r, w = await asyncio.open_connection(*service.address)
        w.write(encode_report(0))  # an empty slave: from offset 0 (the last segment's start)
        got = bytearray()

        async def read_to(end: int) -> None:
            while len(got) < end:
                offset, size = HEADER.unpack(await r.readexactly(HEADER.size))
                assert offset == len(got), "a gap or a byte twice"
                got.extend(await r.readexactly(size))

        try:
            await until(lambda: any(link.feed is not None for link in service.links))
            for _ in range(60):
                for _ in range(rng.randint(1, 4)):
                    master.put("T", os.urandom(rng.randint(100, 1500)))  # the loop's thread
                end = master.commitlog.max_offset
                waited: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
                service.when_replicated(end, waited.set_result)
                await asyncio.wait_for(read_to(end), 5)
                await asyncio.sleep(0.005)  # a wrongly counted ack would arrive meanwhile
                assert not waited.done(), "a wait ended before the slave reported"
                w.write(encode_report(end))
                assert await asyncio.wait_for(waited, 5) is True
        finally:
            w.close()
            await service.close()
        assert bytes(got) == log_bytes(master, 0, len(got))
        assert len(got) == master.commitlog.max_offset > 2 * CFG["commitlog_segment_bytes"]

    try:
        run(main())
    finally:
        master.close()
    assert sum(pushed) >= 30, "the loop's thread sent (nearly) nothing itself"
    assert sum(1 for t in taken if t >= 0) >= 30, "the loop read (nearly) no report itself"


def test_an_unlinked_master_is_not_called_per_append_and_a_later_link_is(stores) -> None:
    """The store's append hook is the HAService's only while a link is attached; a link
    attached later is woken by the appends (no clock moves bytes here: QUIET)."""
    master, replica = stores

    async def main():
        service = HAService(master, "127.0.0.1", 0, QUIET)
        calls = []
        real = service.wakeup

        def counting() -> None:
            calls.append(1)
            real()

        service.wakeup = counting  # type: ignore[method-assign] - what the store is given
        await service.start()
        fill(master, 20)
        assert not calls, "the store called the HA service with no link attached"
        client = HAClient(replica, "127.0.0.1:%d" % service.address[1], QUIET)
        await client.start()
        try:
            await until(lambda: replica.replica.end == master.commitlog.max_offset, 5)
            for i in range(5):
                master.put("T", b"after the link %d" % i)
                await until(lambda: replica.replica.end == master.commitlog.max_offset, 3)
            assert calls
        finally:
            await client.close()
            await until(lambda: not service.links, 5)
            calls.clear()
            fill(master, 5)
            assert not calls, "the hook outlived the last link"
            await service.close()

    run(main())
