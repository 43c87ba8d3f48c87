"""ConsumeQueue: the per-(topic, queue) index into the CommitLog (RocketMQ's ConsumeQueue).

Files: consumequeue/<topic>/<queueId>/<20-digit byte offset>, each `units * 20` bytes
(300,000 units = 6,000,000 bytes by default), no header, no CRC. Unit n of the queue lives at
byte n * 20 of the virtual stream. One 20-byte unit, big-endian:

    off  size  field
      0     8  commit-log offset of the record
      8     4  record size (TOTALSIZE)
     12     8  tags code: Java String.hashCode(TAGS), 0 without tags

An all-zero unit marks the end of written data; (0, 0x7FFFFFFF, 0) is a pre-fill blank written
below the first unit of a queue that starts past offset 0. Example: the unit for a 96-byte
record at offset 4096 with tag "A" (hash 65) is 00..10 00 | 00 00 00 60 | 00..00 41.
"""

from __future__ import annotations

import logging
import struct
from pathlib import Path

from . import _native
from .segment_queue import MappedFileQueue

log = logging.getLogger(__name__)

UNIT = struct.Struct(">qiq")  # commit-log offset, size, tags code
UNIT_SIZE = UNIT.size  # 20
BLANK_SIZE = 0x7FFFFFFF


