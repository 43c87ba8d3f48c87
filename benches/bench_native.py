"""The native hot paths alone: CRC32, Java hash, recovery scan."""

from __future__ import annotations

import os
import zlib

from rmqstore import _native

from conftest import rate


def test_crc32_1mib(benchmark):
    data = os.urandom(1 << 20)
    assert benchmark(_native.crc32, data) == zlib.crc32(data) & 0x7FFFFFFF
    benchmark.extra_info["GB_per_s"] = round((1 << 20) / benchmark.stats.stats.mean / 1e9, 2)


def test_zlib_crc32_1mib_peer(benchmark):
    data = os.urandom(1 << 20)
    benchmark(zlib.crc32, data)
    benchmark.extra_info["GB_per_s"] = round((1 << 20) / benchmark.stats.stats.mean / 1e9, 2)


def test_java_hash(benchmark):
    benchmark(_native.java_hash, "TopicTest#order-123456")


def test_recovery_scan_with_crc(benchmark, store_factory):
    s = store_factory(commitlog_segment_bytes=256 << 20)
    body = os.urandom(1000)
    for _ in range(200):
        s.put_batch("T", [body] * 1000, queue_id=0)
    seg = s.commitlog.files.files[0]

    end, _ = benchmark(_native.scan, seg.region, 0, True)
    benchmark.extra_info["GB_per_s"] = round(end / benchmark.stats.stats.mean / 1e9, 2)
    rate(benchmark, 200_000)
