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

import array
import logging
from pathlib import Path
from typing import Iterator

from . import _native
from .errors import MessageTooLargeError
from .filenames import commitlog_dir
from .record import RecordField
from .segment import MappedFile
from .segment_queue import MappedFileQueue, Preallocator

log = logging.getLogger(__name__)


class CommitLog:
    """Appends are single-writer (the store's put lock); reads are lock-free below `wrote`."""

    def __init__(self, root: Path, segment_bytes: int, allocator: Preallocator | None) -> None:
        self.files = MappedFileQueue(commitlog_dir(root), segment_bytes, allocator)
        self.segment_bytes = segment_bytes

    def load(self) -> None:
        self.files.load()

    @property
    def min_offset(self) -> int:
        return self.files.min_offset

    @property
    def max_offset(self) -> int:
        return self.files.max_offset

    # -- appending ------------------------------------------------------------------------
    def append(self, body: bytes, topic: bytes, props: bytes, queue_id: int, flag: int,
               queue_offset: int, sysflag: int, born_ts: int, store_ts: int, born_host: bytes,
               store_host: bytes, reconsume_times: int, prepared_offset: int,
               cq_seg: MappedFile | None, cq_pos: int, tags_code: int) -> tuple[int, int]:
        """Append one record (and its CQ unit when cq_seg is given). Returns (offset, size)."""
        seg = self.files.last_for_write()
        for _ in range(2):
            size = _native.append(seg.region, seg.wrote, seg.start, body, topic, props,
                                  queue_id, flag, queue_offset, sysflag, born_ts, store_ts,
                                  born_host, store_host, reconsume_times, prepared_offset,
                                  cq_seg.region if cq_seg is not None else None, cq_pos,
                                  tags_code)
            if size > 0:
                offset = seg.start + seg.wrote
                seg.wrote += size
                return offset, size
            if size < 0:
                break
            seg.wrote = seg.size  # a BLANK filler closed it: roll and write again
            seg = self.files.last_for_write()
        raise MessageTooLargeError(
            f"a {len(body)}-byte body does not fit a {self.segment_bytes}-byte segment")

    def append_batch(self, bodies: bytes, lens: array.array, topic: bytes, props: bytes,
                     queue_id: int, flag: int, queue_offset: int, sysflag: int, born_ts: int,
                     store_ts: int, born_host: bytes, store_host: bytes, cq_room,
                     tags_code: int) -> array.array:
        """Append len(lens) records with consecutive queue offsets. `cq_room(queue_offset)`
        returns (segment, position, units of room) for the CQ units, or None to skip them.
        Returns the records' offsets; records before a failure stay written."""
        n = len(lens)
        phys = array.array("q", bytes(8 * n))
        done = 0
        body_at = 0
        while done < n:
            seg = self.files.last_for_write()
            cq = cq_room(queue_offset + done)
            cq_seg, cq_pos, room = cq if cq is not None else (None, 0, n)
            wrote, used = _native.append_batch(
                seg.region, seg.wrote, seg.start, bodies, lens, done, n - done, topic, props,
                queue_id, flag, queue_offset + done, sysflag, born_ts, store_ts, born_host,
                store_host, cq_seg.region if cq_seg is not None else None, cq_pos, room,
                tags_code, phys, body_at)
            seg.wrote += used
            if wrote:
                body_at += sum(lens[done:done + wrote])
                if cq_seg is not None:
                    cq_seg.wrote += wrote * 20
                done += wrote
            elif used == 0:  # not even an empty segment holds it
                raise MessageTooLargeError(
                    f"a {lens[done]}-byte body does not fit a {self.segment_bytes}-byte segment")
        return phys

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
            pos, status = _native.scan(seg.region, 0, check_crc)
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
