"""StoreCheckpoint: the 4096-byte `checkpoint` file (RocketMQ's StoreCheckpoint).

    off  size  field
      0     8  physicMsgTimestamp   store time of the last message known flushed in the CommitLog
      8     8  logicsMsgTimestamp   store time of the last message whose queue unit is flushed
     16     8  indexMsgTimestamp    store time of the last message whose index entries are flushed
     24     8  masterFlushedOffset  (RocketMQ 5.x; written as 0)
     32     8  confirmPhyOffset     (RocketMQ 5.x; written as 0)
the rest is zero. Big-endian. Abnormal recovery re-dispatches from the newest CommitLog segment
whose first message is older than min(physic, logics) - 3 s.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from . import sync_journal

FIELDS = struct.Struct(">qqq")
FILE_SIZE = 4096
RECOVERY_MARGIN_MS = 3000  # StoreCheckpoint.getMinTimestamp


class StoreCheckpoint:
    def __init__(self, path: Path) -> None:
        self.path = path
        exists = path.exists()
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if not exists or os.fstat(self.fd).st_size < FILE_SIZE:
            os.ftruncate(self.fd, FILE_SIZE)
        data = os.pread(self.fd, FIELDS.size, 0)
        self.physic_ts, self.logics_ts, self.index_ts = FIELDS.unpack(data)

    def min_timestamp(self) -> int:
        return max(0, min(self.physic_ts, self.logics_ts) - RECOVERY_MARGIN_MS)

    def flush(self) -> None:
        os.pwrite(self.fd, FIELDS.pack(self.physic_ts, self.logics_ts, self.index_ts), 0)
        sync_journal.fdatasync_whole(self.fd, self.path)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
