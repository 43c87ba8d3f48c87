"""The native ends of a plaintext HA link (rmq_follow on the slave, rmq_feed on the master),
where they differ from the asyncio path the TLS tests keep: headers cut across reads, a report
past what the master sent, a master that starts empty, a slave that stops reading, frames whose
sizes change within one read, records larger than the slave's receive buffer.
Every wait is bounded."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
from pathlib import Path

import rmqstore
from rmqstore import _native
from rmqstore.ha import HAClient, HAService
from rmqstore.protocol.ha import REPORT, TransferReader, encode_report, encode_transfer
from tests.ha.fakes import LoopbackServer
from tests.ha.test_link import CFG, FAST, ONCE, SEG, fill, linked, run, until
from tests.log_digest import log_digest


class ChunkedMaster(LoopbackServer):
    """Answers the first report with ``chunks``, each its own write a few ms apart (so each
    is its own read on the slave), then reads reports until the slave hangs up."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.reports: list[int] = []

    async def _serve(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.reports.append(REPORT.unpack(await r.readexactly(8))[0])
        for chunk in self.chunks:
            w.write(chunk)
            await w.drain()
            await asyncio.sleep(0.003)
        try:
            while data := await r.read(65536):
                self.reports.extend(REPORT.unpack_from(data, i)[0]
                                    for i in range(0, len(data) - 7, 8))
        except (ConnectionError, OSError):
            pass
        w.close()


def follow_chunks(master, replica, chunks: list[bytes]) -> None:
    """The replica follows a ChunkedMaster sending ``chunks`` until it reported the master's
    end; then its log must be the master's."""
    end = master.commitlog.max_offset

    async def main():
        fake = ChunkedMaster(chunks)
        client = HAClient(replica, await fake.start(), ONCE)
        await client.start()
        await until(lambda: replica.replica.end == end)
        await until(lambda: fake.reports and fake.reports[-1] == end)
        await client.close()
        await fake.close()

    run(main())
    assert log_digest(replica, 0) == log_digest(master, 0)


def test_headers_cut_across_reads_give_what_the_transfer_reader_gives(stores) -> None:
    """Frames of 1000 bytes cut twice inside every header (before and inside its size) and once
    in every body: the native loop keeps the same
    log as protocol/ha.py's TransferReader, which is the master's log byte for byte."""
    master, replica = stores
    fill(master, 120)
    end = master.commitlog.max_offset
    assert end < SEG
    log = bytes(master.read_log(0, end))
    stream = b"".join(encode_transfer(at, log[at:at + 1000]) for at in range(0, end, 1000))
    cuts = sorted({c for at in range(0, len(stream), 1012) for c in (at + 5, at + 10, at + 700)})
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]

    reader = TransferReader(None)
    for chunk in chunks:
        room = reader.buffer()
        room[:len(chunk)] = chunk
        reader.received(len(chunk))
    assert reader.offset == 0 and bytes(reader.log()) == log

    follow_chunks(master, replica, chunks)


def test_frames_of_changing_sizes_in_one_read_give_the_masters_log(stores) -> None:
    """The native loop receives bodies in place on the guess that the next frame is as long as
    the last: frames longer, shorter and empty (heartbeats) against that guess, several to a
    read, still give the master's log byte for byte."""
    master, replica = stores
    fill(master, 120)
    end = master.commitlog.max_offset
    assert end < SEG
    log = bytes(master.read_log(0, end))
    sizes = [1000, 1000, 333, 2500, 0, 1000, 1000, 17, 4000, 0, 0, 64, 1500]
    frames, at = [], 0
    while at < end:
        n = sizes[len(frames) % len(sizes)]
        frames.append(encode_transfer(at, log[at:at + n]))
        at += len(log[at:at + n])
    stream = b"".join(frames)
    chunks = [b"".join(frames[i:i + 6]) for i in range(0, len(frames), 6)]
    chunks[1:3] = [chunks[1] + chunks[2][:5], chunks[2][5:]]  # one read ends inside a header
    assert b"".join(chunks) == stream

    follow_chunks(master, replica, chunks)


def test_a_short_receive_is_followed_by_a_poll_not_an_empty_receive(stores,
                                                                    monkeypatch) -> None:
    """A SYNC_MASTER's traffic: one small transfer at a time, a pause after each. A receive
    that took less than it offered drained the socket, and a poll that timed out found
    nothing, so the loop polls next (also after returning to Python meanwhile) rather than
    calling a receive only to hear EAGAIN: a syscall per transfer."""
    made: list[_native.Follower] = []

    class Watched(_native.Follower):
        def __init__(self, *args) -> None:
            super().__init__(*args)
            made.append(self)

    monkeypatch.setattr(_native, "Follower", Watched)
    master, replica = stores
    fill(master, 40)
    end = master.commitlog.max_offset
    log = bytes(master.read_log(0, end))
    starts = [m.commitlog_offset for m in master.get("T", 0, 0, 40).messages]
    chunks = [encode_transfer(a, log[a:b]) for a, b in zip(starts, [*starts[1:], end],
                                                            strict=True)]
    assert len(chunks) == 40

    follow_chunks(master, replica, chunks)  # 3 ms apart: each its own receive, then idle
    [follower] = made
    assert follower.empty_receives <= 2, (
        f"{follower.empty_receives} receives found nothing for {len(chunks)} transfers")


