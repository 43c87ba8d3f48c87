"""Reads: a queue in order (full messages and bodies only), random reads by offset, keys."""

from __future__ import annotations

import os
import random

import pytest
from conftest import rate

N = 100_000


@pytest.fixture
def filled(store_factory):
    s = store_factory(commitlog_segment_bytes=1 << 30)
    body = os.urandom(100)
    offsets = []
    for _ in range(N // 1000):
        offsets += s.put_batch("T", [body] * 1000, queue_id=0).commitlog_offsets
    for i in range(1000):
        s.put("K", body, queue_id=0, keys=[f"key-{i}"])
    return s, offsets


def test_get_in_order_full_messages(benchmark, filled):
    s, _ = filled

    def run():
        off, n = 0, 0
        while True:
            res = s.get("T", 0, off, 1024)
            if not res.messages:
                return n
            for m in res.messages:
                m.body
            n += len(res.messages)
            off = res.next_offset

    assert benchmark.pedantic(run, rounds=5, iterations=1) == N
    rate(benchmark, N)


def test_get_bodies_in_order(benchmark, filled):
    s, _ = filled

    def run():
        off, n = 0, 0
        while True:
            b = s.get_bodies("T", 0, off, 4096)
            if not len(b):
                return n
            n += len(b)
            off = b.next_offset

    assert benchmark.pedantic(run, rounds=5, iterations=1) == N
    rate(benchmark, N)


def test_random_read_by_commitlog_offset(benchmark, filled):
    s, offsets = filled
    picks = random.Random(7).sample(offsets, 10_000)

    def run():
        for off in picks:
            s.get_by_commitlog_offset(off).body

    benchmark.pedantic(run, rounds=5, iterations=1)
    rate(benchmark, len(picks))


def test_query_by_key(benchmark, filled):
    s, _ = filled
    keys = [f"key-{i}" for i in range(1000)]

    def run():
        for k in keys:
            assert s.query("K", k)

    benchmark.pedantic(run, rounds=3, iterations=1)
    rate(benchmark, len(keys))
