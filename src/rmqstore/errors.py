"""The exception tree. Every error the engine raises on purpose is a StoreError."""

from __future__ import annotations

import errno
import resource


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


class WritesStoppedError(StoreError, OSError):
    """The store takes no writes for now; nothing was written (a broker answers
    SERVICE_NOT_AVAILABLE)."""


class SyncFailedError(WritesStoppedError):
    """A sync of the commit log failed (flush="sync"): the pages it could not write may be
    gone from the disk while a later sync would report success, so the store takes no writes
    and acknowledges nothing more until it is reopened, which ends the log where it was last
    durable (sync_failure.py)."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.errno = errno.EIO


class DiskFullError(WritesStoppedError):
    """The disk (or its configured usage ratio) is full; nothing was written."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.errno = errno.ENOSPC  # what callers that see only an OSError go by


class StoreLimitError(StoreError, OSError):
    """An operating-system limit is in the way (open files, memory mappings); the message
    names it and how to raise it. Nothing was written; the store stays consistent."""

    @classmethod
    def open_files(cls, path, code: int) -> StoreLimitError:
        """EMFILE (the process's limit) or ENFILE (the system's) opening path."""
        if code == errno.ENFILE:
            return cls(code, f"cannot open {path}: the system's table of open files is full; "
                             "raise fs.file-max (sysctl -w fs.file-max=...)")
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        return cls(code, f"cannot open {path}: this process has the {soft} open files its "
                         f"limit allows (RLIMIT_NOFILE, hard limit {hard}); raise it with "
                         "`ulimit -n` before starting (LimitNOFILE= in a systemd unit)")

    @classmethod
    def mappings(cls, path, mapped: int) -> StoreLimitError:
        """ENOMEM mapping path with `mapped` consume-queue files mapped."""
        try:
            with open("/proc/sys/vm/max_map_count") as f:
                limit = f.read().strip()
        except OSError:
            limit = "unknown"
        return cls(errno.ENOMEM, f"cannot map {path}: the process holds as many memory "
                                 f"mappings as the kernel allows (vm.max_map_count = {limit}; "
                                 f"{mapped} consume-queue files mapped); lower "
                                 "consumequeue_mapped_files or raise vm.max_map_count "
                                 "(sysctl -w vm.max_map_count=...)")


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
