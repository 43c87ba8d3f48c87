"""TimerWheel: the fixed-size, memory-mapped slot file (RocketMQ 5's TimerWheel, own layout).

File: `<store>/timerwheel`, exactly `slots * 24` bytes, no header (the slot count and precision
are kept in `timercheck`, which refuses a mismatch). Slot i holds the time slot whose start
time t satisfies (t // precision_ms) % slots == i; 24 bytes, big-endian:

    off  size  type   field     meaning
      0     8  int64  slot_ms   start time (epoch ms) of the slot these fields describe; a
                                different value means the slot belongs to an older turn of
                                the wheel and is empty for this one (0: never used)
      8     8  int64  last_pos  timer-log offset of the slot's newest record (-1: none)
     16     4  int32  count     records linked into the slot
     20     4  int32  reserved  0

Example: slot holding 3 records for 1700000000120, newest at timer-log offset 80 ->
0000018bcfe56878 0000000000000050 00000003 00000000.

The wheel spans `slots * precision_ms` (the window): a time slot is linked only while its
start lies within [read_ms, read_ms + window), so no two live time slots share an index.
It is an index over the timer log: after an unclean shutdown it is rebuilt from the log.
"""

from __future__ import annotations

import mmap
import os
import struct
from pathlib import Path
from typing import NamedTuple

SLOT = struct.Struct(">qqii")  # slot_ms last_pos count reserved
SLOT_SIZE = SLOT.size  # 24


class Slot(NamedTuple):
    slot_ms: int
    last_pos: int
    count: int


EMPTY = Slot(0, -1, 0)


class TimerWheel:
    """Single writer and reader: the timer service's thread."""

    def __init__(self, path: Path, slots: int, precision_ms: int) -> None:
        self.path = path
        self.slots = slots
        self.precision_ms = precision_ms
        size = slots * SLOT_SIZE
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        actual = os.fstat(self.fd).st_size
        if actual not in (0, size):
            os.close(self.fd)
            raise ValueError(f"{path} is {actual} bytes, not {size} ({slots} slots): "
                             "the timer wheel size cannot change while timers are pending")
        if actual == 0:
            os.ftruncate(self.fd, size)  # sparse: only slots ever used take disk pages
        self.mm = mmap.mmap(self.fd, size)
        self.slot_reads = 0  # slots looked at (what a tick's work is made of)

    def _index(self, slot_ms: int) -> int:
        return (slot_ms // self.precision_ms) % self.slots * SLOT_SIZE

    def get(self, slot_ms: int) -> Slot:
        """The slot for time slot slot_ms (EMPTY when the file holds another turn's)."""
        self.slot_reads += 1
        found_ms, last, count, _ = SLOT.unpack_from(self.mm, self._index(slot_ms))
        if found_ms != slot_ms:
            return EMPTY
        return Slot(found_ms, last, count)

    def filled(self, slot_ms: int) -> bool:
        """Whether time slot slot_ms holds records; a look ahead, not counted in slot_reads."""
        found_ms, _, count, _ = SLOT.unpack_from(self.mm, self._index(slot_ms))
        return found_ms == slot_ms and count > 0

    def link(self, slot_ms: int, pos: int) -> int:
        """Make the record at timer-log offset pos the newest of slot_ms; returns the previous
        newest (-1 when it is the first), which the record must carry as prev_pos. Call it
        before appending the record, with the offset the record will get."""
        at = self._index(slot_ms)
        found_ms, last, count, _ = SLOT.unpack_from(self.mm, at)
        if found_ms != slot_ms:
            last, count = -1, 0  # an older turn's slot, already delivered
        SLOT.pack_into(self.mm, at, slot_ms, pos, count + 1, 0)
        return last

    def put(self, slot: Slot) -> None:
        """Overwrite a slot (recovery)."""
        SLOT.pack_into(self.mm, self._index(slot.slot_ms), slot.slot_ms, slot.last_pos,
                       slot.count, 0)

    def clear(self) -> None:
        """Forget every slot (before a rebuild): the file is cut to nothing and regrown
        sparse, so no page is written."""
        self.mm.close()
        os.ftruncate(self.fd, 0)
        os.ftruncate(self.fd, self.slots * SLOT_SIZE)
        self.mm = mmap.mmap(self.fd, self.slots * SLOT_SIZE)

    def flush(self) -> None:
        self.mm.flush()

    def close(self) -> None:
        if self.fd < 0:
            return
        self.mm.close()
        os.close(self.fd)
        self.fd = -1
