"""Background timers of the client objects: named tasks that survive a failing round."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class TaskGroup:
    """Tasks owned by one client object; ``cancel_all`` stops them (at close)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Awaitable[None], name: str | None = None) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        if name:
            task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def every(self, interval_s: float, fn: Callable[[], Awaitable[None]], *,
              first_s: float | None = None, name: str | None = None) -> asyncio.Task[None]:
        """Run ``fn`` every ``interval_s`` (first after ``first_s``); errors are logged."""
        async def loop() -> None:
            await asyncio.sleep(interval_s if first_s is None else first_s)
            while True:
                try:
                    await fn()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("timer %s failed", name or fn)
                await asyncio.sleep(interval_s)
        return self.spawn(loop(), name)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s failed", task.get_name(), exc_info=task.exception())

    async def cancel_all(self) -> None:
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
