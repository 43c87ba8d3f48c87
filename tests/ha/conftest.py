"""The HA tests' stores: a master and an empty replica in a test's directory, closed after."""

from __future__ import annotations

import pytest

import rmqstore
from tests.ha.test_link import CFG


@pytest.fixture
def stores(tmp_path):
    master = rmqstore.open(tmp_path / "m", **CFG)
    replica = rmqstore.open(tmp_path / "r", replica=True, **CFG)
    yield master, replica
    master.close()
    replica.close()
