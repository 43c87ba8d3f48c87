"""rmqstore: Apache RocketMQ's store as an embedded, crash-safe message log.

    import rmqstore
    with rmqstore.open("data", flush="sync") as store:
        r = store.put("orders", b"hello", tags="new", keys=["order-1"])
        batch = store.get("orders", 0, 0)

Delay levels and delivery at any time are services over an open store: ScheduleService
(rmqstore.delay_levels) and TimerService (rmqstore.timer), with TimerConfig.

Everything but the errors and the version loads on first use (PEP 562), so that
``import rmqstore.client`` (the asyncio client, which speaks the wire and never opens a
store) does not load the engine or its compiled module.
"""

from typing import TYPE_CHECKING

from ._version import __version__
from .errors import (
    CorruptSegmentError,
    DiskFullError,
    FlushTimeoutError,
    InvalidBodyError,
    InvalidPropertyError,
    InvalidQueueError,
    InvalidTopicError,
    MessageTooLargeError,
    NativeModuleError,
    ReplicaDataError,
    ReplicaStoreError,
    StoreClosedError,
    StoreError,
    StoreLayoutError,
    StoreLockedError,
    SyncFailedError,
    WritesStoppedError,
)

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ below loads them
    from .config import StoreConfig
    from .delay_levels import ScheduleService
    from .message import (
        GetResult,
        GetStatus,
        Message,
        PendingPut,
        PutBatchResult,
        PutResult,
        PutStatus,
    )
    from .options import PutOptions
    from .queue import Consumer, Queue
    from .shared.workgroup import WorkConsumer
    from .store import MessageStore, open_store
    from .timer import TimerConfig, TimerService

    open = open_store

_LAZY = {
    "StoreConfig": ".config",
    "GetResult": ".message", "GetStatus": ".message", "Message": ".message",
    "PendingPut": ".message", "PutBatchResult": ".message", "PutResult": ".message",
    "PutStatus": ".message",
    "PutOptions": ".options",
    "Consumer": ".queue", "Queue": ".queue",
    "MessageStore": ".store", "open_store": ".store",
    "ScheduleService": ".delay_levels",
    "TimerService": ".timer", "TimerConfig": ".timer",
    "WorkConsumer": ".shared.workgroup",
}


def __getattr__(name: str) -> object:
    target = "open_store" if name == "open" else name
    if target in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[target], __name__), target)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | {"open"})


__all__ = [
    "Consumer",
    "CorruptSegmentError",
    "DiskFullError",
    "FlushTimeoutError",
    "GetResult",
    "GetStatus",
    "InvalidBodyError",
    "InvalidPropertyError",
    "InvalidQueueError",
    "InvalidTopicError",
    "Message",
    "MessageStore",
    "MessageTooLargeError",
    "NativeModuleError",
    "PendingPut",
    "PutBatchResult",
    "PutOptions",
    "PutResult",
    "PutStatus",
    "Queue",
    "ReplicaDataError",
    "ReplicaStoreError",
    "ScheduleService",
    "StoreClosedError",
    "StoreConfig",
    "StoreError",
    "StoreLayoutError",
    "StoreLockedError",
    "SyncFailedError",
    "TimerConfig",
    "TimerService",
    "WorkConsumer",
    "WritesStoppedError",
    "__version__",
    "open",
    "open_store",
]
