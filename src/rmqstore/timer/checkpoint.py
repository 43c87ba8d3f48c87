"""TimerCheckpoint: the 4096-byte `timercheck` file, the timer's progress (RocketMQ 5's
TimerCheckpoint, own layout). Big-endian:

    off  size  type   field           meaning
      0     8  int64  read_ms         every time slot before it has been delivered
      8     8  int64  enqueue_offset  next consume-queue offset of rmq_sys_wheel_timer/0 to
                                      enqueue; every message before it is in the timer log
                                      (below log_end) or was delivered
     16     8  int64  log_end         timer-log length that is durable and matches the two above
     24     4  int32  precision_ms    the wheel's slot width (a reopen must match)
     28     4  int32  slots           the wheel's slot count (a reopen must match)
     32     4  int32  state           1 while open, 0 after a clean close
     36     4  int32  version         1
the rest is zero.

Example: all of slot 1700000000100 delivered, 12 messages enqueued, 3 records, 20 ms x 2^21
slots, open -> 0000018bcfe56864 000000000000000c 0000000000000078 00000014 00200000
00000001 00000001.

It is written (pwrite + fdatasync) only after the commit log, the timer log and the wheel are
durable up to what it says, so a crash restarts from a consistent point.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

from .. import sync_journal

FIELDS = struct.Struct(">qqqiiii")
FILE_SIZE = 4096
VERSION = 1
OPEN, CLEAN = 1, 0


@dataclass
class TimerProgress:
    read_ms: int
    enqueue_offset: int
    log_end: int


class TimerCheckpoint:
    def __init__(self, path: Path, precision_ms: int, slots: int) -> None:
        self.path = path
        self.precision_ms = precision_ms
        self.slots = slots
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        data = os.pread(self.fd, FIELDS.size, 0)
        self.found: TimerProgress | None = None  # None: a new timer store
        self.was_clean = True
        if len(data) == FIELDS.size and data != bytes(FIELDS.size):
            read_ms, enq, end, precision, nslots, state, _version = FIELDS.unpack(data)
            if (precision, nslots) != (precision_ms, slots):
                os.close(self.fd)
                raise ValueError(
                    f"{path} was written with {precision} ms x {nslots} slots, not "
                    f"{precision_ms} ms x {slots}: the wheel cannot change while timers are "
                    "pending")
            self.found = TimerProgress(read_ms, enq, end)
            self.was_clean = state == CLEAN
        if os.fstat(self.fd).st_size < FILE_SIZE:
            os.ftruncate(self.fd, FILE_SIZE)

    def write(self, progress: TimerProgress, state: int = OPEN) -> None:
        os.pwrite(self.fd, FIELDS.pack(progress.read_ms, progress.enqueue_offset,
                                       progress.log_end, self.precision_ms, self.slots,
                                       state, VERSION), 0)
        sync_journal.fdatasync_whole(self.fd, self.path)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
