"""The control file of a store several processes share: `shared/control` under the store root.

Not part of RocketMQ's format (the commit log, consume queues, index, checkpoint and config
files stay byte for byte RocketMQ's): it holds what every process must see at once. It is
mapped MAP_SHARED by every process that has the store open; the first opener lays it out
afresh (every word below is rebuilt from the store's files, so nothing in it needs to survive
a crash), the others only map it. Host byte order and natural alignment: it never leaves the
machine. Words marked [C] are read and written by the native appends (rmq_log.shared).

Header, 384 bytes:
    off  size  field
      0     8  magic            b"RMQSHARE"
      8     4  version          3
     12     4  queue_slots      N, fixed by the first opener (StoreConfig.shared_queues)
     16     4  offset_slots     M, fixed by the first opener (StoreConfig.shared_offsets)
     20     4  layout_pid       the process that laid the file out
     24     8  epoch            +1 at every layout: tells a stale mapping from a fresh one
     32     8  log_end      [C] commit-log offset just past the last published record
     40     8  last_ts      [C] store time of that record (store times never go backwards)
     48     8  writing      [C] byte distance from log_end to the units word of the queue the
                                write-mutex holder appends to (0: none); a repair reads it
     56     8  durable          commit-log offset below which everything is fdatasynced
     64     8  log_min          the commit log's first offset (retention moves it)
     72     4  append_seq       futex word: +1 at every release of the write mutex
     76     4  waiters          threads sleeping on append_seq (a release wakes them if > 0)
     80     4  durable_seq      futex word: +1 whenever durable moves
     84     4  durable_waiters  threads sleeping on durable_seq
     88     4  write_repair     1 while a writer died holding the write mutex, not yet repaired
     92     4  topics_gen       +1 at every write of config/topics.json
     96     4  index_gen        +1 whenever an index file is added
    100     4  retention_gen    +1 whenever retention deleted files
    104     4  leader_gen       +1 whenever a process takes over the background services
    108     4  sync_arrivals    futex word: +1 for every sync waiter whose put is published
    112     4  synced_arrivals  sync_arrivals when the last group commit's sync began
    116     4  sync_want        arrivals the next sync waits for (that one's and those meanwhile)
    120     8  sync_failed  [C] 1 + the durable offset when a process's sync of the commit log
                                failed (0: none): every process refuses writes and syncs from
                                then on (sync_failure.py); set once, under the flush mutex
    128    64  write mutex      robust, process-shared: every append (RocketMQ's putMessageLock)
    192    64  flush mutex      held by the process running a group commit's fdatasync
    256    64  meta mutex       writes of topics.json, consumerOffset.json and new slots
    320    64  work mutex       the work-sharing groups' leases (workgroup.py)

Queue slots at 384, N x 144 bytes, open addressing by hash of (topic, queue id):
      0     8  units            the queue's published max offset (units written) [C]
      8     4  state            0 free, 1 used (written last: a reader that sees 1 sees the rest)
     12     4  queue id
     16     1  topic length
     17   127  topic            UTF-8 (RocketMQ's topic rule: ASCII, at most 127)

Offset slots at 384 + N * 144, M x 416 bytes, open addressing by hash of (key, queue id):
      0     8  offset           the group's committed offset (the next to consume)
      8     4  state            0 free, 1 used (written last)
     12     4  queue id
     16     2  key length
     18   398  key              "topic@group", as consumerOffset.json names it

Example: a store whose first opener had N = 2, M = 1 and one queue TopicA/0 holding 7 messages
in a 1 KiB commit log: log_end = 1024 at byte 32, slot 0 or 1 (hash order) = 07 00 .. 00 |
01 00 00 00 | 00 00 00 00 | 06 | "TopicA".
"""

from __future__ import annotations

import mmap
import os
import struct
import zlib
from pathlib import Path

from .. import _native
from ..errors import StoreError

