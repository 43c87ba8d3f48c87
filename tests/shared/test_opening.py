"""Opening a store several processes share: every one must say shared=True, a store open
alone refuses them and the other way round, each with a reason; the control file's slots
are limited, and a full table is refused with the setting to raise."""

from __future__ import annotations

from pathlib import Path

import pytest

import rmqstore
from rmqstore.shared.control import SlotsFullError

SMALL = dict(commitlog_segment_bytes=64 << 10, consumequeue_units=100, index_slots=100,
             index_entries=400)


def test_shared_and_alone_refuse_each_other(tmp_path: Path) -> None:
    # flock locks belong to open file descriptions: two opens in one process conflict as
    # two processes' would
    with rmqstore.open(tmp_path, **SMALL):
        with pytest.raises(rmqstore.StoreLockedError, match="shared=False"):
            rmqstore.open(tmp_path, shared=True, **SMALL)
    with rmqstore.open(tmp_path, shared=True, **SMALL), \
            rmqstore.open(tmp_path, shared=True, **SMALL) as second:
        second.put("T", b"x")
        with pytest.raises(rmqstore.StoreLockedError, match="shared=True"):
            rmqstore.open(tmp_path, **SMALL)
    with rmqstore.open(tmp_path, **SMALL) as alone:  # the last shared close was clean
        assert alone.recovery.skipped == ()
        assert alone.get("T", 0, 0).messages[0].body == b"x"


def test_a_full_queue_table_is_refused_with_the_setting_to_raise(tmp_path: Path) -> None:
    with rmqstore.open(tmp_path, shared=True, shared_queues=2, **SMALL) as store:
        store.put("A", b"1")
        store.put("B", b"2")
        with pytest.raises(SlotsFullError, match="shared_queues"):
            store.put("C", b"3")
        assert store.get("A", 0, 0).messages[0].body == b"1"  # nothing else lost


def test_a_warmer_is_refused_with_shared(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="warm_window_bytes"):
        rmqstore.open(tmp_path, shared=True, warm_window_bytes=1 << 20, **SMALL)
