"""ColdRead: get_bodies's path for records not in the page cache. Read through the mapping, a
cold record costs a page fault that waits alone for its page, and one that ReadAhead brought in
still costs a fault per few pages to map; instead the commit-log pages behind the units are
brought in one call per run of records lying back to back (rmq_read_bodies_pread): mapped in
with MADV_POPULATE_READ, or where the kernel cannot, read with pread into a per-thread scratch
buffer, while ReadAhead keeps the kernel reading the runs ahead. A read at a queue's hot tail or
out of order whose records are cached, or whose records are gone, keeps the mapping.
"""

from __future__ import annotations

import array
import os
import threading

from . import _native
from .consumequeue import UNIT, UNIT_SIZE

SCRATCH_BYTES = 1 << 20  # one run read per call, at most (a larger record: the mapping)
MAX_SEGMENTS = 4  # commit-log files opened for one read, at most (those after: the mapping)
# Runs mapped in rather than copied out with pread: a third of the CPU per byte (measured on
# cached pages, 1 MiB runs: 11-18 GB per CPU-second against pread's 4-5)
MAP_RUNS = True


class ColdRead:
    def __init__(self, written_from: int) -> None:
        """written_from: the commit log's end at open; records after it were written through
        this process's mapping, so while cached they are mapped too: the mapping reads them
        fastest (pread copies them twice)."""
        self._written_from = written_from
        self._local = threading.local()

    def read(self, units: _native.Mapping, pos: int, end: int, table: _native.SegmentTable,
             max_out: int, capacity: int,
             ahead: bool) -> tuple[bytearray, array.array, int, int] | None:
        """_native.read_bodies's answer for units [pos, end) (pinned by the caller), read with
        pread when the last unit's record is not in the page cache, or is but was read ahead
        for an in-order reader (ahead) and not written since open (so not mapped yet); None
        otherwise, or when it is not in the table: then the caller reads through the mapping."""
        view = units.view
        phys, size, _ = UNIT.unpack_from(view, end - UNIT_SIZE)
        resident = _native.record_resident(table, phys, size)
        if resident < 0 or (resident and (not ahead or phys >= self._written_from)):
            return None
        lo = _segment_index(table, UNIT.unpack_from(view, pos)[0])
        hi = min(_segment_index(table, phys), lo + MAX_SEGMENTS - 1)
        fds = [-1] * len(table.segments)
        try:
            for i in range(lo, hi + 1):
                fds[i] = _open(table.segments[i].path)
            return _native.read_bodies_pread(units, pos, end, table, fds, self._scratch(),
                                             max_out, capacity, MAP_RUNS)
        finally:
            for fd in fds[lo:hi + 1]:
                if fd >= 0:
                    os.close(fd)

    def _scratch(self) -> bytearray:
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = bytearray(SCRATCH_BYTES)
        return scratch


def _segment_index(table: _native.SegmentTable, phys: int) -> int:
    """The table's segment holding phys, clamped to the table (a unit whose record is gone
    points below it)."""
    i = (phys - table.ptr.first_start) // table.ptr.seg_size
    return min(max(i, 0), len(table.segments) - 1)


def _open(path) -> int:
    """A read descriptor of its own (a segment's may be closed by retention meanwhile, and its
    number reused); -1 when it cannot be had (deleted, or no descriptor left): the mapping."""
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return -1
