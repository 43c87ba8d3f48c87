"""The native slave (ha_follow.c) on a slow disk: each append sleeps first, so the master's bytes
wait in the socket while the slave writes, and every receive leaves a record's head to be
completed by the next. Then: frames of changing sizes cut anywhere still give the master's log,
a link cut while bytes wait resumes with no gap and no duplicate byte, and a slave killed
mid-stream recovers whole records holding every offset it reported. Every wait is bounded."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import rmqstore
from rmqstore.ha import Background, HAClient, HAService
from rmqstore.protocol.ha import encode_transfer
from tests.ha.conftest import SLOW_WRITE_US, store_pair
from tests.ha.fakes import CuttingProxy
from tests.ha.test_link import FAST, run, until
from tests.ha.test_native_link import follow_chunks
from tests.log_digest import log_digest

ROOT = Path(__file__).resolve().parents[2]
FOLLOWER = Path(__file__).with_name("follower.py")
MiB = 1 << 20
# Segments of 4 MiB: the logs here span three or four, so segment ends fall inside buffers too.
CFG = dict(commitlog_segment_bytes=4 * MiB, consumequeue_units=4096, index_slots=256,
           index_entries=8192)


def fill(store: rmqstore.MessageStore, mib: int, seed: int) -> None:
    """Messages of sizes from 1 byte to 30 KiB (so records end anywhere in a buffer)."""
    rng = random.Random(seed)
    store.create_topic("Ring", 4)
    while store.commitlog.max_offset < mib * MiB:
        store.put("Ring", rng.randbytes(rng.randint(1, 30_000)), queue_id=rng.randrange(4),
                  keys=[f"k{store.commitlog.max_offset}"])


def seed(master: rmqstore.MessageStore, replica: rmqstore.MessageStore) -> None:
    """The replica holds the master's first records, so the master streams it all (an empty
    slave is fed from the start of the master's last segment)."""
    first = master.read_log(0, 64 * 1024)
    assert first is not None
    assert replica.replica.append(0, first) > 0


def whole_log(store: rmqstore.MessageStore) -> bytes:
    out, at, end = bytearray(), 0, store.commitlog.max_offset
    while at < end:
        part = store.read_log(at, end - at)
        assert part
        out += part
        at += len(part)
    return bytes(out)


@pytest.fixture
def big_stores(tmp_path):
    yield from store_pair(tmp_path, CFG)


def test_frames_of_changing_sizes_cut_anywhere_give_the_masters_log_on_a_slow_disk(
        big_stores, slow_followers) -> None:
    """Frames from 1 byte to 300 KiB, cut at random points and sent a few to a write, while
    each append is slow: every receive's unchecked tail waits at the buffer's start for the
    bytes that complete it, every segment's last records are written to that segment, and
    the log is the master's."""
    master, replica = big_stores
    fill(master, 10, seed=1)
    log = whole_log(master)
    rng = random.Random(2)
    frames, at = [], 0
    while at < len(log):
        n = rng.choice([1, 7, 1000, 32 * 1024, rng.randint(1, 300 * 1024)])
        frames.append(encode_transfer(at, log[at:at + n]))
        at += len(log[at:at + n])
    stream = b"".join(frames)
    cuts = sorted(rng.sample(range(1, len(stream)), 40))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]

    follow_chunks(master, replica, chunks)
    assert slow_followers  # the native link took them
    replica.replica.dispatch()
    for q in range(4):
        assert replica.max_offset("Ring", q) == master.max_offset("Ring", q)


