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

Beyond RocketMQ, which allocates and maps every file whole: files are sparse and filled as
they are written, mapped without a descriptor, and unmapped while idle (queue_file.QueueFile,
mapping_clock.py), so an idle queue costs about 20 KiB of disk and nothing else.
"""

from __future__ import annotations

import logging
import struct
from pathlib import Path

from . import _native
from .filenames import list_offset_files
from .mapping_clock import MappingClock
from .queue_file import QueueFile, read_tail
from .segment_queue import MappedFileQueue

log = logging.getLogger(__name__)

UNIT = struct.Struct(">qiq")  # commit-log offset, size, tags code
UNIT_SIZE = UNIT.size  # 20
BLANK_SIZE = 0x7FFFFFFF


class ConsumeQueue:
    """Writers (appends, recovery, retention) hold the store's put lock, which also guards
    mapping its files. Readers take no lock: they read below max_offset through pinned
    mappings (``pinned``). The native appends keep a queue's last few units staged in its
    write state (rmq_queue.stage) until a stage fills; max_offset counts only the units in
    the file, so a reader gets the queue from ConsumeQueueTable.get, which writes them out,
    and a writer asks max_offset_locked()."""

    # Slots: a put reads wptr and queue_id of one queue out of thousands (fewer cache misses)
    __slots__ = ("clock", "file_size", "files", "min_logic", "queue_id", "read_ahead",
                 "slot_word", "topic", "waddr", "wptr", "writer")

    def __init__(self, directory: Path, topic: str, queue_id: int, units_per_file: int,
                 clock: MappingClock) -> None:
        self.topic = topic
        self.queue_id = queue_id
        self.file_size = units_per_file * UNIT_SIZE
        self.clock = clock
        self.files = MappedFileQueue(directory, self.file_size, None, kind=_QueueFiles(self))
        # The native write state: active file, and the end of the last record the queue points
        # at (max_phys, the idempotence guard of re-dispatch). Attached on the first append.
        self.writer = _native.QueueWriter(topic.encode(), queue_id)
        self.wptr = self.writer.ptr  # what the native appends take
        self.waddr = _native.queue_address(self.writer)  # and the C-API puts its address
        self.min_logic = 0  # byte offset of the first unit still backed by the CommitLog
        # The unit-byte window an in-order read last asked the kernel to read ahead (reader.py)
        self.read_ahead = (0, 0)

    @property
    def max_phys(self) -> int:
        return self.writer.max_phys

    @max_phys.setter
    def max_phys(self, value: int) -> None:
        self.writer.max_phys = value

    # -- load and recovery ---------------------------------------------------------------
    def load(self) -> None:
        self.files.load()

    def recover(self, clean: bool) -> None:
        """ConsumeQueue.recover: keep units while offset >= 0 and size > 0 and cut the rest (a
        torn unit from a crash is dropped here). After a clean close only the last file is
        read, and nothing is cut when the scan ends at an unwritten unit; after a crash the
        scan starts at the third-last file, as RocketMQ's does, and the tail is cut."""
        files = self.files.files
        if not files:
            return
        first = len(files) - 1 if clean else max(0, len(files) - 3)
        # Units are synced in order, so after a power loss the unsynced tail can span more
        # files than that: start no later than the last file whose first unit is there.
        while first > 0 and UNIT.unpack_from(files[first].mapped().view, 0)[1] <= 0:
            first -= 1
        end = files[first].start
        for seg in files[first:]:
            pos, self.max_phys = _native.scan_units(seg.mapped(), 0, seg.size, self.max_phys)
            end = seg.start + pos
            if pos < seg.size:
                break
        last = files[-1]
        if clean and last.start <= end < last.start + last.size and \
                not any(last.mapped().view[end - last.start:end - last.start + UNIT_SIZE]):
            last.set_positions(end - last.start)  # an unwritten unit: nothing to cut
        else:
            self.files.truncate_dirty(end)
        self.min_logic = self.files.min_offset
        self._skip_blank_prefix()
        self.writer.detach()

    def _skip_blank_prefix(self) -> None:
        seg = self.files.files[0] if self.files.files else None
        if seg is None:
            return
        pos = self.min_logic - seg.start
        view = seg.mapped().view
        while pos + UNIT_SIZE <= seg.wrote:
            _, size, _ = UNIT.unpack_from(view, pos)
            if size != BLANK_SIZE:
                break
            pos += UNIT_SIZE
        self.min_logic = seg.start + pos

    def truncate_dirty(self, phys_offset: int) -> None:
        """Drop units pointing at or past phys_offset (the CommitLog was cut there)."""
        self.writer.unstage()
        files = self.files.files
        cut = None
        for seg in reversed(files):
            pos = seg.wrote - UNIT_SIZE
            view = seg.mapped().view if pos >= 0 else None
            while pos >= 0:
                phys, size, _ = UNIT.unpack_from(view, pos)
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
        self.writer.detach()

    # -- writing -------------------------------------------------------------------------
    def roll(self) -> None:
        """Give the native writer room (it answered QUEUE_FULL): the next reserved chunk of the
        last file, the next file, or the first file of a new queue, mapped."""
        self._attach(self.files.last_for_write())

    def attach_last(self) -> None:
        """Point the native writer at the last file if it has room, else at nothing, starting
        where the next file starts (a shared store's published end must be there)."""
        last = self.files.last()
        if last is not None and not last.full:
            self._attach(last)
        else:
            self.writer.detach(last.start + self.file_size if last is not None else 0)

    def _attach(self, seg: QueueFile) -> None:
        seg.reserve(seg.wrote + UNIT_SIZE)
        seg.mapped()
        self.writer.attach(seg)

    def segment_for(self, queue_offset: int) -> tuple[QueueFile, int]:
        """(file, byte position) where the unit for queue_offset goes, for the Python write
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
        seg.reserve(pos + UNIT_SIZE)
        return seg, pos

    def _prefill(self, seg: QueueFile, upto: int) -> None:
        seg.reserve(upto)
        blank = UNIT.pack(0, BLANK_SIZE, 0)
        view = seg.mapped().view
        for pos in range(seg.wrote, upto, UNIT_SIZE):
            view[pos:pos + UNIT_SIZE] = blank
        seg.wrote = upto

    def put(self, queue_offset: int, phys: int, size: int, tags_code: int) -> bool:
        """Write one unit (the recovery re-dispatch path). Idempotent: a unit for a record at
        or below max_phys is already here. Returns whether it wrote."""
        self.writer.unstage()
        if phys + size <= self.max_phys or queue_offset < self.max_offset:
            return False
        seg, pos = self.segment_for(queue_offset)
        UNIT.pack_into(seg.mapped().view, pos, phys, size, tags_code)
        seg.wrote = pos + UNIT_SIZE
        self.max_phys = phys + size
        self.writer.detach()  # the writer re-attaches on its first append
        return True

    # -- reading -------------------------------------------------------------------------
    @property
    def max_offset(self) -> int:
        """Next queue offset to be written (= number of units ever written)."""
        return self.files.max_offset // UNIT_SIZE

    def max_offset_locked(self) -> int:
        """max_offset for a caller holding the put lock: the units appends staged
        (rmq_queue.stage) are written out first. A reader without the lock gets the queue
        from ConsumeQueueTable.get, which does the same."""
        self.writer.unstage()
        return self.max_offset

    @property
    def min_offset(self) -> int:
        return self.min_logic // UNIT_SIZE

    def pinned(self, seg: QueueFile) -> _native.Mapping:
        """seg's mapping, pinned for a reader until seg.unpin(); an unmapped file is mapped
        under the put lock (the clock's)."""
        m = seg.pin()
        while m is None:
            with self.clock.lock:
                seg.mapped()
                m = seg.pin()
        return m

    def unit(self, offset: int) -> tuple[int, int, int] | None:
        seg = self.files.find(offset * UNIT_SIZE)
        if seg is None or offset * UNIT_SIZE - seg.start >= seg.wrote:
            return None
        m = self.pinned(seg)
        try:
            return UNIT.unpack_from(m.view, offset * UNIT_SIZE - seg.start)
        finally:
            seg.unpin()

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
        to retire(segment), which unlinks it and unmaps it later. Under the put lock."""
        removed = 0
        while len(self.files.files) > 1:
            seg = self.files.files[0]
            phys, size, _ = UNIT.unpack_from(seg.mapped().view, seg.size - UNIT_SIZE)
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
        view = seg.mapped().view if pos + UNIT_SIZE <= seg.wrote else None
        while pos + UNIT_SIZE <= seg.wrote:
            phys, size, _ = UNIT.unpack_from(view, pos)
            if phys >= min_phys and size != BLANK_SIZE:
                break
            pos += UNIT_SIZE
        self.min_logic = seg.start + pos

    def unflushed(self) -> list[QueueFile]:
        """The files holding units not yet durable, oldest first (the order to sync them in:
        recovery takes units as synced in order)."""
        found = []
        for seg in reversed(self.files.files):
            if seg.flushed < seg.wrote:
                found.append(seg)
            elif seg.wrote == seg.size:
                break  # a full, clean file: everything before it is clean too
        found.reverse()
        return found

    def flush(self) -> None:
        for seg in self.unflushed():
            seg.flush()

    def close(self) -> None:
        self.writer.detach()
        self.files.close()

    def destroy(self) -> None:
        self.writer.detach()
        for seg in self.files.files:
            seg.destroy()
        self.files.files = []


class _QueueFiles:
    """How a ConsumeQueue's MappedFileQueue makes its files: QueueFiles under its clock."""

    def __init__(self, owner: ConsumeQueue) -> None:
        self.owner = owner

    def create(self, path: Path, start: int, size: int, advice: str) -> QueueFile:
        return QueueFile.create(path, start, size, self.owner.clock, self.owner)

    def open(self, path: Path, start: int, size: int, advice: str) -> QueueFile:
        return QueueFile.open(path, start, size, self.owner.clock, self.owner)


def delete_expired_files(directory: Path, min_phys: int) -> int:
    """Retention for a queue that is not loaded: delete its files (never the last) whose last
    unit points below min_phys, reading that unit through a descriptor held for the read.
    Under the put lock, so that the queue is not loaded meanwhile."""
    removed = 0
    for _, path in list_offset_files(directory)[:-1]:
        phys, size, _ = UNIT.unpack(read_tail(path, UNIT_SIZE))
        if phys + size > min_phys and size != BLANK_SIZE:
            break
        path.unlink()
        removed += 1
    return removed
