"""The native hot paths alone: CRC32, Java hash, record encode with its consume-queue unit,
consume-queue read, index insert and lookup, recovery scan."""

from __future__ import annotations

import mmap
import os
import zlib

from conftest import gb_per_s, rate

from rmqstore import _native


def test_crc32_1mib(benchmark):
    data = os.urandom(1 << 20)
    assert benchmark(_native.crc32, data) == zlib.crc32(data) & 0x7FFFFFFF
    gb_per_s(benchmark, 1 << 20)


def test_zlib_crc32_1mib_peer(benchmark):
    data = os.urandom(1 << 20)
    benchmark(zlib.crc32, data)
    gb_per_s(benchmark, 1 << 20)


def test_java_hash(benchmark):
    benchmark(_native.java_hash, "TopicTest#order-123456")


def test_recovery_scan_with_crc(benchmark, store_factory):
    s = store_factory(commitlog_segment_bytes=256 << 20)
    body = os.urandom(1000)
    for _ in range(200):
        s.put_batch("T", [body] * 1000, queue_id=0)
    seg = s.commitlog.files.files[0]

    end, _, _ = benchmark(_native.scan, seg.region, seg.start, 0, True)
    gb_per_s(benchmark, end)
    rate(benchmark, 200_000)


APPENDS = 10_000


def test_encode_record_and_unit(benchmark, store_factory, body):
    """rmq_put alone: one record (CRC included) into the mapped segment and its 20-byte unit
    into the mapped consume queue; no put lock, no result object."""
    s = store_factory(commitlog_segment_bytes=1 << 30, consumequeue_units=2_000_000)
    s.put("T", body, queue_id=0)  # maps the segment and the queue
    cq = s.consume_queues.get("T", 0)
    seg = cq.files.last()
    seg.reserve(seg.size)  # the native appends here never stop to reserve the next chunk
    cq.writer.attach(seg)
    log, wptr, n = s.commitlog.appender.ptr, cq.wptr, len(body)
    put_simple = _native.put_simple
    rounds = []

    def appends():
        rounds.append(None)
        for _ in range(APPENDS):
            put_simple(log, wptr, body, n)

    benchmark.pedantic(appends, rounds=20, iterations=1)
    assert s.max_offset("T", 0) == 1 + len(rounds) * APPENDS
    rate(benchmark, APPENDS)


def test_consume_queue_read(benchmark, store_factory):
    """rmq_read_queue: 1024 units of one queue and the records behind them, CRC unchecked."""
    s = store_factory(commitlog_segment_bytes=256 << 20)
    s.put_batch("T", [os.urandom(100)] * 1024, queue_id=0)
    cq = s.consume_queues.get("T", 0)
    seg, table = cq.files.files[0], s.commitlog.files.table()

    _, n, scanned, gone, bad = benchmark(_native.read_queue, seg.mapped(), 0, 1024 * 20, None,
                                         table, False, 1024)
    assert (n, scanned, gone, bad) == (1024, 1024, 0, 0)
    rate(benchmark, 1024)


SLOTS, ENTRIES = 500_000, 2_000_000


def _index_region():
    mm = mmap.mmap(-1, 40 + SLOTS * 4 + ENTRIES * 20)
    return mm, _native.Region(mm)


def test_index_insert(benchmark):
    keys = [b"key-%d" % i for i in range(APPENDS)]

    def inserts():
        mm, idx = _index_region()  # a fresh file each round: it never fills
        put = _native.index_put
        for i, k in enumerate(keys):
            put(idx, SLOTS, ENTRIES, k, i, 1_700_000_000_000)
        idx.release()
        mm.close()

    benchmark.pedantic(inserts, rounds=10, iterations=1)
    rate(benchmark, APPENDS)


def test_index_lookup(benchmark):
    mm, idx = _index_region()
    keys = [b"key-%d" % i for i in range(APPENDS)]
    for i, k in enumerate(keys):
        _native.index_put(idx, SLOTS, ENTRIES, k, i, 1_700_000_000_000)
    get = _native.index_get

    def lookups():
        return sum(len(get(idx, SLOTS, ENTRIES, k, 0, 1 << 62, 4)) for k in keys)

    assert benchmark(lookups) >= APPENDS  # every key found (hash collisions may add more)
    rate(benchmark, APPENDS)
    idx.release()
    mm.close()
