"""The exception tree. Every error the engine raises on purpose is a StoreError."""

import errno


class StoreError(Exception):
    """Base of every rmqstore engine error."""


class NativeModuleError(StoreError, ImportError):
    """The compiled module is missing or does not match this Python package."""


class InvalidTopicError(StoreError, ValueError):
    """A topic name RocketMQ would refuse (characters outside [%|a-zA-Z0-9_-], or too long)."""


class InvalidPropertyError(StoreError, ValueError):
    """A property name or value holding RocketMQ's separators (\\x01, \\x02), or too large."""


class InvalidQueueError(StoreError, ValueError):
    """A queue id outside the topic's queues, or a consumer offset outside its queue; nothing
    was written."""


class MessageTooLargeError(StoreError, ValueError):
    """A body over max_message_size; nothing was written."""


class InvalidBodyError(StoreError, ValueError):
    """A body flagged compressed that does not inflate, or inflates past max_message_size
    (a zlib bomb); nothing was written, or, on a read, the stored bytes stay as they are."""


class CorruptSegmentError(StoreError):
    """A segment holds bytes recovery cannot accept and the policy is to stop."""


class StoreLockedError(StoreError):
    """Another process has this store open."""


class StoreLayoutError(StoreError, ValueError):
    """The store's files were written with other sizes than the configuration asks for
    (a commit-log segment size, say): a setting to change, not corruption; nothing was
    opened."""


class StoreClosedError(StoreError):
    """The store was closed."""


class DiskFullError(StoreError, OSError):
    """The disk (or its configured usage ratio) is full; nothing was written."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.errno = errno.ENOSPC  # what callers that see only an OSError go by


class FlushTimeoutError(StoreError, TimeoutError):
    """A synchronous flush did not finish within the configured timeout."""


class ReplicaStoreError(StoreError):
    """The store is a replica: its CommitLog is its master's copy, so it takes no puts."""


class ReplicaDataError(StoreError, ValueError):
    """Bytes from a master that cannot be appended: not at the replica's end offset, or not
    whole, valid records. ``appended`` bytes before them were appended."""

    def __init__(self, message: str, appended: int = 0) -> None:
        super().__init__(message)
        self.appended = appended
