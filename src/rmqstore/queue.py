"""The everyday embedded case: one topic, one FIFO queue, consumers with durable acks.

    q = rmqstore.Queue("data", "jobs")
    q.put(b"job-1")
    with q.consumer("workers") as c:
        for msg in c:          # blocks for new messages; stop with break or c.close()
            handle(msg.body)
            c.ack(msg)

A consumer resumes after restart at its lowest unacknowledged message (at-least-once): acks
are durable within 5 s with flush="async" and at once with flush="sync".

Processes of a pool share a queue when each opens it with shared=True; ``q.workers(group)``
hands each message to one of them (see README, "A worker pool sharing a queue").
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

from .message import GetStatus, Message, PutResult
from .store import MessageStore, open_store

if TYPE_CHECKING:
    from .shared.workgroup import WorkConsumer

QUEUE_ID = 0


class Queue:
    def __init__(self, path: str | os.PathLike | MessageStore, topic: str = "default",
                 **config) -> None:
        """Open the store at path (or use an open MessageStore, which stays yours to close)."""
        if isinstance(path, MessageStore):
            self.store, self._owns = path, False
        else:
            self.store, self._owns = open_store(path, **config), True
        self.topic = topic
        self.store.create_topic(topic, 1) if self.store.topics.get(topic) is None else None

    def put(self, body: bytes, **kwargs) -> PutResult:
        return self.store.put(self.topic, body, queue_id=QUEUE_ID, **kwargs)

    def consumer(self, group: str) -> Consumer:
        return Consumer(self, group)

    def workers(self, group: str, visibility_timeout_s: float = 30.0) -> WorkConsumer:
        """A consumer of a work-sharing group (a store opened with shared=True): the group's
        consumers, in any processes, share the messages, each handled by one of them and
        acknowledged on its own; one not acknowledged within visibility_timeout_s, or whose
        consumer's process died, is handed to another (see shared/workgroup.py)."""
        from .shared.workgroup import WorkConsumer

        return WorkConsumer(self.store, group, self.topic, QUEUE_ID, visibility_timeout_s)

    def __len__(self) -> int:
        store = self.store
        return store.max_offset(self.topic, QUEUE_ID) - store.min_offset(self.topic, QUEUE_ID)

    def close(self) -> None:
        if self._owns:
            self.store.close()

    def __enter__(self) -> Queue:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Consumer:
    """Reads the queue from its group's committed offset. Not shared between threads."""

    def __init__(self, queue: Queue, group: str, batch: int = 64) -> None:
        self.store = queue.store
        self.topic = queue.topic
        self.group = group
        committed = self.store.committed_offset(group, self.topic, QUEUE_ID)
        if committed is None:
            committed = self.store.min_offset(self.topic, QUEUE_ID)
        self._next = committed
        self._end: int | None = None  # the queue's end at the last read that found messages
        self._buffer: list[Message] = []
        self._in_flight: dict[int, bool] = {}  # delivered offsets -> acked
        self._batch = batch
        self._closed = threading.Event()

    def get(self, timeout: float | None = None) -> Message | None:
        """The next message, waiting up to timeout seconds (None: forever); None on timeout
        or close."""
        while not self._buffer:
            if self._closed.is_set():
                return None
            if self._end == self._next:  # read up to the end last time: wait, then read
                if not self._wait(timeout):
                    return None
                self._end = None
                continue  # closed meanwhile?
            res = self.store.get(self.topic, QUEUE_ID, self._next, self._batch)
            if res.status is GetStatus.FOUND:
                self._buffer = res.messages[::-1]
                self._next = res.next_offset
                self._end = res.max_offset
            elif res.status in (GetStatus.OFFSET_TOO_SMALL, GetStatus.OFFSET_OVERFLOW_BADLY):
                self._next = res.next_offset  # retention moved the queue's start
            elif res.status is GetStatus.NO_MATCHED_MESSAGE or (
                    res.status is GetStatus.MESSAGE_WAS_REMOVING and res.next_offset > self._next):
                self._next = res.next_offset  # past records retention deleted
            elif not self._wait(timeout):
                return None
        msg = self._buffer.pop()
        self._in_flight[msg.queue_offset] = False
        return msg

    def _wait(self, timeout: float | None) -> bool:
        """Wait for a message at the next offset: False when timeout (not None) passed."""
        wait = 0.5 if timeout is None else timeout
        return self.store.wait_for_message(self.topic, QUEUE_ID, self._next, wait) \
            or timeout is None

    def ack(self, msg: Message) -> None:
        """Acknowledge msg; the committed offset moves past every acked prefix."""
        if msg.queue_offset not in self._in_flight:
            return
        self._in_flight[msg.queue_offset] = True
        commit = None
        for off in sorted(self._in_flight):
            if not self._in_flight[off]:
                break
            del self._in_flight[off]
            commit = off + 1
        if commit is not None:
            self.store.commit_offset(self.group, self.topic, QUEUE_ID, commit)

    def __iter__(self) -> Iterator[Message]:
        while not self._closed.is_set():
            msg = self.get(timeout=0.5)
            if msg is not None:
                yield msg

    async def aget(self, timeout: float | None = None) -> Message | None:
        """get() for asyncio: the wait runs on the loop's default executor, so the loop stays
        free; a put in any process of a shared store wakes it as it wakes get()."""
        return await asyncio.get_running_loop().run_in_executor(None, self.get, timeout)

    async def __aiter__(self) -> AsyncIterator[Message]:
        """``async for msg in consumer``: messages as they come, until close()."""
        while not self._closed.is_set():
            msg = await self.aget(timeout=0.5)
            if msg is not None:
                yield msg

    def close(self) -> None:
        self._closed.set()

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
