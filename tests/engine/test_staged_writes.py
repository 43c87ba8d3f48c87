"""Records written with pwrite from the staging buffer rather than through the mapping: single
records of StoreConfig.stage_single_bytes or more where no warmer runs, and batches of any
size, a buffer-full at a time. Whichever way a record goes, it reads back byte for byte, also
after reopening; a failed pwrite appends nothing."""

from __future__ import annotations

import os

import pytest

import rmqstore
from rmqstore.config import STAGE_SINGLE_MIN

SMALL = dict(commitlog_segment_bytes=4 << 20)  # not the default 1 GiB file per store


def bodies_of(store, queue_id: int = 0) -> list[bytes]:
    out, off = [], 0
    while True:
        res = store.get("T", queue_id, off, 64)
        if not res.messages:
            return out
        out += [m.body for m in res.messages]
        off = res.next_offset


def mapped(store) -> int:
    return store.commitlog.appender.mapped_bytes


def test_large_single_puts_are_staged_without_a_warmer(tmp_path):
    big, small = os.urandom(STAGE_SINGLE_MIN + 5000), os.urandom(100)
    with rmqstore.open(tmp_path, **SMALL, flush="sync") as store:
        assert store.config.stage_single_bytes == STAGE_SINGLE_MIN
        before = mapped(store)
        r1 = store.put("T", big, queue_id=0)
        assert mapped(store) == before  # pwritten
        r2 = store.put("T", small, queue_id=0, tags="t")
        assert mapped(store) > before  # a small record still goes through the mapping
        r3 = store.put("T", big[::-1], queue_id=0, tags="t", keys=["k"])
        assert [r1.queue_offset, r2.queue_offset, r3.queue_offset] == [0, 1, 2]
        assert r1.commitlog_offset < r2.commitlog_offset < r3.commitlog_offset
        assert bodies_of(store) == [big, small, big[::-1]]
        assert store.query("T", "k")[0].body == big[::-1]
    with rmqstore.open(tmp_path, **SMALL, flush="sync") as store:
        assert bodies_of(store) == [big, small, big[::-1]]


def test_with_the_warmer_single_puts_go_through_the_mapping(tmp_path):
    with rmqstore.open(tmp_path, **SMALL) as store:  # async flush: the warmer runs
        assert store.config.stage_single_bytes == 0
        before = mapped(store)
        store.put("T", os.urandom(64 << 10), queue_id=0)
        assert mapped(store) > before + (64 << 10)


@pytest.mark.parametrize("flush", ["async", "sync"])
def test_a_batch_larger_than_the_buffer_is_staged_in_parts(tmp_path, flush):
    bodies = [os.urandom(10_000 + i) for i in range(30)]  # ~300 KB through a 64 KiB buffer
    with rmqstore.open(tmp_path, **SMALL, flush=flush, batch_write_buffer_bytes=64 << 10) as store:
        before = mapped(store)
        res = store.put_batch("T", bodies, queue_id=0)
        assert mapped(store) == before
        assert res.first_queue_offset == 0 and len(res) == 30
        phys = res.commitlog_offsets
        assert all(b > a for a, b in zip(phys, phys[1:], strict=False))
        assert bodies_of(store) == bodies
    with rmqstore.open(tmp_path, **SMALL, flush=flush) as store:
        assert bodies_of(store) == bodies


def test_a_record_larger_than_the_buffer_goes_through_the_mapping(tmp_path):
    bodies = [os.urandom(100 << 10), os.urandom(10)]
    with rmqstore.open(tmp_path, **SMALL, flush="sync", batch_write_buffer_bytes=64 << 10) as store:
        before = mapped(store)
        store.put_batch("T", bodies, queue_id=0)
        store.put("T", bodies[0], queue_id=0)
        assert mapped(store) > before + (200 << 10)
        assert bodies_of(store) == bodies + bodies[:1]


def test_a_failed_pwrite_appends_nothing(tmp_path):
    big = os.urandom(STAGE_SINGLE_MIN * 2)
    with rmqstore.open(tmp_path, **SMALL, flush="sync", batch_write_buffer_bytes=64 << 10) as store:
        store.put("T", b"first", queue_id=0)
        appender = store.commitlog.appender
        seg = store.commitlog.files.files[-1]
        end = store.commitlog.max_offset
        read_only = os.open(seg.path, os.O_RDONLY)
        appender.ptr.fd = read_only  # every pwrite now fails with EBADF
        try:
            with pytest.raises(OSError, match="not appended"):
                store.put("T", big, queue_id=0)
            with pytest.raises(OSError, match="nothing"):
                store.put_batch("T", [big] * 10, queue_id=0)  # fails in its first part
        finally:
            appender.ptr.fd = seg.fd
            os.close(read_only)
        assert store.commitlog.max_offset == end
        assert store.max_offset("T", 0) == 1
        res = store.put("T", big, queue_id=0)
        assert res.queue_offset == 1 and res.commitlog_offset == end
        assert bodies_of(store) == [b"first", big]
    with rmqstore.open(tmp_path, **SMALL, flush="sync") as store:
        assert bodies_of(store) == [b"first", big]
