"""The HA tests' stores: a master and an empty replica in a test's directory, closed after."""

from __future__ import annotations

import pytest

import rmqstore
from rmqstore import _native
from tests.ha.test_link import CFG


def store_pair(tmp_path, cfg: dict):
    """A fixture's body: a master and an empty replica opened with cfg, closed after."""
    master = rmqstore.open(tmp_path / "m", **cfg)
    replica = rmqstore.open(tmp_path / "r", replica=True, **cfg)
    yield master, replica
    master.close()
    replica.close()


@pytest.fixture
def stores(tmp_path):
    yield from store_pair(tmp_path, CFG)


SLOW_WRITE_US = 20_000  # per append: far slower than loopback receives


@pytest.fixture
def slow_followers(monkeypatch) -> list[_native.Follower]:
    """Every native link's Follower from now on, its appends slowed down."""
    made: list[_native.Follower] = []

    class Slow(_native.Follower):
        def __init__(self, *args) -> None:
            super().__init__(*args)
            self.slow_writes(SLOW_WRITE_US)
            made.append(self)

    monkeypatch.setattr(_native, "Follower", Slow)
    return made
