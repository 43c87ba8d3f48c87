"""The test harness's free ports: draws made before anything binds never repeat a port."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rmqstore.server import testing


def test_draws_before_any_bind_never_repeat(monkeypatch: pytest.MonkeyPatch) -> None:
    """Twenty ports to draw from (above the test range, below the ephemeral one): eight random
    draws would repeat one 80 % of the time, and a server given its own NameServer's port
    fails to start. Twelve left always hold a neighbouring pair for the broker's."""
    monkeypatch.setenv("RMQSTORE_TEST_PORTS", "32100-32120")
    monkeypatch.setattr(testing, "_handed_out", testing.collections.deque(maxlen=128))
    got = [testing.free_port() for _ in range(8)] + [testing.free_broker_port()]
    ports = got[:-1] + [got[-1], got[-1] + 1]
    assert len(set(ports)) == len(ports), got


CLAIM = """import sys
from pathlib import Path
from rmqstore.server import testing
testing.SLICE_LOCKS = Path(sys.argv[1])
print(*testing._test_ports(), flush=True)
sys.stdin.read()  # holds its slice until the test closes our stdin
"""


def test_processes_drawing_side_by_side_claim_disjoint_slices(tmp_path: Path) -> None:
    """Test runs side by side on one machine (xdist workers, other checkouts' suites) each
    draw from a slice no other live process holds: three processes alive at once get three
    disjoint slices inside TEST_PORTS."""
    env = {k: v for k, v in os.environ.items() if k != "RMQSTORE_TEST_PORTS"}
    procs = [subprocess.Popen([sys.executable, "-c", CLAIM, str(tmp_path)], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(3)]
    try:
        slices = [tuple(map(int, p.stdout.readline().split())) for p in procs]
    finally:
        for p in procs:
            p.communicate(timeout=30)
    low, high = testing.TEST_PORTS
    assert all(low <= a < b <= high for a, b in slices), slices
    ranges = [set(range(a, b)) for a, b in slices]
    assert not ranges[0] & ranges[1] and not ranges[0] & ranges[2] \
        and not ranges[1] & ranges[2], slices


def test_a_port_block_is_free_inside_the_range_and_never_repeats(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`cluster up --base-port` takes five consecutive ports: drawn from this process's range
    and never overlapping a block (or port) handed out before."""
    monkeypatch.setenv("RMQSTORE_TEST_PORTS", "32100-32120")
    monkeypatch.setattr(testing, "_handed_out", testing.collections.deque(maxlen=128))
    first, second = testing.free_port_block(5), testing.free_port_block(5)
    ports = [*range(first, first + 5), *range(second, second + 5)]
    assert all(32100 <= p < 32120 for p in ports) and len(set(ports)) == 10, (first, second)
