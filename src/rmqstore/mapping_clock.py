"""MappingClock: how many consume-queue files stay mapped at once.

A process may hold vm.max_map_count mappings (65,530 by default), so a store with more queues
than that cannot keep every queue file mapped, as RocketMQ does. The clock keeps at most
`budget` QueueFiles mapped and unmaps the least recently used when another needs mapping
(CLOCK, second chance: a file read or appended to since the hand last passed it is kept once
more). An unmapped file is mapped again when it is next read or written.

Threads: every call runs under the store's put lock, which also guards the native writers, so
unmapping the file a writer appends to first detaches that writer (its next append asks to
roll, and rolling maps the file again). Readers do not take the lock: they pin a file while
they read it, and a pinned file is passed over.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Protocol

log = logging.getLogger(__name__)

DEFAULT_MAX_MAP_COUNT = 65530  # Linux's vm.max_map_count default


def default_budget() -> int:
    """Half of what the kernel lets a process map: the commit log, the index, Python and its
    libraries keep the rest."""
    try:
        with open("/proc/sys/vm/max_map_count") as f:
            limit = int(f.read())
    except (OSError, ValueError):
        limit = DEFAULT_MAX_MAP_COUNT
    return max(64, limit // 2)


class QueueFile(Protocol):
    """What the clock needs of a mapped file (queue_file.QueueFile)."""

    slot: int  # its place in the ring
    referenced: bool  # read since the hand last passed
    owner: Any  # its ConsumeQueue, whose writer may append to it

    def try_unmap(self) -> bool: ...


class MappingClock:
    def __init__(self, budget: int, lock: threading.Lock) -> None:
        """lock: the store's put lock, which every caller holds (readers take it to map)."""
        self.budget = budget
        self.lock = lock
        # Other processes write these files too (a shared store's): a reservation must not
        # write what it backs (queue_file.QueueFile.reserve), only populate it.
        self.others_write = False
        self._ring: list[QueueFile] = []
        self._hand = 0
        self._over_budget_logged = False

    def __len__(self) -> int:
        return len(self._ring)

    def adopt(self, f: QueueFile) -> None:
        """f was mapped without the put lock (QueueFile.create_aside): count it now."""
        self.make_room()
        self.add(f)

    def add(self, f: QueueFile) -> None:
        """f was just mapped."""
        f.slot = len(self._ring)
        self._ring.append(f)

    def remove(self, f: QueueFile) -> None:
        """f is unmapped, or about to be: it leaves the ring (the last file takes its place)."""
        ring = self._ring
        i = f.slot
        if 0 <= i < len(ring) and ring[i] is f:
            last = ring.pop()
            if last is not f:
                ring[i] = last
                last.slot = i
        f.slot = -1

    def make_room(self) -> None:
        """Unmap files until one more fits the budget. A file used since the hand last passed
        it gets a second chance; a pinned one is passed over. If every file is pinned the
        budget is exceeded for now (logged once)."""
        ring = self._ring
        steps = 2 * len(ring) + 1
        while len(ring) >= self.budget and steps > 0:
            steps -= 1
            if self._hand >= len(ring):
                self._hand = 0
            f = ring[self._hand]
            if _used(f) or not self._unmap(f):
                self._hand += 1
        if len(ring) >= self.budget and not self._over_budget_logged:
            self._over_budget_logged = True
            log.warning("%d consume-queue files mapped, over the budget of %d: readers hold "
                        "them", len(ring), self.budget)

    def shrink(self) -> None:
        """The kernel refused a mapping (vm.max_map_count): map at most three quarters of what
        is mapped now from here on, and unmap the rest, used or not."""
        self.budget = max(1, len(self._ring) * 3 // 4)
        log.warning("the kernel refused a mapping with %d consume-queue files mapped; the "
                    "budget is now %d (consumequeue_mapped_files)", len(self._ring), self.budget)
        for f in list(self._ring):
            if len(self._ring) < self.budget:
                break
            self._unmap(f)

    def _unmap(self, f: QueueFile) -> bool:
        writer = f.owner.writer if f.owner is not None else None
        if writer is not None and writer.attached is f:
            writer.detach()
        if not f.try_unmap():
            return False
        self.remove(f)
        return True


def _used(f: QueueFile) -> bool:
    """Whether f was read or appended to since the last call; clears the marks."""
    used = f.referenced
    f.referenced = False
    writer = f.owner.writer if f.owner is not None else None
    if writer is not None and writer.attached is f and writer.take_touched():
        used = True
    return used
