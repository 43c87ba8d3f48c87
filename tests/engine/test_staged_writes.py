"""Records written with pwrite from the staging buffer rather than through the mapping: single
records of StoreConfig.stage_single_bytes or more where no warmer runs, and batches of any
size, a buffer-full at a time. Whichever way a record goes, it reads back byte for byte, also
after reopening; a failed pwrite appends nothing."""

from __future__ import annotations

import os
from itertools import pairwise

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


def test_every_single_record_is_pwritten_when_asked(tmp_path):
    """Appender.stage_singles(True) (a loop-led sync flush whose syncs answer few
    sends): records of any size are pwritten, those that span a page too, and read back byte
    for byte, also after reopening; stage_singles(False) sends them through the mapping."""
    bodies = [os.urandom(100 + 37 * i) for i in range(40)]
    with rmqstore.open(tmp_path, **SMALL, flush="sync") as store:
        store.commitlog.appender.stage_singles(True)
        before = mapped(store)
        results = [store.put("T", b, queue_id=0, tags="t", keys=[f"k{i}"])
                   for i, b in enumerate(bodies)]
        assert mapped(store) == before
        starts = [r.commitlog_offset for r in results] + [store.commitlog.max_offset]
        assert any(a // 4096 != (b - 1) // 4096 for a, b in pairwise(starts))
        store.commitlog.appender.stage_singles(False)
        store.put("T", b"mapped", queue_id=0)
        assert mapped(store) > before
        assert bodies_of(store) == bodies + [b"mapped"]
        assert store.query("T", "k7")[0].body == bodies[7]
    with rmqstore.open(tmp_path, **SMALL, flush="sync") as store:
        assert bodies_of(store) == bodies + [b"mapped"]


# A child that pwrites records until the next spans a page, then puts it with the file size
# limit a few bytes into it: the write of its bytes after the size field stops there.
_TORN_CHILD = r"""
import os, resource, signal, sys
import rmqstore
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
with rmqstore.open(sys.argv[1], commitlog_segment_bytes=4 << 20, flush="sync") as store:
    store.commitlog.appender.stage_singles(True)
    body, n = b"b" * 300, 0
    while True:
        pos = store.commitlog.max_offset
        if pos % 4096 > 4096 - 300:
            break
        store.put("T", body, queue_id=0)
        n += 1
    resource.setrlimit(resource.RLIMIT_FSIZE, (pos + 40, resource.RLIM_INFINITY))
    try:
        store.put("T", body, queue_id=0)
        failed = False
    except OSError:
        failed = True
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
print(pos, n, failed)
"""


def test_a_pwritten_record_spanning_pages_writes_its_size_field_last(tmp_path):
    """A pwritten record that spans a page is written after its first size field, which
    follows: a write stopped part way (a process killed, here a file size limit) leaves size
    0 where the record starts, so reopening finds the records before it and nothing more."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _TORN_CHILD, str(tmp_path)], check=True,
                         capture_output=True, text=True, timeout=60).stdout.split()
    pos, n, failed = int(out[0]), int(out[1]), out[2] == "True"
    assert failed and n > 0
    seg = next((tmp_path / "commitlog").iterdir())
    with open(seg, "rb") as f:
        f.seek(pos)
        torn = f.read(40)
    assert torn[:4] == b"\0\0\0\0", "the size field was written before the record's bytes"
    assert torn[4:8] != b"\0\0\0\0"  # the bytes after it were, up to the limit
    with rmqstore.open(tmp_path, **SMALL, flush="sync") as store:
        assert bodies_of(store) == [b"b" * 300] * n
        assert store.commitlog.max_offset == pos