MAGIC = b"RMQSHARE"
VERSION = 3
HEADER = struct.Struct("=8siiii")  # magic, version, queue slots, offset slots, layout pid
HEADER_SIZE = 384

# Header words (byte offsets).
EPOCH, LOG_END, LAST_TS, WRITING, DURABLE, LOG_MIN = 24, 32, 40, 48, 56, 64
APPEND_SEQ, WAITERS, DURABLE_SEQ, DURABLE_WAITERS, WRITE_REPAIR = 72, 76, 80, 84, 88
TOPICS_GEN, INDEX_GEN, RETENTION_GEN, LEADER_GEN = 92, 96, 100, 104
SYNC_ARRIVALS, SYNCED_ARRIVALS, SYNC_WANT, SYNC_FAILED = 108, 112, 116, 120
WRITE_MUTEX, FLUSH_MUTEX, META_MUTEX, WORK_MUTEX = 128, 192, 256, 320
MUTEXES = (WRITE_MUTEX, FLUSH_MUTEX, META_MUTEX, WORK_MUTEX)

QUEUE_SLOT = struct.Struct("=qiiB127s")  # units, state, queue id, topic length, topic
OFFSET_SLOT = struct.Struct("=qiiH398s")  # offset, state, queue id, key length, key
assert QUEUE_SLOT.size == 144 and OFFSET_SLOT.size == 416
USED = 1


class SlotsFullError(StoreError):
    """The control file has no free slot left for another queue or consumer offset."""


def file_size(queue_slots: int, offset_slots: int) -> int:
    return HEADER_SIZE + queue_slots * QUEUE_SLOT.size + offset_slots * OFFSET_SLOT.size


