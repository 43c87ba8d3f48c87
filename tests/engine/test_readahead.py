"""A cold in-order read of one queue reads its own records from disk, not its neighbours':
the kernel's read-around for a fault on the commit log's mapping is centred on the miss (up to
read_ahead_kb each side), so a queue whose records lie in runs between another queue's read
both; the reader asks for its queue's runs ahead instead (rmq_readahead_queue)."""

from __future__ import annotations

import mmap
import os
import threading

import pytest

import rmqstore
from rmqstore import _native, read_ahead
from rmqstore.bench.scale import read_in_order

CFG = dict(commitlog_segment_bytes=128 << 20, index_enable=False, background=False)
RUN = [b"r" * 1000] * 1024  # one batch: a run of about 1.1 MiB of records
RUNS = 24


def _disk_read_bytes() -> int:
    with open("/proc/self/io") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("read_bytes:"))


def _drop_cache(store) -> None:
    """Out of the page cache: the commit log (unmapped from the open store first: a mapped
    page is not dropped) and the queue files."""
    for seg in store.commitlog.files.files:
        seg.mm.madvise(mmap.MADV_DONTNEED)
    drop_files(store.root)


def drop_files(root) -> None:
    """Every file under root out of the page cache (written out first); a mapped page stays."""
    for dirpath, _, names in os.walk(root):
        for name in names:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fdatasync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def test_a_cold_in_order_read_reads_only_its_own_runs(tmp_path):
    with rmqstore.open(tmp_path, **CFG) as s:
        s.create_topic("R", 2)
        for i in range(RUNS):  # A's runs and B's alternate in the log
            s.put_batch("R", RUN, queue_id=i % 2)
        record = s.get("R", 0, 1, 1).messages[0].commitlog_offset - \
            s.get("R", 0, 0, 1).messages[0].commitlog_offset
    if not os.path.exists("/proc/self/io"):
        pytest.skip("no /proc/self/io to count the bytes read from disk")
    with rmqstore.open(tmp_path, **CFG) as s:
        _drop_cache(s)
        before = _disk_read_bytes()
        got = read_in_order(s, "R", 0, s.max_offset("R", 0))
        read = _disk_read_bytes() - before
    wanted = got * record
    assert got == RUNS // 2 * len(RUN)
    print(f"read {read / 2**20:.1f} MiB from disk for {wanted / 2**20:.1f} MiB")
    assert read < 1.3 * wanted, f"read {read >> 20} MiB from disk for {wanted >> 20} MiB"


def test_an_in_order_read_across_queue_files_asks_ahead_from_the_worker(tmp_path, monkeypatch):
    """The window after a queue file's last one is the next file's start, asked for on the
    worker before the reader gets there: only the read's first window is the reader's own to
    ask for, and no ask reaches past a file's written units."""
    units, window = 3000, 1024
    monkeypatch.setattr(read_ahead, "READ_AHEAD_UNITS", window)
    monkeypatch.setattr(read_ahead, "READ_AHEAD_MIN_UNITS", 16)
    asked = []
    real = _native.readahead_queue

    def recording(mapping, from_pos, to_pos, table, max_bytes):
        covered = real(mapping, from_pos, to_pos, table, max_bytes)  # to the first unwritten
        asked.append((threading.current_thread() is threading.main_thread(), from_pos, to_pos,
                      covered))
        return covered

    monkeypatch.setattr(read_ahead._native, "readahead_queue", recording)
    total = 4 * units + 500  # five queue files, the last partly written
    with rmqstore.open(tmp_path, consumequeue_units=units, **CFG) as s:
        s.create_topic("R", 1)
        for _ in range(total // 500):
            s.put_batch("R", [b"x" * 10] * 500, queue_id=0)
    with rmqstore.open(tmp_path, consumequeue_units=units, **CFG) as s:
        for again in (False, True):  # read again from the start: asked for anew
            assert read_in_order(s, "R", 0, total, max_count=256) == total
            s._reader._read_ahead._pool.submit(int).result()  # the worker's asks are done
            by_reader = [a[:3] for a in asked if a[0]]
            assert by_reader == [(True, 0, window * 20)] * (1 + again), (again, by_reader)
            starts = sorted(a[1] // 20 for a in asked)
            # every file's first window, the first file's included
            assert starts.count(0) == 5 * (1 + again), (again, starts)
    assert all(lo < hi == covered for _, lo, hi, covered in asked), asked
