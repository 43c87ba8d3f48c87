"""Shared fixtures: small store configurations so that records cross segment boundaries."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

# Hypothesis times each example (200 ms deadline) and its data generation: on a loaded machine
# (xdist workers on two cores beside other runs) one slow first call fails a test that is
# right. Speed is measured in benches/, never here: no deadline, no too-slow check.
settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")

# Test ports: each process that draws them claims a slice of its own (rmqstore.server.testing),
# so xdist workers and other runs on this machine never draw one another's ports.

# Files whose tests elect masters within time bounds (a cluster of three nodes with etcd, or
# the chaos matrix): under pytest-xdist they run one file at a time on one worker, beside
# lighter tests only, so that two clusters never fight for the two cores; every other file
# is a group of its own, so its module fixtures start once.
ELECTIONS = ("tests/chaos/test_chaos_matrix.py", "tests/failover/test_cluster.py",
             "tests/failover/test_cluster_up.py", "tests/failover/test_metastore.py",
             "tests/compat/test_cpp_failover.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        item.add_marker(pytest.mark.xdist_group("elections" if path in ELECTIONS else path))

# Tiny files: a 4 KiB commit-log segment holds ~30 small records, a consume-queue file 16 units.
SMALL = dict(commitlog_segment_bytes=4096, consumequeue_units=16, index_slots=64,
             index_entries=256, background=False)


@pytest.fixture
def small_config() -> dict:
    return dict(SMALL)
