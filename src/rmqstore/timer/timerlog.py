"""TimerLog: the append-only log of timer entries (RocketMQ 5's TimerLog, own layout).

Files: `<store>/timerlog/<20-digit start offset>`, fixed-size segments (a multiple of 40 bytes),
managed by the engine's MappedFileQueue. A record is 40 bytes, big-endian:

    off  size  type   field        meaning
      0     8  int64  prev_pos     timer-log offset of the previous record linked into the same
                                   slot (same slot_ms), or -1 for the slot's first record
      8     8  int64  slot_ms      start time of the wheel slot this record is linked into
     16     8  int64  deliver_ms   when the message is due (epoch ms)
     24     8  int64  cl_offset    commit-log offset of the message (in rmq_sys_wheel_timer)
     32     4  int32  size         that message's record size in the commit log
     36     4  int32  magic        bit 0 (MAGIC_ROLL): due beyond the wheel window; when its
                                   slot comes the message is re-enqueued, not delivered

Example: message at commit-log offset 4096 (310 bytes) due at 1700000000123, first in slot
1700000000120 -> ffffffffffffffff 0000018bcfe56878 0000018bcfe5687b 0000000000001000
00000136 00000000 (spaces added).

A slot's records form a chain walked backwards from the wheel's last_pos through prev_pos:
records of one slot_ms are chained in log order, so a wheel can be rebuilt from the log alone
(see TimerWheel and recovery in slots.py). Segments are deleted once every record in them
belongs to a slot already delivered.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from ..segment import MappedFile
from ..segment_queue import MappedFileQueue

log = logging.getLogger(__name__)

RECORD = struct.Struct(">qqqqii")  # prev_pos slot_ms deliver_ms cl_offset size magic
RECORD_SIZE = RECORD.size  # 40
MAGIC_ROLL = 1
NO_PREV = -1


class TimerRecord(NamedTuple):
    pos: int  # timer-log offset of this record
    prev_pos: int
    slot_ms: int
    deliver_ms: int
    cl_offset: int
    size: int
    magic: int

    @property
    def roll(self) -> bool:
        return bool(self.magic & MAGIC_ROLL)


class TimerLog:
    """Single writer (the timer service's thread); reads only below the write position."""

    def __init__(self, directory: Path, segment_bytes: int) -> None:
        if segment_bytes % RECORD_SIZE or segment_bytes < RECORD_SIZE:
            raise ValueError(f"timer-log segment size must be a multiple of {RECORD_SIZE}")
        self.files = MappedFileQueue(directory, segment_bytes, None)
        self.segment_bytes = segment_bytes
        self._max_slot: dict[int, int] = {}  # segment start -> largest slot_ms in it
        self.record_reads = 0  # records read by slot walks (what a tick's work is made of)

    def load(self, end: int) -> None:
        """Map the segments and cut everything at and after `end` (the checkpointed length):
        records past it were never made durable with their consume-queue progress."""
        self.files.load()
        if self.files.files:
            self.files.truncate_dirty(max(end, self.files.min_offset))
        elif end:
            log.warning("timer log is empty but its checkpoint says %d bytes", end)

    @property
    def end(self) -> int:
        return self.files.max_offset

    @property
    def start(self) -> int:
        return self.files.min_offset

    def append(self, prev_pos: int, slot_ms: int, deliver_ms: int, cl_offset: int, size: int,
               magic: int) -> int:
        """Append one record; returns its offset."""
        seg = self.files.last_for_write(self.end)
        pos = seg.wrote
        RECORD.pack_into(seg.mm, pos, prev_pos, slot_ms, deliver_ms, cl_offset, size, magic)
        seg.wrote = pos + RECORD_SIZE
        # A segment loaded from disk is scanned first: its older records count too, or
        # delete_before would drop it while they wait.
        if slot_ms > self._segment_max_slot(seg):
            self._max_slot[seg.start] = slot_ms
        return seg.start + pos

    def read(self, pos: int) -> TimerRecord:
        seg = self.files.find(pos)
        if seg is None or pos - seg.start + RECORD_SIZE > seg.wrote:
            raise IndexError(f"timer-log offset {pos} is outside the log")
        self.record_reads += 1
        return TimerRecord(pos, *RECORD.unpack_from(seg.mm, pos - seg.start))

    def chain(self, last_pos: int, count: int) -> list[TimerRecord]:
        """The `count` records of a slot, newest first, walking prev_pos from last_pos."""
        out = []
        pos = last_pos
        while pos != NO_PREV and len(out) < count:
            rec = self.read(pos)
            out.append(rec)
            pos = rec.prev_pos
        return out

    def records(self) -> Iterator[TimerRecord]:
        """Every record in log order (recovery only)."""
        for seg in self.files.files:
            for i, fields in enumerate(RECORD.iter_unpack(seg.mm[:seg.wrote])):
                yield TimerRecord(seg.start + i * RECORD_SIZE, *fields)

    def flush(self) -> int:
        """fdatasync what was appended; returns the durable end."""
        return self.files.flush(self.end) if self.files.files else 0

    def delete_before(self, read_ms: int) -> int:
        """Delete old segments (never the last) whose records all belong to slots before
        read_ms; returns how many went."""
        files = self.files.files
        gone = 0
        while len(files) - gone > 1 and self._segment_max_slot(files[gone]) < read_ms:
            gone += 1
        if gone:
            for seg in files[:gone]:
                self._max_slot.pop(seg.start, None)
                seg.destroy()
            self.files.files = files[gone:]
            log.info("timer log: deleted %d delivered segment(s)", gone)
        return gone

    def _segment_max_slot(self, seg: MappedFile) -> int:
        found = self._max_slot.get(seg.start)
        if found is None:  # loaded from disk: scanned once
            found = max((f[1] for f in RECORD.iter_unpack(seg.mm[:seg.wrote])), default=-1)
            self._max_slot[seg.start] = found
        return found

    def close(self) -> None:
        self.files.close()
