"""CommitLog: the one append-only log of every message (RocketMQ's CommitLog).

Files: commitlog/<20-digit start offset>, each exactly `commitlog_segment_bytes` long (1 GiB by
default), records back to back as record.py describes; a record never spans two segments, and a
BLANK filler closes a segment whose tail cannot hold the next record plus 8 bytes.

Recovery policy (CommitLog.recoverNormally / recoverAbnormally):
- a torn tail (the record at the end of the written data fails its size, magic or CRC check):
  cut there, zero the rest of the segment, log what was dropped;
- BLANK magic: the segment ended cleanly, continue in the next;
- segments wholly past the cut are deleted; CQ units pointing past it are dropped by the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from . import _native
from .filenames import commitlog_dir, offset_name
from .record import RecordField
from .segment import MappedFile
from .segment_queue import MappedFileQueue, Preallocator

log = logging.getLogger(__name__)


class CommitLog:
    """Appends are single-writer (the store's put lock); reads are lock-free below `wrote`."""

    def __init__(self, root: Path, segment_bytes: int, allocator: Preallocator | None,
                 store_host: bytes, batch_buffer_bytes: int = 0, advice: str = "normal",
                 stage_single_min: int = 0) -> None:
        self.files = MappedFileQueue(commitlog_dir(root), segment_bytes, allocator, advice)
        self.segment_bytes = segment_bytes
        self.appender = _native.Appender(store_host, store_host, 0, batch_buffer_bytes,
                                         stage_single_min)

    def load(self) -> None:
        self.files.load()

    @property
    def min_offset(self) -> int:
        return self.files.min_offset

    @property
    def max_offset(self) -> int:
        return self.files.max_offset

    # -- appending (the records themselves are encoded natively, see store.put) -------------
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
            self.appender.detach()
            if allocator is not None:  # make the first or next segment ahead of the first put
                start = last.start + self.segment_bytes if last is not None else 0
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
        """Every valid record with offset in [start, end), BLANK fillers skipped."""
        offset = start
        while offset < end:
            seg = self.files.find(offset)
            if seg is None:
                return
            fields = _native.parse(seg.region, offset - seg.start, False)
            if fields is None:
                return
            if fields == ():
                offset = seg.start + seg.size
                continue
            yield seg, fields
            offset += fields[RecordField.SIZE]

    # -- recovery -------------------------------------------------------------------------
    def scan_from(self, first_index: int, check_crc: bool) -> int:
        """Walk segments from files[first_index]; return the offset just past the last valid
        record (where appends continue)."""
        files = self.files.files
        if not files:
            return 0
        end = files[first_index].start
        for seg in files[first_index:]:
            pos, status = _native.scan(seg.region, seg.start, 0, check_crc)
            end = seg.start + pos
            if status == 1:  # BLANK: the segment is complete; continue in the next one
                end = seg.start + seg.size
                continue
            if status == 0:
                break
        return end

    def truncate(self, offset: int) -> None:
        """Cut the log at offset (see the recovery policy above)."""
        seg = self.files.find(offset)
        if seg is not None:
            pos = offset - seg.start
            tail = seg.view[pos:pos + 8]
            if any(tail):  # not just unwritten space: a torn or corrupt record
                log.warning("commit log: invalid record at offset %d; cut there, %d bytes of its "
                            "segment dropped", offset, seg.size - pos)
        self.files.truncate_dirty(offset)

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
