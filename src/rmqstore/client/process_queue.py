"""ProcessQueue (client/.../consumer/ProcessQueue.java): the messages of one queue pulled but
not yet consumed, and the offset it is safe to commit.

Messages enter in queue-offset order, so the dict's first key is the smallest offset still held;
the committable offset is that key, or one past the largest offset seen when none is held.
Orderly consumption moves a batch to ``consuming`` first and commits it as a whole.
"""

from __future__ import annotations

import asyncio
import time

from .message import MessageExt, MessageQueue


class ProcessQueue:
    """Per-queue state; touched on the event loop thread only."""

    def __init__(self, mq: MessageQueue, next_offset: int) -> None:
        self.mq = mq
        self.next_offset = next_offset  # where the next pull starts
        self.msgs: dict[int, MessageExt] = {}
        self.consuming: dict[int, MessageExt] = {}  # orderly: taken, not yet committed
        self.size_bytes = 0
        self.max_offset_seen = next_offset - 1
        self.dropped = False
        self.locked = False
        self.last_lock_s = 0.0
        self.has_msgs = asyncio.Event()
        self.consume_lock = asyncio.Lock()  # orderly: one batch of this queue at a time
        self.pull_task: asyncio.Task[None] | None = None
        self.consume_task: asyncio.Task[None] | None = None

    @property
    def count(self) -> int:
        return len(self.msgs) + len(self.consuming)

    def add(self, msgs: list[MessageExt]) -> None:
        for m in msgs:
            if m.queue_offset not in self.msgs and m.queue_offset > self.max_offset_seen:
                self.msgs[m.queue_offset] = m
                self.size_bytes += m.store_size
                self.max_offset_seen = m.queue_offset
        if self.msgs:
            self.has_msgs.set()

    def remove(self, msgs: list[MessageExt]) -> int:
        """Drop consumed messages; return the offset now safe to commit."""
        for m in msgs:
            if self.msgs.pop(m.queue_offset, None) is not None:
                self.size_bytes -= m.store_size
        return self.commit_point()

    def commit_point(self) -> int:
        if self.consuming:
            return next(iter(self.consuming))
        if self.msgs:
            return next(iter(self.msgs))
        return self.max_offset_seen + 1

    # -- orderly -------------------------------------------------------------------------------

    def take(self, n: int) -> list[MessageExt]:
        """ProcessQueue.takeMessages: the first ``n`` in offset order, moved to ``consuming``."""
        out = []
        for offset in list(self.msgs)[:n]:
            m = self.msgs.pop(offset)
            self.consuming[offset] = m
            out.append(m)
        if not self.msgs:
            self.has_msgs.clear()
        return out

    def commit(self) -> int:
        """The taken batch is consumed: forget it, return the offset to commit."""
        for m in self.consuming.values():
            self.size_bytes -= m.store_size
        self.consuming.clear()
        if self.msgs:
            return next(iter(self.msgs))
        # Nothing left in hand: everything pulled so far is consumed or dropped.
        return self.max_offset_seen + 1

    def drop(self, m: MessageExt) -> None:
        """Take ``m`` out of the taken batch for good (orderly: sent to the dead letter queue),
        so that a retry of the rest does not see it again."""
        if self.consuming.pop(m.queue_offset, None) is not None:
            self.size_bytes -= m.store_size

    def make_later(self) -> None:
        """The taken batch failed: put it back in front, to be consumed again."""
        for m in self.consuming.values():
            m.reconsume_times += 1
        self.msgs = {**self.consuming, **self.msgs}
        self.consuming.clear()
        if self.msgs:
            self.has_msgs.set()

    def lock_expired(self, max_age_s: float) -> bool:
        return time.monotonic() - self.last_lock_s > max_age_s
