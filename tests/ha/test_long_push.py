"""A SYNC_MASTER's event loop sends its appends to a sleeping fed link itself (NativeFeed.push,
rmq_feeder_push), at most RMQ_FEED_FRAMES frames in its one sendmsg: what one loop iteration
appended beyond that follows at once, sent by the feed, with no report and no later append to
move it (before, it waited for the heartbeat, past slaveTimeout). A raw socket plays the slave,
so every frame and report is the test's: bytes arrive whole, in order, once; a wait ends only
after its report. Bounded waits."""

from __future__ import annotations

import asyncio
import dataclasses
import os

import rmqstore
from rmqstore.ha import HAService
from rmqstore.protocol.ha import encode_report
from tests.ha.test_link import CFG, run, until
from tests.ha.test_loop_push import HEADER, QUIET, log_bytes

BATCH = 4096  # a push takes at most 8 frames: 32 KiB
SMALL = dataclasses.replace(QUIET, transfer_batch_bytes=BATCH)
IDLE = 1  # rmq_feeder.sleeping: the feed sleeps in poll (ha_feed.c)


class RawSlave:
    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader
        self.got = bytearray()

    async def read_to(self, end: int) -> None:
        while len(self.got) < end:
            offset, size = HEADER.unpack(await self.reader.readexactly(HEADER.size))
            assert offset == len(self.got), "a gap or a byte twice"
            self.got.extend(await self.reader.readexactly(size))


def wait(service: HAService, end: int) -> asyncio.Future[bool]:
    done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    service.when_replicated(end, done.set_result)
    return done


def test_what_one_push_cannot_take_follows_unreported(tmp_path) -> None:
    master = rmqstore.open(tmp_path / "m", **CFG)

    async def main() -> None:
        service = HAService(master, "127.0.0.1", 0, SMALL)
        await service.start()
        master.put("T", b"before the link")  # held already: the slave resumes at the end
        r, w = await asyncio.open_connection(*service.address)
        w.write(encode_report(master.commitlog.max_offset))
        slave = RawSlave(r)
        slave.got.extend(log_bytes(master, 0, master.commitlog.max_offset))
        try:
            await until(lambda: any(link.feed is not None for link in service.links))
            # an awake feed sends what is new before it sleeps: these are the loop's to push
            feed = next(iter(service.links)).feed
            assert feed is not None
            await until(lambda: feed._feeder._f.sleeping == IDLE)
            master.put("T", b"first")
            first_end = master.commitlog.max_offset
            first = wait(service, first_end)
            await asyncio.wait_for(slave.read_to(first_end), 5)
            assert not first.done(), "a wait ended before the slave reported"
            w.write(encode_report(first_end))
            assert await asyncio.wait_for(first, 5) is True
            await until(lambda: feed._feeder._f.sleeping == IDLE)
            # in one loop iteration, more than a push takes (8 frames of BATCH): the rest
            # follows, unreported
            for _ in range(12):
                master.put("T", os.urandom(4000))
            long_end = master.commitlog.max_offset
            assert long_end - first_end > 8 * BATCH
            long_wait = wait(service, long_end)
            await asyncio.wait_for(slave.read_to(long_end), 5)
            w.write(encode_report(long_end))
            assert await asyncio.wait_for(long_wait, 5) is True
        finally:
            w.close()
            await service.close()
        assert bytes(slave.got) == log_bytes(master, 0, len(slave.got))

    try:
        run(main())
    finally:
        master.close()
