"""The test harness's free ports: draws made before anything binds never repeat a port."""

from __future__ import annotations

import pytest

from rmqstore.server import testing


def test_draws_before_any_bind_never_repeat(monkeypatch: pytest.MonkeyPatch) -> None:
    """Twenty ports to draw from (above the test range, below the ephemeral one): eight random
    draws would repeat one 80 % of the time, and a server given its own NameServer's port
    fails to start. Twelve left always hold a neighbouring pair for the broker's."""
    monkeypatch.setenv("RMQSTORE_TEST_PORTS", "32100-32120")
    monkeypatch.setattr(testing, "_handed_out", testing.collections.deque(maxlen=512))
    got = [testing.free_port() for _ in range(8)] + [testing.free_broker_port()]
    ports = got[:-1] + [got[-1], got[-1] + 1]
    assert len(set(ports)) == len(ports), got
