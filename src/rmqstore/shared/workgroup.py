"""Work sharing: the consumers of one group, in any processes of a shared store, share a
queue's messages as a job queue's workers do. Each message goes to one consumer, which
acknowledges it on its own; one not acknowledged within the visibility timeout, or whose
consumer's process died, goes to another consumer. The group's committed offset (the first
message not acknowledged) is kept in the store's consumer offsets, as any group's.

Beyond RocketMQ (whose clustering consumers split queues, not messages, among them): the
leases live in a file of our own, <group>@<topic>@<queueId> in the work directory of the
store's shared directory, mapped by every process using the group and changed only under the
control file's work mutex (robust: a process dying inside it leaves every slot whole or merely
not yet changed, since each change is a handful of word stores with the state written last).
Host byte order.

Header, 64 bytes:
    off  size  field
      0     8  magic        b"RMQWORK1"
      8     4  capacity     slots: at most this many messages handed out and not acknowledged
     12     4  reserved
     16     8  floor        every queue offset below is acknowledged
     24     8  cursor       the next queue offset never handed out
     32     8  redelivered  messages handed out again (a timeout or a death), a counter
     40    24  reserved
Slots at 64, capacity x 32 bytes; queue offset o uses slot o % capacity while floor <= o <
cursor:
      0     8  offset       the queue offset it holds
      8     4  state        0 free, 1 leased, 2 acknowledged
     12     4  pid          the process holding the lease
     16     8  deadline     lease end, epoch ms (then it is handed out again)
     24     4  deliveries   times handed out
     28     4  started      the holder's start time (/proc/<pid>/stat, ticks, low 32 bits):
                            a pid reused by a new process is not the holder
Example: floor 7, cursor 9, capacity 4: offset 7 leased by pid 100 until t, offset 8
acknowledged: slot 3 = 07 .. | 01 00 00 00 | 64 00 00 00 | t | 01 00 00 00 | s, slot 0 = 08 ..
| 02 00 00 00 | ...
"""

from __future__ import annotations

import asyncio
import mmap
import os
import struct
import time
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

from .. import _native, filenames
from ..errors import StoreError
from ..message import GetStatus, Message
from ..topic_validator import check_group
from . import control as c

if TYPE_CHECKING:
    from ..store import MessageStore

MAGIC = b"RMQWORK1"
HEADER = struct.Struct("=8sii")  # magic, capacity, reserved
FLOOR, CURSOR, REDELIVERED = 16, 24, 32
HEADER_SIZE = 64
SLOT = struct.Struct("=qiiqii")  # offset, state, pid, deadline, deliveries, started
FREE, LEASED, ACKED = 0, 1, 2
SCAN_INTERVAL_S = 0.1  # how often a consumer with new work still looks for expired leases


