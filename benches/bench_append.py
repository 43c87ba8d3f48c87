"""Append throughput: put, put_batch, sync flush, puts in flight; beside the raw floor (a
struct.pack_into loop into a pre-faulted mmap, no index at all) measured in the same run."""

from __future__ import annotations

import mmap
import struct

from conftest import rate

ROUND = 20_000
BATCH = 128


def test_put_async_flush(benchmark, store_factory, body):
    s = store_factory(commitlog_segment_bytes=1 << 30)
    s.put("T", body, queue_id=0)
    put = s.put

    def run():
        for _ in range(ROUND):
            put("T", body, queue_id=0)

    benchmark.pedantic(run, rounds=5, iterations=1)
    rate(benchmark, ROUND)


def test_put_batch_async_flush(benchmark, store_factory, body):
    s = store_factory(commitlog_segment_bytes=1 << 30)
    bodies = [body] * BATCH

    def run():
        for _ in range(ROUND // BATCH):
            s.put_batch("T", bodies, queue_id=0)

    benchmark.pedantic(run, rounds=5, iterations=1)
    rate(benchmark, ROUND // BATCH * BATCH)


def test_put_batch_sync_flush(benchmark, store_factory, body):
    s = store_factory(commitlog_segment_bytes=1 << 30, flush="sync")
    bodies = [body] * BATCH

    def run():
        for _ in range(50):
            s.put_batch("T", bodies, queue_id=0)

    benchmark.pedantic(run, rounds=5, iterations=1)
    rate(benchmark, 50 * BATCH)


def test_put_async_10000_in_flight_sync_flush(benchmark, store_factory):
    s = store_factory(commitlog_segment_bytes=1 << 30, flush="sync")
    body = b"x" * 100
    s.put("T", body)

    def run():
        last = None
        for _ in range(10_000):
            last = s.put_async("T", body)
        last.wait()

    benchmark.pedantic(run, rounds=5, iterations=1)
    rate(benchmark, 10_000)


def test_raw_floor_pack_into_mmap(benchmark, body):
    """The floor from the research notes: struct.pack_into of a header + body into a
    pre-faulted anonymous mmap, nothing else."""
    size = ROUND * (len(body) + 64) * 6
    mm = mmap.mmap(-1, size)
    mm[:] = bytes(size)
    hdr = struct.Struct(f">iiqq{len(body)}s")
    state = {"pos": 0}

    def run():
        pos = state["pos"]
        pack = hdr.pack_into
        n = hdr.size
        for i in range(ROUND):
            pack(mm, pos, n, 0, i, pos, body)
            pos += n
        state["pos"] = pos

    benchmark.pedantic(run, rounds=5, iterations=1)
    rate(benchmark, ROUND)
