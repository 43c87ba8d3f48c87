"""Shared fixtures: small store configurations so that records cross segment boundaries."""

from __future__ import annotations

import pytest

# Tiny files: a 4 KiB commit-log segment holds ~30 small records, a consume-queue file 16 units.
SMALL = dict(commitlog_segment_bytes=4096, consumequeue_units=16, index_slots=64,
             index_entries=256, background=False)


@pytest.fixture
def small_config() -> dict:
    return dict(SMALL)
