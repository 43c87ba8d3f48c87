"""Wakeup: the alarm a delivery runner (timers, delay levels) sleeps on between due times.

A runner that polled every few milliseconds kept an idle broker's threads waking 100 times a
second; instead it sleeps until its next due time and a put that may make something due sooner
rings this alarm, from any thread. A thread runner waits on it directly, an asyncio runner on
its loop.
"""

from __future__ import annotations

import asyncio
import threading


class Wakeup:
    def __init__(self) -> None:
        self._event = threading.Event()
        self._bound: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None

    def set(self) -> None:
        """Ring: the sleeping runner looks now (any thread)."""
        self._event.set()
        bound = self._bound
        if bound is None:
            return
        loop, event = bound
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            event.set()
            return
        try:
            loop.call_soon_threadsafe(event.set)
        except RuntimeError:  # the loop is closed: no runner left to wake
            pass

    def wait(self, timeout_s: float) -> None:
        """A thread runner's sleep: timeout_s at most, less when rung. Cleared on return,
        before the runner looks: a put after that rings again."""
        self._event.wait(timeout_s)
        self._event.clear()

    async def wait_async(self, timeout_s: float) -> None:
        """wait() for a runner on the running loop."""
        loop = asyncio.get_running_loop()
        bound = self._bound
        if bound is None or bound[0] is not loop:
            bound = self._bound = (loop, asyncio.Event())
        event = bound[1]
        try:
            async with asyncio.timeout(timeout_s):
                await event.wait()
        except TimeoutError:
            pass
        event.clear()
