"""The HA tests' stores: a master and an empty replica in a test's directory, closed after."""

from __future__ import annotations

import pytest

import rmqstore
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
