"""Held pulls: per (topic, queue) waiters woken when a message is stored there.

RocketMQ's PullRequestHoldService keeps suspended pulls and re-runs them on
notifyMessageArriving or when their hold time ends. Here a held pull is a coroutine awaiting a
Future in this registry; the send path calls notify() after each put. Everything runs on the
event loop thread, so a pull that finds nothing and then registers cannot miss a put.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class ArrivalWaiters:
    def __init__(self) -> None:
        self._waiters: dict[tuple[str, int], set[asyncio.Future[None]]] = {}
        self._listeners: dict[tuple[str, int], Callable[[], None]] = {}
        self._closed = False
        self.on_wake: Callable[[], None] | None = None  # called when notify() wakes a pull

    def watched(self) -> tuple[dict, dict]:
        """The live tables a store may wake (held pulls, listeners), for a caller that
        stores many messages a call and skips notify() while both are empty: read only."""
        return self._waiters, self._listeners

    def listen(self, topic: str, queue_id: int, callback: Callable[[], None]) -> None:
        """callback() after every store into (topic, queue_id), for good: the timer service
        sleeping until its next due slot wakes when a timer message is stored."""
        self._listeners[(topic, queue_id)] = callback

    async def wait(self, topic: str, queue_id: int, timeout_s: float) -> bool:
        """True once something was stored in (topic, queue_id); False after timeout_s."""
        if self._closed:
            return False
        key = (topic, queue_id)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(key, set()).add(future)
        try:
            async with asyncio.timeout(timeout_s):
                await future
            return True
        except TimeoutError:
            return False
        finally:
            waiting = self._waiters.get(key)
            if waiting is not None:
                waiting.discard(future)
                if not waiting:
                    del self._waiters[key]

    def notify(self, topic: str, queue_id: int) -> None:
        if self._listeners:
            listener = self._listeners.get((topic, queue_id))
            if listener is not None:
                listener()
        waiting = self._waiters.pop((topic, queue_id), None)
        if waiting:
            for future in waiting:
                if not future.done():
                    future.set_result(None)
            if self.on_wake is not None:
                self.on_wake()

    def notify_all(self) -> None:
        """Wake every held pull to read again (a master's confirm offset moved)."""
        for key in list(self._waiters):
            self.notify(*key)

    def wake_all(self) -> None:
        """At shutdown: let every held pull answer with what it has, and hold no more."""
        self._closed = True
        for key in list(self._waiters):
            topic, queue_id = key
            self.notify(topic, queue_id)

    @property
    def held(self) -> int:
        return sum(len(w) for w in self._waiters.values())
