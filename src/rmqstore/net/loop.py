"""Event loop choice: uvloop when it is installed (optional), asyncio's own loop otherwise."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory(uvloop_ok: bool = True) -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop.new_event_loop if importable (and allowed), else asyncio.new_event_loop."""
    if not uvloop_ok:
        return asyncio.new_event_loop
    try:
        import uvloop  # type: ignore[import-not-found]
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop  # type: ignore[no-any-return]


def run(main: Coroutine[Any, Any, T], uvloop_ok: bool = True) -> T:
    """asyncio.run on the preferred loop. uvloop_ok=False where other threads must wake the
    loop promptly: measured on uvloop 0.23, a sync-flush send answered through
    call_soon_threadsafe from the durability thread took 8.5 ms against 0.7 ms on asyncio's
    own loop (the cause inside uvloop was not established)."""
    with asyncio.Runner(loop_factory=loop_factory(uvloop_ok)) as runner:
        return runner.run(main)