class Control:
    """One process's mapping of the control file. Words are read and written through
    memoryviews (aligned 8- and 4-byte accesses, atomic on x86-64, whose ordering of plain
    loads and stores is what the publish protocol relies on); mutexes through _native."""

    def __init__(self, path: Path, fd: int, mm: mmap.mmap) -> None:
        self.path = path
        self._fd = fd
        self.mm = mm
        self.region = _native.Region(mm)
        self.i64 = memoryview(mm).cast("q")
        self.u32 = memoryview(mm).cast("I")
        _, _, self.queue_slots, self.offset_slots, _ = HEADER.unpack_from(mm, 0)
        self.offsets_at = HEADER_SIZE + self.queue_slots * QUEUE_SLOT.size

    @classmethod
    def lay_out(cls, path: Path, queue_slots: int, offset_slots: int) -> Control:
        """Make the file afresh (the first opener, alone with the store): header, zeroed words
        and slots, fresh mutexes; the epoch goes on from the old file's."""
        path.parent.mkdir(parents=True, exist_ok=True)
        epoch = 0
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            old = os.pread(fd, 32, 0)
            if len(old) == 32 and old[:8] == MAGIC:
                epoch = struct.unpack_from("=q", old, EPOCH)[0]
            size = file_size(queue_slots, offset_slots)
            os.ftruncate(fd, 0)  # every byte zero: free slots, no waiters, nobody repairing
            os.ftruncate(fd, size)
            mm = mmap.mmap(fd, size)
        except BaseException:
            os.close(fd)
            raise
        HEADER.pack_into(mm, 0, MAGIC, VERSION, queue_slots, offset_slots, os.getpid())
        ctl = cls(path, fd, mm)
        ctl.i64[EPOCH // 8] = epoch + 1
        for at in MUTEXES:
            _native.mutex_init(ctl.region, at)
        return ctl

    @classmethod
    def attach(cls, path: Path) -> Control:
        """Map the file a first opener laid out (a later opener)."""
        fd = os.open(path, os.O_RDWR)
        try:
            head = os.pread(fd, HEADER.size, 0)
            magic, version, queues, offsets, _ = HEADER.unpack(head)
            if magic != MAGIC or version != VERSION:
                raise StoreError(f"{path} is not a version-{VERSION} control file")
            mm = mmap.mmap(fd, file_size(queues, offsets))
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd, mm)

    # -- words --------------------------------------------------------------------------
    def word(self, at: int) -> int:
        return self.i64[at // 8]

    def set_word(self, at: int, value: int) -> None:
        self.i64[at // 8] = value

    def u32_word(self, at: int) -> int:
        return self.u32[at // 4]

    def bump(self, at: int) -> None:
        """+1 on a 32-bit generation word (under the mutex that guards what it counts)."""
        self.u32[at // 4] = (self.u32[at // 4] + 1) & 0xFFFFFFFF

    def address(self, at: int):
        """A native pointer to byte ``at`` (for rmq_log.shared and rmq_queue.shared_units)."""
        return _native.region_address(self.region, at)

    # -- slots: open addressing by crc32 of (name, queue id), state written last ----------------
    def _find(self, table_at: int, count: int, layout: struct.Struct, name: bytes,
              queue_id: int, create_with: int | None, setting: str) -> int | None:
        """The byte offset of (name, queue_id)'s slot; a free one taken, its first word set to
        create_with, when that is given and none is found (SlotsFullError naming ``setting``
        when none is free); None when absent."""
        h = zlib.crc32(name + queue_id.to_bytes(4, "little")) % count
        for i in range(count):
            at = table_at + ((h + i) % count) * layout.size
            _, state, qid, nlen, raw = layout.unpack_from(self.mm, at)
            if state != USED:
                if create_with is None:
                    return None
                layout.pack_into(self.mm, at, create_with, 0, queue_id, len(name), name)
                self.u32[(at + 8) // 4] = USED
                return at
            if qid == queue_id and raw[:nlen] == name:
                return at
        if create_with is not None:
            raise SlotsFullError(f"the control file's {count} slots of {setting} are all "
                                 f"taken; close every process and reopen with a larger "
                                 f"{setting}")
        return None

    def _used(self, table_at: int, count: int,
              layout: struct.Struct) -> list[tuple[str, int, int, int]]:
        """(name, queue id, first word, slot offset) of every used slot of a table."""
        out = []
        for i in range(count):
            at = table_at + i * layout.size
            word, state, qid, nlen, raw = layout.unpack_from(self.mm, at)
            if state == USED:
                out.append((raw[:nlen].decode(), qid, word, at))
        return out

    def find_queue(self, topic: str, queue_id: int, create: bool = False) -> int | None:
        """The byte offset of (topic, queue_id)'s slot (its first word: the published unit
        count), or None. create: take a free one (the caller holds the write mutex)."""
        return self._find(HEADER_SIZE, self.queue_slots, QUEUE_SLOT, topic.encode(), queue_id,
                          0 if create else None, "shared_queues")

    def queues(self) -> list[tuple[str, int, int]]:
        """(topic, queue id, slot offset) of every used queue slot."""
        return [(name, qid, at) for name, qid, _, at in
                self._used(HEADER_SIZE, self.queue_slots, QUEUE_SLOT)]

    def find_offset(self, key: str, queue_id: int, create_at: int | None = None) -> int | None:
        """As find_queue, for a consumer offset: create_at, when given, is the offset a new
        slot starts with (the caller holds the meta mutex)."""
        name = key.encode()
        if len(name) > 398:
            raise ValueError(f"offset key {key[:40]!r}... is over 398 bytes")
        return self._find(self.offsets_at, self.offset_slots, OFFSET_SLOT, name, queue_id,
                          create_at, "shared_offsets")

    def offsets(self) -> list[tuple[str, int, int]]:
        """(key, queue id, offset) of every used offset slot."""
        return [(name, qid, word) for name, qid, word, _ in
                self._used(self.offsets_at, self.offset_slots, OFFSET_SLOT)]

    def close(self) -> None:
        self.region.release()
        self.i64.release()
        self.u32.release()
        self.mm.close()
        os.close(self._fd)
