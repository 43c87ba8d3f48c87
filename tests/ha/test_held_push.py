"""A SYNC_MASTER's event loop keeps one push in flight to a fed link while it reads the reports
(NativeFeed.push): appends made meanwhile wait for that push's report and then go in one push;
a push that could not take everything the log holds (more than RMQ_FEED_FRAMES frames) holds
nothing back. A raw socket plays the slave, so every frame and report is the test's: bytes
arrive whole, in order, once; a wait ends only after its report. Bounded waits."""

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
NOTHING_S = 0.05  # how long "no bytes come" is watched for
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

    async def nothing_comes(self) -> bool:
        try:
            await asyncio.wait_for(self.reader.readexactly(1), NOTHING_S)
        except TimeoutError:
            return True
        return False


def wait(service: HAService, end: int) -> asyncio.Future[bool]:
    done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    service.when_replicated(end, done.set_result)
    return done


def test_appends_during_a_push_go_with_its_report_and_a_long_push_holds_nothing(
        tmp_path) -> None:
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
            master.put("T", b"first")  # nothing reported since the first report: acked -1
            first_end = master.commitlog.max_offset
            first = wait(service, first_end)
            await asyncio.wait_for(slave.read_to(first_end), 5)
            await until(lambda: feed._feeder._f.sleeping == IDLE)
            # unreported: the next appends wait for the report of the push in flight
            for i in range(3):
                master.put("T", b"during the round trip %d" % i)
            second_end = master.commitlog.max_offset
            second = wait(service, second_end)
            assert await slave.nothing_comes(), "a second push while one was in flight"
            w.write(encode_report(first_end))
            assert await asyncio.wait_for(first, 5) is True
            await asyncio.wait_for(slave.read_to(second_end), 5)  # the report pushed them
            assert not second.done(), "a wait ended before the slave reported"
            w.write(encode_report(second_end))
            assert await asyncio.wait_for(second, 5) is True
            # more than a push takes (8 frames of BATCH): the rest follows, unreported
            for _ in range(12):
                master.put("T", os.urandom(4000))
            third_end = master.commitlog.max_offset
            assert third_end - second_end > 8 * BATCH
            third = wait(service, third_end)
            await asyncio.wait_for(slave.read_to(third_end), 5)
            w.write(encode_report(third_end))
            assert await asyncio.wait_for(third, 5) is True
        finally:
            w.close()
            await service.close()
        assert bytes(slave.got) == log_bytes(master, 0, len(slave.got))

    try:
        run(main())
    finally:
        master.close()
