"""`async with` for the clients: start on entry, close on exit."""

from __future__ import annotations

from typing import Self


class Lifecycle:
    """A client started by `start()` and stopped by `close()`; `async with` does both."""

    async def start(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        await self.close()
