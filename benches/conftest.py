"""Fixtures for the engine benchmarks: stores on real disk under a temporary directory, and
payloads. Run with `make bench` (pytest-benchmark); rates are in each row's extra_info."""

from __future__ import annotations

import os

import pytest

import rmqstore

SIZES = {"100B": 100, "1KiB": 1024}


@pytest.fixture
def store_factory(tmp_path):
    opened = []

    def make(**config):
        s = rmqstore.open(tmp_path / f"s{len(opened)}", **config)
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close()


@pytest.fixture(params=list(SIZES))
def body(request):
    return os.urandom(SIZES[request.param])


def rate(benchmark, messages_per_round: int) -> None:
    """Record messages/s of the mean round in the row's extra_info (nothing to record when
    run with --benchmark-disable, as the test suite's smoke run does)."""
    if benchmark.stats is None:
        return
    stats = benchmark.stats.stats
    benchmark.extra_info["messages_per_s"] = round(messages_per_round / stats.mean)


def gb_per_s(benchmark, bytes_per_round: int) -> None:
    """Record GB/s of the mean round in the row's extra_info (as rate() does)."""
    if benchmark.stats is not None:
        benchmark.extra_info["GB_per_s"] = round(
            bytes_per_round / benchmark.stats.stats.mean / 1e9, 2)
