"""CommitLog: the one append-only log of every message (RocketMQ's CommitLog).

Files: commitlog/<20-digit start offset>, each exactly `commitlog_segment_bytes` long (1 GiB by
default), records back to back as record.py describes; a record never spans two segments, and a
BLANK filler closes a segment whose tail cannot hold the next record plus 8 bytes.

Recovery policy. RocketMQ (CommitLog.recoverNormally / recoverAbnormally) cuts the log at the
first record that fails its checks and deletes everything after it; one flipped byte in an old
segment after a clean close lost every later message. We keep every valid record:
- a record that fails its size, magic or CRC check while the consume queues know of records
  after it (their units end past it) is corruption in the middle: the scan resynchronizes at
  the next valid record, the bytes in between are skipped, kept as they are (a reader skips
  the units pointing there) and reported;
- one at or past the end of everything the consume queues know of is a torn tail: cut there,
  the rest of the segment zeroed, segments wholly past it deleted (CQ units pointing past it
  are dropped by the caller);
- BLANK magic: the segment ended cleanly, continue in the next.
A resynchronization point must pass every check of the scan, CRC included, name its own
offset in PHYSICALOFFSET, and lie inside no record a consume-queue unit points at: a body
crafted to look like a record is never taken for one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

from . import _native
from .filenames import offset_name
from .record import RecordField
from .segment import MappedFile
from .segment_queue import MappedFileQueue, Preallocator

log = logging.getLogger(__name__)


class CommitLog:
    """Appends are single-writer (the store's put lock); reads are lock-free below `wrote`."""

    def __init__(self, directory: Path, segment_bytes: int, allocator: Preallocator | None,
                 store_host: bytes, batch_buffer_bytes: int = 0, advice: str = "normal",
                 stage_single_min: int = 0) -> None:
        self.files = MappedFileQueue(directory, segment_bytes, allocator, advice)
        self.segment_bytes = segment_bytes
        # Corrupt ranges recovery found and kept behind (offset, length): reads skip them.
        self.skipped: list[tuple[int, int]] = []
        self.appender = _native.Appender(store_host, store_host, 0, batch_buffer_bytes,
                                         stage_single_min)
        # A shared store's catch-up, when an append answers RMQ_STALE (shared/view.py).
        self.on_stale: Callable[[object], None] | None = None

    def load(self) -> None:
        self.files.load()

    @property
    def min_offset(self) -> int:
        return self.files.min_offset

    @property
    def max_offset(self) -> int:
        return self.files.max_offset

    # -- appending (the records themselves are encoded natively, see store.put) -------------
    def catch_up(self, cq) -> None:
        """An append answered RMQ_STALE: another process wrote past this process's files."""
        if self.on_stale is None:
            raise RuntimeError("a store opened by one process cannot be stale")
        self.on_stale(cq)

    def roll(self) -> None:
        """Point the native appender at a segment with room: the last one, or a new one."""
        self.appender.attach(self.files.last_for_write())

    def attach_last(self) -> None:
        """After recovery: append into the last segment if it has room; otherwise the first
        append creates the next one (so a store on a full disk still opens for reading)."""
        last = self.files.last()
        allocator = self.files.allocator
        if last is not None and not last.full:
            self.appender.attach(last)
        else:
            start = last.start + self.segment_bytes if last is not None else 0
            self.appender.detach(start)
            if allocator is not None:  # make the first or next segment ahead of the first put
                allocator.request(self.files.directory / offset_name(start), start,
                                  self.segment_bytes, self.files.advice)

    # -- reading --------------------------------------------------------------------------
    def parse_at(self, offset: int, check_crc: bool = False):
        """(segment, 16 parsed fields) of the record at offset, or None."""
        seg = self.files.find(offset)
        if seg is None or offset >= seg.start + seg.wrote:
            return None
        fields = _native.parse(seg.region, offset - seg.start, check_crc)
        if not fields:
            return None
        return seg, fields

    def records(self, start: int, end: int) -> Iterator[tuple[MappedFile, tuple]]:
        """Every valid record with offset in [start, end), BLANK fillers and the corrupt
        ranges recovery skipped passed over."""
        offset = start
        skipped = dict(self.skipped)
        while offset < end:
            seg = self.files.find(offset)
            if seg is None:
                return
            fields = _native.parse(seg.region, offset - seg.start, False)
            if fields is None:
                if offset not in skipped:
                    return
                offset += skipped[offset]
                continue
            if fields == ():
                offset = seg.start + seg.size
                continue
            yield seg, fields
            offset += fields[RecordField.SIZE]

    # -- recovery -------------------------------------------------------------------------
    def scan_from(self, first_index: int, check_crc: bool, known_end: Callable[[int, int], int],
                  inside_known: Callable[[int], bool]) -> tuple[int, list[tuple[int, int]], int]:
        """Walk segments from files[first_index] (see the recovery policy above): (the offset
        just past the last valid record, where appends continue; the corrupt ranges skipped,
        as (offset, length); the offset of the last valid record, -1 when none).
        known_end(stop, last): where the records the consume queues know of end, asked where
        the scan stops at `stop` after the record at `last`; inside_known(offset): whether a
        record they know of spans offset."""
        files = self.files.files
        if not files:
            return 0, [], -1
        end = files[first_index].start
        skipped: list[tuple[int, int]] = []
        seg, pos, last = files[first_index], 0, -1
        while True:
            pos, status, at = _native.scan(seg.region, seg.start, pos, check_crc)
            if at >= 0:
                last = seg.start + at
            end = seg.start + pos
            if status == 1:  # BLANK: the segment is complete; continue in the next one
                end = seg.start + seg.size
            if status != 0:
                seg, pos = self.files.find(seg.start + seg.size), 0
                if seg is None:
                    return end, skipped, last
                continue
            nxt = self._resync(end, known_end(end, last), inside_known)
            if nxt is None:
                return end, skipped, last
            skipped.append((end, nxt - end))
            seg = self.files.find(nxt)
            pos = nxt - seg.start

    def _resync(self, bad: int, known_end: int, inside_known: Callable[[int], bool]) -> int | None:
        """The next valid record after the invalid one at bad, or None (a torn tail)."""
        offset = bad + 1
        while offset < known_end:
            seg = self.files.find(offset)
            if seg is None:
                return None
            found = _native.resync(seg.region, seg.start, offset - seg.start,
                                   known_end - seg.start)
            if found < 0:  # none left in this segment: its successor starts with a record
                offset = seg.start + seg.size
                continue
            if not inside_known(seg.start + found):
                return seg.start + found
            offset = seg.start + found + 1
        return None

    def unwritten_at(self, offset: int) -> bool:
        """Whether offset holds what unwritten space holds (a zero size and magic), as at the
        end of the log; not a torn or corrupt record's bytes."""
        seg = self.files.find(offset)
        if seg is None:
            return True
        pos = offset - seg.start
        return not any(seg.view[pos:pos + 8])

    def truncate(self, offset: int, forget: bool = False) -> None:
        """Cut the log at offset (see the recovery policy above). forget: valid records after
        it go, which a failed sync may have kept from the disk (sync_failure.py)."""
        seg = self.files.find(offset)
        if seg is not None and not forget and not self.unwritten_at(offset):  # torn, corrupt
            log.warning("commit log: invalid record at offset %d; cut there, %d bytes of its "
                        "segment dropped", offset, seg.start + seg.size - offset)
        self.files.truncate_dirty(offset, forget)

    def first_segment_before(self, ts_ms: int) -> int:
        """Index of the newest segment whose first record was stored at or before ts_ms
        (abnormal recovery's start), 0 when none."""
        files = self.files.files
        for i in range(len(files) - 1, -1, -1):
            fields = _native.parse(files[i].region, 0, True)
            if fields and 0 < fields[RecordField.STORE_TIMESTAMP] <= ts_ms:
                return i
        return 0

    def flush(self, upto: int) -> int:
        return self.files.flush(upto)

    def close(self) -> None:
        self.files.close()
