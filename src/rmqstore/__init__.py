"""rmqstore: Apache RocketMQ's store as an embedded, crash-safe message log.

    import rmqstore
    with rmqstore.open("data", flush="sync") as store:
        r = store.put("orders", b"hello", tags="new", keys=["order-1"])
        batch = store.get("orders", 0, 0)

Delay levels and delivery at any time are services over an open store: ScheduleService
(rmqstore.schedule) and TimerService (rmqstore.timer), with TimerConfig. They load on first use,
so `import rmqstore` does not pay for asyncio.
"""

from typing import TYPE_CHECKING

from ._version import __version__
from .config import StoreConfig
from .errors import (
    CorruptSegmentError,
    DiskFullError,
    FlushTimeoutError,
    InvalidPropertyError,
    InvalidTopicError,
    MessageTooLargeError,
    NativeModuleError,
    StoreClosedError,
    StoreError,
    StoreLockedError,
)
from .message import GetResult, GetStatus, Message, PendingPut, PutBatchResult, PutResult, PutStatus
from .queue import Consumer, Queue
from .store import MessageStore, open_store

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ below loads them
    from .schedule import ScheduleService
    from .timer import TimerConfig, TimerService

open = open_store

# Loaded on first access (PEP 562): both pull in asyncio, ~20 ms that plain store users skip.
_LAZY = {"ScheduleService": ".schedule", "TimerService": ".timer", "TimerConfig": ".timer"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Consumer",
    "CorruptSegmentError",
    "DiskFullError",
    "FlushTimeoutError",
    "GetResult",
    "GetStatus",
    "InvalidPropertyError",
    "InvalidTopicError",
    "Message",
    "MessageStore",
    "MessageTooLargeError",
    "NativeModuleError",
    "PendingPut",
    "PutBatchResult",
    "PutResult",
    "PutStatus",
    "Queue",
    "ScheduleService",
    "StoreClosedError",
    "StoreConfig",
    "StoreError",
    "StoreLockedError",
    "TimerConfig",
    "TimerService",
    "__version__",
    "open",
    "open_store",
]
