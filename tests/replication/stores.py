"""A stopped HAPair's two stores, opened from their data directories for the tests to compare
(the master's as a store, the slave's as a replica), and closed after."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import rmqstore
from rmqstore.server.testing_ha import HAPair


@contextmanager
def pair_stores(pair: HAPair, cfg: dict, **slave_cfg: object
                ) -> Iterator[tuple[rmqstore.MessageStore, rmqstore.MessageStore]]:
    """(master, slave), both with ``cfg``, the slave with ``slave_cfg`` too."""
    master = rmqstore.open(pair.master_data, **cfg)
    try:
        slave = rmqstore.open(pair.slave_data, replica=True, **{**cfg, **slave_cfg})
        try:
            yield master, slave
        finally:
            slave.close()
    finally:
        master.close()
