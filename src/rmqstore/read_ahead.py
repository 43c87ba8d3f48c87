"""ReadAhead: an in-order read of a queue asks the kernel for the queue's own records before it
needs them, from a thread of its own.

The kernel's read-around for a fault on the commit log's mapping is centred on the miss (up to
read_ahead_kb each side), so a cold read of a queue whose records lie in runs between other
queues' reads theirs too: twice the bytes where two queues alternate. Instead, one to two
windows of READ_AHEAD_UNITS units are kept asked for ahead of the reader: their records, in
runs, and the units themselves go to the kernel with MADV_WILLNEED (rmq_readahead_queue),
which returns at once when they are cached already. A read that starts somewhere new asks for
its first window itself; the next ones are asked for on a worker thread, since asking waits
for the units it walks and costs the CPU a page at a time: the reader copies meanwhile.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from . import _native
from .consumequeue import UNIT_SIZE, ConsumeQueue
from .queue_file import QueueFile

# Units asked for ahead of the reader, at least (of 191-byte records, 48 MiB): with a quarter
# of it the reader overtook what it asked for on a loaded machine, and each fault it met read
# 8 MiB around the miss, the other queue's records too (10-25% more read from the disk).
READ_AHEAD_UNITS = 256 << 10
READ_AHEAD_BYTES = 64 << 20  # of records per request, at most
READ_AHEAD_MIN_UNITS = 1024  # fewer left to the end of the written units: none asked for


class ReadAhead:
    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rmq-readahead")
        self._closed = False

    def before_read(self, cq: ConsumeQueue, seg: QueueFile, pos: int,
                    table: _native.SegmentTable) -> bool:
        """A read of cq's units from byte pos of seg (which the caller has pinned) is about to
        start. cq.read_ahead is the unit range asked for so far (a hint: readers may race).
        True when the read lies in a range asked for: an in-order read away from the tail."""
        at = seg.start + pos
        start, end = cq.read_ahead
        window = READ_AHEAD_UNITS * UNIT_SIZE
        inside = start <= at < end
        if start <= at <= end:
            # The range starts at the reader: a read behind it (the queue read again from an
            # earlier offset, once its pages may have left) starts over instead of finding its
            # records asked for long ago.
            start = at
            if end - at >= 2 * window:
                cq.read_ahead = (start, end)
                return inside
            first = end
        else:  # a read somewhere else: start over from it
            start = first = at
        if first >= seg.start + seg.size:
            # Asked for to this file's end: the next window is the next file's start, asked for
            # now, or the reader would meet it unasked and ask for it itself (for a 48 MiB
            # window, nine tenths of an in-order read's asking was the reader's own).
            nxt = cq.files.find(first)
            if nxt is None:
                return inside
            seg = nxt
        last = min(seg.start + seg.wrote, first + window)
        if last - first < READ_AHEAD_MIN_UNITS * UNIT_SIZE or self._closed:
            return inside  # at the queue's tail, which is hot
        # for _ask: the caller's pin ends with its read; the next file is mapped if need be,
        # as the reader would map it soon (a file not yet read is rarely mapped)
        mapping = seg.pin() if at >= seg.start else cq.pinned(seg)
        if mapping is None:
            return inside
        cq.read_ahead = (start, last)
        if first == at:  # nothing asked for ahead of this read: ask before it faults
            _ask(cq, seg, mapping, start, first - seg.start, last - seg.start, table)
            return True
        try:
            self._pool.submit(_ask, cq, seg, mapping, start, first - seg.start,
                              last - seg.start, table)
        except RuntimeError:  # shut down meanwhile
            seg.unpin()
        return True

    def close(self) -> None:
        self._closed = True
        self._pool.shutdown(wait=True)


def _ask(cq: ConsumeQueue, seg: QueueFile, mapping, start: int, from_pos: int, to_pos: int,
         table: _native.SegmentTable) -> None:
    try:
        covered = _native.readahead_queue(mapping, from_pos, to_pos, table, READ_AHEAD_BYTES)
    finally:
        seg.unpin()
    if covered < to_pos:  # READ_AHEAD_BYTES ended it early: the rest is asked for next
        cq.read_ahead = (start, seg.start + covered)
