"""rmqstore: Apache RocketMQ's store as an embedded, crash-safe message log.

    import rmqstore
    with rmqstore.open("data", flush="sync") as store:
        r = store.put("orders", b"hello", tags="new", keys=["order-1"])
        batch = store.get("orders", 0, 0)
"""

from ._version import __version__
from .config import StoreConfig
from .errors import (CorruptSegmentError, DiskFullError, FlushTimeoutError, InvalidPropertyError,
                     InvalidTopicError, MessageTooLargeError, NativeModuleError,
                     StoreClosedError, StoreError, StoreLockedError)
from .message import (GetResult, GetStatus, Message, PendingPut, PutBatchResult, PutResult,
                      PutStatus)
from .queue import Consumer, Queue
from .store import MessageStore, open_store

open = open_store  # noqa: A001 - the documented entry point is rmqstore.open(path, **config)

__all__ = [
    "__version__", "open", "open_store", "MessageStore", "StoreConfig", "Queue", "Consumer",
    "Message", "PendingPut", "PutResult", "PutBatchResult", "PutStatus", "GetResult", "GetStatus",
    "StoreError", "CorruptSegmentError", "DiskFullError", "FlushTimeoutError",
    "InvalidPropertyError", "InvalidTopicError", "MessageTooLargeError", "NativeModuleError",
    "StoreClosedError", "StoreLockedError",
]