class ConsumeQueue:
    """Not thread-safe for writers: appends happen under the store's put lock. Readers read
    below max_offset."""

    def __init__(self, directory: Path, topic: str, queue_id: int, units_per_file: int) -> None:
        self.topic = topic
        self.queue_id = queue_id
        self.file_size = units_per_file * UNIT_SIZE
        self.files = MappedFileQueue(directory, self.file_size, None)
        # The native write state: active file, and the end of the last record the queue points
        # at (max_phys, the idempotence guard of re-dispatch).
        self.writer = _native.QueueWriter(topic.encode(), queue_id)
        self.wptr = self.writer.ptr  # what the native appends take
        self.min_logic = 0  # byte offset of the first unit still backed by the CommitLog

    @property
    def max_phys(self) -> int:
        return self.writer.max_phys

    @max_phys.setter
    def max_phys(self, value: int) -> None:
        self.writer.max_phys = value

    # -- load and recovery ---------------------------------------------------------------
    def load(self) -> None:
        self.files.load()

    def recover(self) -> None:
        """ConsumeQueue.recover: from the third-last file, keep units while offset >= 0 and
        size > 0; cut the rest (a torn unit from a crash is dropped here)."""
        files = self.files.files
        if not files:
            return
        first = max(0, len(files) - 3)
        # Units are synced in order, so after a power loss the unsynced tail can span more
        # files than that: start no later than the last file whose first unit is there.
        while first > 0 and UNIT.unpack_from(files[first].view, 0)[1] <= 0:
            first -= 1
        end = files[first].start
        for seg in files[first:]:
            pos = 0
            view = seg.view
            while pos + UNIT_SIZE <= seg.size:
                phys, size, _ = UNIT.unpack_from(view, pos)
                if phys < 0 or size <= 0:
                    break
                if size != BLANK_SIZE:
                    self.max_phys = phys + size
                pos += UNIT_SIZE
            end = seg.start + pos
            if pos < seg.size:
                break
        self.files.truncate_dirty(end)
        self.min_logic = self.files.min_offset
        self._skip_blank_prefix()
        self._attach_last()

    def _skip_blank_prefix(self) -> None:
        seg = self.files.files[0] if self.files.files else None
        if seg is None:
            return
        pos = self.min_logic - seg.start
        while pos + UNIT_SIZE <= seg.wrote:
            _, size, _ = UNIT.unpack_from(seg.view, pos)
            if size != BLANK_SIZE:
                break
            pos += UNIT_SIZE
        self.min_logic = seg.start + pos

    def truncate_dirty(self, phys_offset: int) -> None:
        """Drop units pointing at or past phys_offset (the CommitLog was cut there)."""
        files = self.files.files
        cut = None
        for seg in reversed(files):
            pos = seg.wrote - UNIT_SIZE
            while pos >= 0:
                phys, size, _ = UNIT.unpack_from(seg.view, pos)
                if phys < phys_offset or size == BLANK_SIZE:
                    cut = seg.start + pos + UNIT_SIZE
                    self.max_phys = phys + size if size != BLANK_SIZE else 0
                    break
                pos -= UNIT_SIZE
            if cut is not None:
                break
        if cut is None:
            cut = files[0].start if files else 0
            self.max_phys = 0
        if cut < self.files.max_offset:
            self.files.truncate_dirty(cut)
        self._attach_last()

    # -- writing -------------------------------------------------------------------------
    def _attach_last(self) -> None:
        last = self.files.last()
        if last is not None and not last.full:
            self.writer.attach(last)
        else:  # where the next file starts: a shared store's published end must be there
            self.writer.detach(last.start + self.file_size if last is not None else 0)

    def roll(self) -> None:
        """Give the native writer a file with room: the next one, or the first of a new queue."""
        self.writer.attach(self.files.last_for_write())

    def segment_for(self, queue_offset: int):
        """(segment, byte position) where the unit for queue_offset goes, for the Python write
        path of re-dispatch; a queue whose first unit is not unit 0 is pre-filled with blank
        units, as RocketMQ does."""
        expect = queue_offset * UNIT_SIZE
        if not self.files.files:
            seg = self.files.last_for_write(expect)
            if expect > seg.start:
                self._prefill(seg, expect - seg.start)
            self.min_logic = expect
        seg = self.files.last_for_write()
        pos = expect - seg.start
        if pos != seg.wrote:
            if pos < seg.wrote or pos >= seg.size:
                raise ValueError(f"{self.topic}/{self.queue_id}: unit {queue_offset} out of order "
                                 f"(next is {self.max_offset})")
            log.warning("%s/%d: gap before unit %d", self.topic, self.queue_id, queue_offset)
            self._prefill(seg, pos)
        return seg, pos

    def _prefill(self, seg, upto: int) -> None:
        blank = UNIT.pack(0, BLANK_SIZE, 0)
        for pos in range(seg.wrote, upto, UNIT_SIZE):
            seg.view[pos:pos + UNIT_SIZE] = blank
        seg.wrote = upto

    def put(self, queue_offset: int, phys: int, size: int, tags_code: int) -> bool:
        """Write one unit (the recovery re-dispatch path). Idempotent: a unit for a record at
        or below max_phys is already here. Returns whether it wrote."""
        if phys + size <= self.max_phys or queue_offset < self.max_offset:
            return False
        seg, pos = self.segment_for(queue_offset)
        UNIT.pack_into(seg.view, pos, phys, size, tags_code)
        seg.wrote = pos + UNIT_SIZE
        self.max_phys = phys + size
        self._attach_last()
        return True

    # -- reading -------------------------------------------------------------------------
    @property
    def max_offset(self) -> int:
        """Next queue offset to be written (= number of units ever written)."""
        return self.files.max_offset // UNIT_SIZE

    @property
    def min_offset(self) -> int:
        return self.min_logic // UNIT_SIZE

    def unit(self, offset: int) -> tuple[int, int, int] | None:
        seg = self.files.find(offset * UNIT_SIZE)
        if seg is None or offset * UNIT_SIZE - seg.start >= seg.wrote:
            return None
        return UNIT.unpack_from(seg.view, offset * UNIT_SIZE - seg.start)

    def visible_max(self, confirm: int) -> int:
        """The queue's max offset as a reader may see it: units of records that end after
        ``confirm`` (not yet held by every in-sync replica) hidden. Phys offsets grow with
        queue offsets, so the hidden units are a tail."""
        lo, hi = self.min_offset, self.max_offset
        while lo < hi:
            mid = (lo + hi) // 2
            unit = self.unit(mid)
            if unit is None or (unit[1] != BLANK_SIZE and unit[0] + unit[1] > confirm):
                hi = mid
            else:
                lo = mid + 1
        return lo

    def spans(self, phys: int) -> bool:
        """Whether a unit's record covers commit-log offset phys without starting there
        (recovery's resynchronization check); a binary search over the units."""
        lo, hi = self.min_offset, self.max_offset
        while lo < hi:  # the first unit whose record starts past phys
            mid = (lo + hi) // 2
            unit = self.unit(mid)
            if unit is None or unit[0] > phys:
                hi = mid
            else:
                lo = mid + 1
        if lo == self.min_offset:
            return False
        unit = self.unit(lo - 1)
        return unit is not None and unit[1] != BLANK_SIZE and unit[0] < phys < unit[0] + unit[1]

    # -- retention -----------------------------------------------------------------------
    def delete_expired(self, min_phys: int, retire) -> int:
        """Drop whole files (never the last) whose last unit points below min_phys; each goes
        to retire(segment), which unlinks it and unmaps it later."""
        removed = 0
        while len(self.files.files) > 1:
            seg = self.files.files[0]
            phys, size, _ = UNIT.unpack_from(seg.view, seg.size - UNIT_SIZE)
            if phys + size > min_phys and size != BLANK_SIZE:
                break
            self.files.files = self.files.files[1:]  # copy-on-write for concurrent readers
            retire(seg)
            removed += 1
        self.correct_min_offset(min_phys)
        return removed

    def correct_min_offset(self, min_phys: int) -> None:
        """First unit pointing at or past min_phys becomes the queue's minimum."""
        files = self.files.files
        if not files:
            return
        seg = files[0]
        pos = max(0, self.min_logic - seg.start)
        while pos + UNIT_SIZE <= seg.wrote:
            phys, size, _ = UNIT.unpack_from(seg.view, pos)
            if phys >= min_phys and size != BLANK_SIZE:
                break
            pos += UNIT_SIZE
        self.min_logic = seg.start + pos

    def flush(self) -> None:
        last = self.files.last()
        if last is not None and last.flushed < last.wrote:
            self.files.flush(last.end)

    def close(self) -> None:
        self.files.close()

    def destroy(self) -> None:
        for seg in self.files.files:
            seg.destroy()
        self.files.files = []