def test_a_link_cut_during_slow_appends_resumes_without_gap_or_duplicate(
        big_stores, slow_followers) -> None:
    """The link is cut mid-frame while the slave appends slowly: what it checked is appended
    before the link closes, the next link starts where that ends, and no report ever covers a
    byte the slave's log does not hold, nor goes back."""
    master, replica = big_stores
    fill(master, 12, seed=3)
    seed(master, replica)
    end = master.commitlog.max_offset
    acks: list[tuple[int, int]] = []  # (a report the master took, the replica's end after)

    async def main():
        service = HAService(master, "127.0.0.1", 0, FAST)
        await service.start()

        async def watch() -> None:
            while True:
                for link in list(service.links):
                    if link.feed is not None and link.feed.acked >= 0:  # -1: none yet
                        acks.append((link.feed.acked, replica.replica.end))
                await asyncio.sleep(0.001)

        watcher = asyncio.create_task(watch())
        proxy = CuttingProxy(("127.0.0.1", service.address[1]), cut_after=9 * MiB + 5_001)
        client = HAClient(replica, await proxy.start(), FAST)
        await client.start()
        try:
            await until(lambda: proxy.connections >= 2, 30)
            await until(lambda: replica.replica.end == end, 30)
        finally:
            watcher.cancel()
            await client.close()
            await proxy.close()
            await service.close()

    run(main())
    assert len(slow_followers) >= 2
    assert all(report <= held for report, held in acks), "reported bytes the log did not hold"
    reports = [report for report, _ in acks]
    assert reports == sorted(reports), "a report went back: bytes lost at the reconnect"
    assert log_digest(replica, 0) == log_digest(master, 0)
    replica.replica.dispatch()
    for q in range(4):
        assert replica.max_offset("Ring", q) == master.max_offset("Ring", q)


def test_a_slave_killed_during_slow_appends_recovers_whole_records_it_reported(
        tmp_path) -> None:
    """A replica process (tests/ha/follower.py, its appends slowed down) is SIGKILLed at random
    moments mid-stream: reopened, its log is the master's up to a record
    boundary, at or past every offset it reported; then it catches up to the master's end."""
    master = rmqstore.open(tmp_path / "m", **CFG)
    fill(master, 16, seed=4)
    root = tmp_path / "r"
    with rmqstore.open(root, replica=True, **CFG) as replica:
        seed(master, replica)
    end = master.commitlog.max_offset
    ha = Background(HAService(master, "127.0.0.1", 0, FAST)).start()
    service = ha.service
    acked = [0]

    def sample() -> None:
        """The highest report the master's fed links took (read from this thread: a lower
        bound of what the slave reported, which is all the check below needs)."""
        for link in list(service.links):
            if link.feed is not None:
                acked[0] = max(acked[0], link.feed.acked)

    address = "127.0.0.1:%d" % service.address[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path]),
           "RMQ_TEST_SLOW_WRITE_US": str(5 * SLOW_WRITE_US)}  # ~10 MiB/s: rounds to kill in
    rng = random.Random()
    try:
        for _ in range(3):
            start = acked[0]
            proc = subprocess.Popen([sys.executable, str(FOLLOWER), str(root), address,
                                     json.dumps(CFG)], stdout=subprocess.DEVNULL, env=env)
            try:
                deadline = time.monotonic() + 30
                while acked[0] < start + MiB and time.monotonic() < deadline:
                    sample()
                    time.sleep(0.001)
                assert acked[0] >= start + MiB, "the replica did not follow"
                pause = time.monotonic() + rng.uniform(0, 0.05)
                while time.monotonic() < pause:
                    sample()
                    time.sleep(0.001)
            finally:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
            sample()  # reports the master took before the slave died
            reported = acked[0]
            with rmqstore.open(root, replica=True, **CFG) as replica:
                held = replica.replica.end
                assert held >= reported, f"reported {reported}, recovered {held}"
                assert master.holds_boundary(held)
                assert log_digest(replica, 0) == log_digest(master, 0, held)
        with rmqstore.open(root, replica=True, **CFG) as replica:
            async def catch_up():
                client = HAClient(replica, address, FAST)
                await client.start()
                try:
                    await until(lambda: replica.replica.end == end, 30)
                finally:
                    await client.close()

            asyncio.run(asyncio.wait_for(catch_up(), 60))
            assert log_digest(replica, 0) == log_digest(master, 0)
    finally:
        ha.close()
        master.close()