def _start_ticks(pid: int) -> int | None:
    """A process's start time (field 22 of /proc/<pid>/stat), low 32 bits; None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return int(stat.rsplit(b")", 1)[1].split()[19]) & 0xFFFFFFFF


class WorkConsumer:
    """One consumer of a work-sharing group (see the module docstring). Not shared between
    threads; make one per thread or process."""

    def __init__(self, store: MessageStore, group: str, topic: str, queue_id: int = 0,
                 visibility_timeout_s: float = 30.0, capacity: int = 4096) -> None:
        sharing = store._sharing
        if sharing is None:
            raise StoreError("work sharing needs a store opened with shared=True")
        check_group(group)
        store.check_queue(topic, queue_id)
        if visibility_timeout_s <= 0 or capacity < 1:
            raise ValueError("visibility_timeout_s and capacity must be positive")
        self.store, self.group, self.topic, self.queue_id = store, group, topic, queue_id
        self.visibility_ms = int(visibility_timeout_s * 1000)
        self._ctl = sharing.ctl
        self._mutex = sharing.ctl.address(c.WORK_MUTEX)
        self._pid = os.getpid()
        self._started = _start_ticks(self._pid) or 0
        self._next_scan = 0.0
        self._closed = False
        path = filenames.work_file(store.root, group, topic, queue_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked():
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            fresh = os.fstat(self._fd).st_size == 0
            if fresh:
                os.ftruncate(self._fd, HEADER_SIZE + capacity * SLOT.size)
            self.capacity = capacity if fresh else HEADER.unpack(os.pread(self._fd, 16, 0))[1]
            self._mm = mmap.mmap(self._fd, HEADER_SIZE + self.capacity * SLOT.size)
            self._words = memoryview(self._mm).cast("q")
            if fresh:
                start = store.committed_offset(group, topic, queue_id)
                if start is None:
                    start = store.min_offset(topic, queue_id)
                self._words[FLOOR // 8] = self._words[CURSOR // 8] = start
                HEADER.pack_into(self._mm, 0, MAGIC, self.capacity, 0)
            elif self._mm[:8] != MAGIC:
                raise StoreError(f"{path} is not a work group's lease file")

    # -- the lease table, under the work mutex -------------------------------------------------
    def _locked(self):
        return _WorkMutex(self._mutex)

    def _slot(self, offset: int) -> int:
        return HEADER_SIZE + (offset % self.capacity) * SLOT.size

    def _take(self, max_offset: int, min_offset: int) -> int | None:
        """The queue offset of a message to handle now (a lease on it taken), or None."""
        words = self._words
        now = int(time.time() * 1000)
        with self._locked():
            floor, cursor = words[FLOOR // 8], words[CURSOR // 8]
            if floor < min_offset:  # retention deleted what was never acknowledged
                self._skip_to(min_offset)
                floor, cursor = words[FLOOR // 8], words[CURSOR // 8]
            due = cursor >= max_offset or cursor - floor >= self.capacity \
                or time.monotonic() >= self._next_scan
            if due:
                self._next_scan = time.monotonic() + SCAN_INTERVAL_S
                offset = self._expired(floor, cursor, now)
                if offset is not None:
                    return offset
            if cursor < max_offset and cursor - floor < self.capacity:
                SLOT.pack_into(self._mm, self._slot(cursor), cursor, LEASED, self._pid,
                               now + self.visibility_ms, 1, self._started)
                words[CURSOR // 8] = cursor + 1
                return cursor
        return None

    def _expired(self, floor: int, cursor: int, now: int) -> int | None:
        """Lease again, to this process, the first message whose lease ran out or whose
        holder died."""
        alive: dict[int, bool] = {}
        for offset in range(floor, cursor):
            at = self._slot(offset)
            off, state, pid, deadline, deliveries, started = SLOT.unpack_from(self._mm, at)
            if state != LEASED or off != offset:
                continue
            if deadline > now:
                if pid == self._pid:
                    continue
                ok = alive.get(pid)
                if ok is None:
                    ok = alive[pid] = _start_ticks(pid) == started
                if ok:
                    continue
            SLOT.pack_into(self._mm, at, offset, LEASED, self._pid, now + self.visibility_ms,
                           deliveries + 1, self._started)
            self._words[REDELIVERED // 8] += 1
            return offset
        return None

    def _skip_to(self, offset: int) -> None:
        words = self._words
        for off in range(words[FLOOR // 8], min(words[CURSOR // 8], offset)):
            SLOT.pack_into(self._mm, self._slot(off), 0, FREE, 0, 0, 0, 0)
        words[FLOOR // 8] = offset
        words[CURSOR // 8] = max(words[CURSOR // 8], offset)

    def _acked(self, offset: int) -> None:
        """Mark offset acknowledged; when the floor moves, commit it as the group's offset,
        inside the work mutex: commits from two processes cannot land out of order (a lost
        update that would move the group's offset back)."""
        words = self._words
        with self._locked():
            floor, cursor = words[FLOOR // 8], words[CURSOR // 8]
            if not floor <= offset < cursor:
                return  # acknowledged before (or skipped by retention)
            at = self._slot(offset)
            off, state = SLOT.unpack_from(self._mm, at)[:2]
            if off != offset or state != LEASED:
                return
            self._mm[at + 8:at + 12] = ACKED.to_bytes(4, "little")
            moved = floor
            while moved < cursor:
                at = self._slot(moved)
                off, state = SLOT.unpack_from(self._mm, at)[:2]
                if off != moved or state != ACKED:
                    break
                SLOT.pack_into(self._mm, at, 0, FREE, 0, 0, 0, 0)
                moved += 1
            if moved > floor:
                words[FLOOR // 8] = moved
                self.store.commit_offset(self.group, self.topic, self.queue_id, moved)
                if self.store.config.flush == "sync":
                    self._mm.flush()

    # -- the consumer's API -----------------------------------------------------------------------
    def get(self, timeout: float | None = None) -> Message | None:
        """The next message for this consumer, waiting up to timeout seconds (None: until
        one comes or close()); None on timeout. Acknowledge it with ack() within the
        visibility timeout, or another consumer gets it."""
        store = self.store
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._closed:
            offset = self._take(store.max_offset(self.topic, self.queue_id),
                                store.min_offset(self.topic, self.queue_id))
            if offset is not None:
                res = store.get(self.topic, self.queue_id, offset, 1)
                if res.status is GetStatus.FOUND and res.messages[0].queue_offset == offset:
                    return res.messages[0]
                self._acked(offset)  # its record is gone: nothing to handle
                continue
            left = SCAN_INTERVAL_S if deadline is None else deadline - time.monotonic()
            if left <= 0:
                return None
            with self._locked():
                cursor = self._words[CURSOR // 8]
            # new messages wake this at once; expired leases are looked for after a while
            store.wait_for_message(self.topic, self.queue_id, cursor,
                                   min(left, self.visibility_ms / 4000, 1.0))
        return None

    def ack(self, msg: Message) -> None:
        """Acknowledge msg (handled): it is never handed out again."""
        self._acked(msg.queue_offset)

    def stats(self) -> dict[str, int]:
        """floor (committed), cursor (next never handed out), in_flight, redelivered."""
        words = self._words
        floor, cursor = words[FLOOR // 8], words[CURSOR // 8]
        return {"floor": floor, "cursor": cursor, "in_flight": cursor - floor,
                "redelivered": words[REDELIVERED // 8]}

    def __iter__(self) -> Iterator[Message]:
        """Messages as they come (blocking), until close()."""
        while not self._closed:
            msg = self.get(timeout=1.0)
            if msg is not None:
                yield msg

    async def aget(self, timeout: float | None = None) -> Message | None:
        """get() for asyncio, waiting on the loop's default executor (the loop stays free)."""
        return await asyncio.get_running_loop().run_in_executor(None, self.get, timeout)

    async def __aiter__(self) -> AsyncIterator[Message]:
        while not self._closed:
            msg = await self.aget(timeout=1.0)
            if msg is not None:
                yield msg

    def close(self) -> None:
        """Stop iterating (from any thread); leases still held run out and go to the others.
        The mapping goes with the object."""
        if not self._closed:
            self._closed = True
            os.close(self._fd)

    def __enter__(self) -> WorkConsumer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _WorkMutex:
    __slots__ = ("_mutex",)

    def __init__(self, mutex) -> None:
        self._mutex = mutex

    def __enter__(self) -> None:
        _native.mutex_lock(self._mutex, _native.NULL, -1)

    def __exit__(self, *exc) -> None:
        _native.mutex_unlock(self._mutex)
