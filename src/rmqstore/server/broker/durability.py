"""Waiting for durability without a thread per request (SYNC_FLUSH sends).

Each waiting send registers an asyncio future for its last record's offset. One thread leads
group commits for the highest offset pending and, after each fdatasync, wakes the event loop
once to resolve every future the sync covered: GroupCommitService's batching, seen from
asyncio."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading

from ...message import PendingPut, PutResult, PutStatus
from ...store import MessageStore


class DurabilityWaiter:
    def __init__(self, store: MessageStore, loop: asyncio.AbstractEventLoop) -> None:
        self._store = store
        self._loop = loop
        self._heap: list[tuple[int, int, asyncio.Future]] = []  # (offset, seq, future)
        self._seq = itertools.count()
        self._highest = -1
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="broker-durability", daemon=True)
        self._thread.start()

    async def wait(self, pending: PendingPut) -> PutResult:
        """The put's result once durable (status FLUSH_DISK_TIMEOUT past the store's limit)."""
        result = pending.result
        offset = result.commitlog_offset
        if self._store.durable_offset > offset:
            return result
        fut = self._loop.create_future()
        with self._lock:
            heapq.heappush(self._heap, (offset, next(self._seq), fut))
            self._highest = max(self._highest, offset)
        self._wake.set()
        if not await fut:
            result.status = PutStatus.FLUSH_DISK_TIMEOUT
        return result

    def _run(self) -> None:
        handed = -1  # the durable offset last handed to the loop
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stopping:
                return
            with self._lock:
                target = self._highest
            if target < handed:  # covered by a sync whose answer is on its way to the loop
                continue
            ok = self._store.wait_durable(target + 1)
            durable = self._store.durable_offset if ok else target + 1
            if durable > handed:
                handed = durable
                self._loop.call_soon_threadsafe(self._resolve, durable, ok)
            with self._lock:
                # Lead the next sync at once only for sends past this one; looping for sends
                # it covered (their futures resolve on the loop) only burned the GIL.
                if self._highest >= durable:
                    self._wake.set()

    def _resolve(self, durable: int, ok: bool) -> None:
        with self._lock:
            done = []
            while self._heap and self._heap[0][0] < durable:
                done.append(heapq.heappop(self._heap)[2])
            if not self._heap:
                self._highest = -1
        for fut in done:
            if not fut.done():
                fut.set_result(ok)

    def close(self) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=5)
        with self._lock:
            left, self._heap = self._heap, []
        for _, _, fut in left:
            if not fut.done():
                fut.set_result(False)