def test_a_fed_link_closes_on_a_report_past_what_it_sent(stores, caplog) -> None:
    master, _ = stores
    fill(master, 50)
    end = master.commitlog.max_offset

    async def main():
        service = HAService(master, "127.0.0.1", 0, FAST)
        await service.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", service.address[1])
        writer.write(encode_report(0))
        assert end < FAST.transfer_batch_bytes
        got = await asyncio.wait_for(reader.readexactly(12 + end), 5)  # all of it, one frame
        assert got[12:] == bytes(master.read_log(0, end))
        await until(lambda: any(link.feed is not None for link in service.links))
        with caplog.at_level(logging.WARNING, logger="rmqstore.ha"):
            writer.write(encode_report(end + 4096))  # a slave holding bytes never sent
            assert await asyncio.wait_for(reader.read(), 5) == b""  # closed
        await until(lambda: not service.links)
        writer.close()
        await service.close()

    run(main())
    assert any(str(end + 4096) in r.message and "diverged" in r.message for r in caplog.records)


def test_a_slave_of_an_empty_master_gets_its_first_messages(tmp_path) -> None:
    """The fed link waits with no segment to send from (the master's log is empty), and
    finds the first one when the first put creates it; then follows across segments."""
    master = rmqstore.open(tmp_path / "m", **CFG)
    replica = rmqstore.open(tmp_path / "r", replica=True, **CFG)

    async def main():
        async with linked(master, replica) as (service, _):
            await until(lambda: any(link.feed is not None for link in service.links))
            await asyncio.sleep(0.05)  # the feed sleeps with nothing to send from
            master.put("T", b"first")
            await until(lambda: replica.replica.end == master.commitlog.max_offset, 3.0)
            fill(master, 400)  # past the first segment
            assert master.commitlog.max_offset > SEG
            await until(lambda: replica.replica.end == master.commitlog.max_offset)

    try:
        run(main())
        assert log_digest(replica, 0) == log_digest(master, 0)
    finally:
        master.close()
        replica.close()


def thread_cpu_s(tid: int) -> float:
    fields = Path(f"/proc/self/task/{tid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_fed_link_to_a_slave_that_reads_nothing_waits_without_spinning(tmp_path) -> None:
    """A slave that stops reading fills the socket; the feed then sleeps until there is room
    (or it is closed), however long ago its last write was, burning no CPU meanwhile."""
    master = rmqstore.open(tmp_path / "m", commitlog_segment_bytes=16 << 20,
                           consumequeue_units=256, index_slots=256, index_entries=4096)
    body = os.urandom(256 * 1024)
    for _ in range(40):  # 10 MiB: more than the socket buffers on both ends hold
        master.put("T", body)
    stuck = dataclasses.replace(FAST, heartbeat_interval_ms=100, housekeeping_interval_ms=60_000)

    async def main():
        service = HAService(master, "127.0.0.1", 0, stuck)
        await service.start()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", service.address[1]))
        sock.send(encode_report(0))  # then it reads nothing
        await until(lambda: any(link.feed is not None for link in service.links))
        (link,) = service.links
        await asyncio.sleep(0.5)  # the socket is full; heartbeats fall due meanwhile
        tid = link.feed._thread.native_id
        before = thread_cpu_s(tid)
        await asyncio.sleep(2.0)
        spent = thread_cpu_s(tid) - before
        sock.close()
        await service.close()
        return spent

    try:
        assert run(main()) < 0.05
    finally:
        master.close()


def test_records_larger_than_the_receive_buffer_give_the_masters_log(tmp_path) -> None:
    """Messages of up to 4 MiB, more than the native link's first receive buffer (1 MiB)
    holds: each record's head waits at the buffer's start, the buffer grows until the record
    is whole, and only then is it checked, appended and reported; the log is the master's."""
    cfg = dict(commitlog_segment_bytes=16 << 20, consumequeue_units=256, index_slots=256,
               index_entries=4096)
    master = rmqstore.open(tmp_path / "m", **cfg)
    replica = rmqstore.open(tmp_path / "r", replica=True, **cfg)
    for size in (3000, 4 << 20, 100, (3 << 20) + 7, 1 << 20, 5):
        master.put("T", os.urandom(size))

    async def main():
        async with linked(master, replica):
            await until(lambda: replica.replica.end == master.commitlog.max_offset)

    try:
        run(main())
        assert log_digest(replica, 0) == log_digest(master, 0)
        replica.replica.dispatch()
        assert replica.max_offset("T", 0) == master.max_offset("T", 0)
    finally:
        master.close()
        replica.close()
