"""Background: an HA service or client on an event loop thread of its own, for an embedded
store (a broker runs them on its own loop instead).

    with rmqstore.ha.Background(rmqstore.ha.HAService(store, port=10912)) as master:
        r = store.put("orders", b"x")
        master.service.wait_replicated(store.commitlog.max_offset, 3.0)
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from typing import Generic, Protocol, Self, TypeVar


class _Service(Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...


S = TypeVar("S", bound=_Service)

START_TIMEOUT_S = 10.0


class Background(Generic[S]):
    def __init__(self, service: S) -> None:
        self.service = service
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name=f"rmq-{type(service).__name__}")
        self._started = False

    def start(self) -> Self:
        """Start the loop thread and the service on it; raises what the service's start
        raised (a port in use, say)."""
        self._thread.start()
        self._started = True
        self.call(self.service.start)
        return self

    def call(self, fn, *args, timeout_s: float = START_TIMEOUT_S):
        """Run fn(*args) on the loop's thread (awaited if it is a coroutine function) and
        return its result."""
        async def run():
            result = fn(*args)
            return await result if asyncio.iscoroutine(result) else result
        fut: Future = asyncio.run_coroutine_threadsafe(run(), self._loop)
        return fut.result(timeout_s)

    def close(self) -> None:
        """Close the service, then stop the loop thread. Idempotent."""
        if not self._started:
            return
        self._started = False
        try:
            self.call(self.service.close)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(START_TIMEOUT_S)
            self._loop.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
