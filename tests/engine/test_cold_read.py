"""get_bodies brings cold records in a run of records at a time (cold_read.py,
rmq_read_bodies_pread), mapped in or, where the kernel cannot, with pread: either way the
bodies, ends, next offsets and statuses are the mapping path's, byte for byte, where runs end at
the scratch buffer's end, at a read's byte limit and at a segment's end, and where a record is
larger than the scratch buffer."""

from __future__ import annotations

import random

import pytest

import rmqstore
from rmqstore import _native, cold_read
from rmqstore.cold_read import ColdRead
from rmqstore.read_ahead import ReadAhead

from .test_readahead import _drop_cache

# Small segments: the queue's runs cross segment ends (a batch that does not fit starts the
# next file).
CFG = dict(commitlog_segment_bytes=64 << 10, index_enable=False, background=False)
SCRATCH = 3000  # a few records: runs are cut at the scratch buffer's end
# (first offset, from the end when negative; max_count; max_bytes): the last reads the records
# that start two files in a row, in one read
READS = [(0, 4096, 8 << 20), (0, 7, 8 << 20), (0, 4096, 5000), (0, 1, 8 << 20), (-6, 6, 8 << 20)]


def _fill(store) -> None:
    rng = random.Random(21)
    store.create_topic("R", 2)
    for i in range(60):  # runs of queue 0 between queue 1's, of bodies 1 B to 3.5 KiB
        sizes = [rng.choice((1, 40, 300, 1000, 3500)) for _ in range(rng.randint(1, 12))]
        store.put_batch("R", [bytes([65 + (i + k) % 26]) * n for k, n in enumerate(sizes)],
                        queue_id=i % 2)
    for i in range(2):  # queue 0's records first in two files in a row: same positions
        _pad_segment(store)
        store.put_batch("R", [b"%d" % (i * 10 + k) * 400 for k in range(3)], queue_id=0)


def _pad_segment(store) -> None:
    """Queue 1 fills the commit log's file to less than 300 bytes from its end, so that a
    400-byte body starts the next file."""
    seg = CFG["commitlog_segment_bytes"]
    for _ in range(seg // 100):  # bounded: each put takes a record (100 B or more) of the file
        left = seg - store.commitlog.max_offset % seg
        if left < 300:
            return
        store.put("R", b"p" * (900 if left > 2000 else 1), queue_id=1)


def _read_all(store, first: int, max_count: int, max_bytes: int,
              cold: bool = False) -> list[tuple]:
    """Every read from first to the queue's end: (bodies, next offset, status) each; each read
    after the store's files left the page cache when cold."""
    end = store.max_offset("R", 0)
    out, offset = [], first % end
    for _ in range(end + 1):  # bounded: each read takes at least one body
        if cold:
            _drop_cache(store)
        b = store.get_bodies("R", 0, offset, max_count, max_bytes)
        out.append(([bytes(x) for x in b], list(b.ends), b.next_offset, b.status))
        offset = b.next_offset
        if offset >= end:
            return out
    raise AssertionError("reads made no progress")


@pytest.mark.parametrize("map_runs", [True, False], ids=["mapped-in", "pread"])
def test_cold_reads_give_the_mapping_paths_bodies_byte_for_byte(tmp_path, monkeypatch,
                                                                 map_runs):
    # The kernel reading ahead would make records resident at its own pace: without it, what
    # the page cache holds (and so the path taken) is the test's doing alone.
    monkeypatch.setattr(ReadAhead, "before_read", lambda *args: False)
    monkeypatch.setattr(cold_read, "SCRATCH_BYTES", SCRATCH)
    monkeypatch.setattr(cold_read, "MAP_RUNS", map_runs)
    scratch = bytearray(SCRATCH)  # pread's landing place: untouched where runs are mapped in
    monkeypatch.setattr(ColdRead, "_scratch", lambda self: scratch)
    preads = []
    real = _native.read_bodies_pread
    monkeypatch.setattr(_native, "read_bodies_pread",
                        lambda *a: preads.append(a[1]) or real(*a))
    with rmqstore.open(tmp_path, **CFG) as s:
        _fill(s)
        assert len(s.commitlog.files.files) > 3, "the queue's records span segments"
        with monkeypatch.context() as warm:
            warm.setattr(ColdRead, "read", lambda *args: None)
            expected = [_read_all(s, *limits) for limits in READS]
        assert not preads
        for limits, want in zip(READS, expected, strict=True):
            before = len(preads)
            got = _read_all(s, *limits, cold=True)
            assert got == want, f"first, max_count, max_bytes = {limits}"
            assert len(preads) - before >= len(want), "every read took the pread path"
    assert any(scratch) != map_runs, "runs were read with pread" if map_runs else "not read"
