"""Shared fixtures: small store configurations so that records cross segment boundaries."""

from __future__ import annotations

import os

import pytest

from rmqstore.server.testing import TEST_PORTS


def _own_port_slice() -> None:
    """Under pytest-xdist each worker draws test ports from a slice of its own (the servers and
    clusters it starts inherit the setting)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")  # gw0, gw1, ...
    count = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if not worker or not count:
        return
    index, width = int(worker.removeprefix("gw")), (TEST_PORTS[1] - TEST_PORTS[0]) // int(count)
    low = TEST_PORTS[0] + index * width
    os.environ["RMQSTORE_TEST_PORTS"] = f"{low}-{low + width}"


_own_port_slice()

# Tiny files: a 4 KiB commit-log segment holds ~30 small records, a consume-queue file 16 units.
SMALL = dict(commitlog_segment_bytes=4096, consumequeue_units=16, index_slots=64,
             index_entries=256, background=False)


@pytest.fixture
def small_config() -> dict:
    return dict(SMALL)
