"""Both ends of replication inside the engine (RocketMQ's HA, the transport being rmqstore.ha):

- ReplicaLog, a replica's side (HAClient.dispatchReadRequest -> CommitLog.appendData): its
  master's raw commit-log bytes are appended at the offsets they came from, then dispatched
  to the consume queues and the index (replica_dispatch.py). Only whole records that check out
  are appended: sizes, magic, body CRC, topic and properties, the PHYSICALOFFSET each carries,
  a BLANK ending exactly at its segment's end (rmq_append_raw). A record cut short by the end
  of the bytes given is not appended; the caller hands it again with the bytes that complete
  it. So a broken stream leaves the log at a record boundary, where the next link resumes.
- read_log, the master's side (HAConnection.WriteSocketService -> getCommitLogData): raw bytes
  from an offset, never past its segment, BLANK tails included.

An empty replica takes its first bytes at any segment start: a master starts an empty slave at
the start of its last segment (HAConnection), not at 0. After that, bytes must start exactly
where the replica's log ends; anything else is refused (ReplicaDataError), never re-based.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from . import _native
from .commitlog import CommitLog
from .errors import ReplicaDataError, SyncFailedError
from .record import RecordField
from .replica_dispatch import ReplicaDispatcher
from .segment import MappedFile

DISPATCH_SLICE = 1024  # records per dispatch call: the caller's loop stays responsive


class ReplicaLog:
    def __init__(self, commitlog: CommitLog, dispatcher: ReplicaDispatcher,
                 put_lock: threading.Lock, on_appended: Callable[[], None] | None,
                 on_dispatched: Callable[[int], None],
                 sync_failed_at: Callable[[], int | None] = lambda: None) -> None:
        """put_lock: the store's (retention and the dispatch share the file lists).
        on_appended(): bytes were appended (sync flush cues its flusher). on_dispatched(ts):
        records stored up to ts are in their queues, called under the put lock.
        sync_failed_at(): the store's MessageStore.sync_failed_at."""
        self._commitlog = commitlog
        self._dispatcher = dispatcher
        self._lock = put_lock
        self._dispatch_lock = threading.Lock()  # one dispatch at a time
        self._on_appended = on_appended
        self._on_dispatched = on_dispatched
        self._sync_failed_at = sync_failed_at
        # told (on the failed sync's thread) when a sync of the log fails: the HA client
        # closes its link then, not at the master's next bytes
        self.on_sync_failed: Callable[[int], None] | None = None

    @property
    def end(self) -> int:
        """Where the log ends: the offset the master's next bytes must start at (the slave's
        report to its master, HAClient.reportSlaveMaxOffset)."""
        return self._commitlog.max_offset

    @property
    def sync_failed_at(self) -> int | None:
        """Where the log was durable when a sync of it failed; it takes no more bytes until the
        store is reopened, which ends it there (the master then sends the rest again)."""
        return self._sync_failed_at()

    def sync_failed(self, durable: int) -> None:
        """The store's sync failed (MessageStore's stop after it): tell on_sync_failed."""
        if self.on_sync_failed is not None:
            self.on_sync_failed(durable)

    @property
    def dispatched(self) -> int:
        """Offset up to which records are in their consume queues and the index."""
        return self._dispatcher.dispatched

    def append(self, offset: int, data: bytes | bytearray | memoryview) -> int:
        """Append the whole, valid records at the start of ``data``, the master's bytes from
        ``offset`` on; returns how many bytes that was (the rest starts a record that data
        cuts short). ReplicaDataError if ``offset`` is not where the log ends, or after the
        valid records when the bytes after them are not a record (``appended`` says how many
        went in). SyncFailedError once a sync of the log failed (sync_failed_at)."""
        files = self._commitlog.files
        view = memoryview(data)
        total = 0
        with self._lock:
            self._check_start(offset)
            while total < len(view):
                seg = files.last_for_write(offset)
                n, status, _ = _native.append_raw(seg, view, total)
                total += n
                if status == _native.RAW_INVALID:
                    raise ReplicaDataError(f"master's bytes at offset {offset + total} are not a "
                                           f"valid record", total)
                if status == _native.RAW_IO_ERROR:
                    raise OSError(f"writing the replica's segment {seg.path.name} failed")
                if status != _native.RAW_SEGMENT_END:
                    break
        if total and self._on_appended is not None:
            self._on_appended()
        return total

    def segment_at(self, offset: int) -> MappedFile:
        """The segment the master's bytes from ``offset`` go into, for a caller that appends
        them itself (the native link: rmq_append_raw, as append() does, one segment at a
        time); ReplicaDataError and SyncFailedError as append()."""
        with self._lock:
            self._check_start(offset)
            return self._commitlog.files.last_for_write(offset)

    def appended(self) -> None:
        """A caller that appends itself (segment_at) appended bytes."""
        if self._on_appended is not None:
            self._on_appended()

    def _check_start(self, offset: int) -> None:
        """Bytes must start where the log ends, in a log whose syncs have not failed; an empty
        replica's at a segment start. A log that holds no byte but has its file (a power loss
        kept the file, not its bytes) drops it first: its master feeds an empty slave from the
        start of its last segment."""
        if (failed := self._sync_failed_at()) is not None:
            raise SyncFailedError(f"a sync of this replica's commit log failed: it takes no "
                                  f"more bytes until it is reopened, which ends its log at "
                                  f"offset {failed}")
        files = self._commitlog.files
        end = files.max_offset
        if offset == end:
            return
        if offset % files.file_size == 0 and end == files.min_offset:
            files.drop_empty()
            return
        raise ReplicaDataError(f"master's bytes start at offset {offset}; this replica's "
                               f"log ends at {end}")

    def pending(self) -> bool:
        """Records appended but not yet dispatched (up to the confirm offset, if set)."""
        return self._dispatcher.pending()

    @property
    def confirm_offset(self) -> int | None:
        return self._dispatcher.limit

    def set_confirm_offset(self, offset: int | None) -> None:
        """Controller mode: dispatch (so readers see) records ending at or below ``offset``
        only, the master's confirm offset (min(it, this log's end), as a Java slave keeps it)."""
        self._dispatcher.limit = offset

    @property
    def dispatch_lock(self) -> threading.Lock:
        """Held by every dispatch; a truncation takes it (before the put lock) so that no
        dispatch thread reads what it cuts."""
        return self._dispatch_lock

    def truncated(self, offset: int) -> None:
        """The log was cut at ``offset``: dispatch resumes there at most."""
        self._dispatcher.dispatched = min(self._dispatcher.dispatched, offset)

    def dispatch(self, max_records: int = DISPATCH_SLICE) -> set[tuple[str, int]]:
        """Dispatch up to max_records appended records to their queues and the index; returns
        the (topic, queue id) of each queue that grew (to wake pulls waiting on them). Runs
        beside append(): only the rare slow path takes the put lock."""
        with self._dispatch_lock:
            touched = self._dispatcher.dispatch(max_records)
        if touched:
            with self._lock:
                self._on_dispatched(self._dispatcher.last_ts)
        return touched


def read_log(commitlog: CommitLog, offset: int, max_bytes: int,
             head_room: int = 0) -> bytearray | None:
    """The raw bytes from ``offset`` to its segment's written end, at most ``max_bytes``,
    after ``head_room`` bytes left for the caller; empty past them when the log ends at
    ``offset``; None when the log does not hold ``offset`` (deleted, or beyond its end)."""
    seg = commitlog.files.find(offset)
    if seg is None:
        return bytearray(head_room) if offset == commitlog.max_offset else None
    wrote = seg.wrote
    pos = offset - seg.start
    if pos > wrote:
        return None
    return _native.read_raw(seg.region, wrote, pos, max_bytes, head_room)


def read_log_into(commitlog: CommitLog, offset: int, dst: memoryview) -> int | None:
    """read_log into ``dst``: the bytes from ``offset`` to its segment's written end, at most
    len(dst); the count (0 when the log ends at ``offset``), or None when the log does not
    hold ``offset``."""
    seg = commitlog.files.find(offset)
    if seg is None:
        return 0 if offset == commitlog.max_offset else None
    wrote = seg.wrote
    pos = offset - seg.start
    if pos > wrote:
        return None
    return _native.read_raw_into(seg.region, wrote, pos, dst)


def holds_boundary(commitlog: CommitLog, offset: int) -> bool:
    """Whether a record (or a BLANK, or the log's end) starts at ``offset``: where a slave may
    ask to be sent bytes from. A slave whose log diverged from its master's asks elsewhere."""
    if offset == commitlog.max_offset:
        return True
    seg = commitlog.files.find(offset)
    if seg is None or offset - seg.start >= seg.wrote:
        return False
    fields = _native.parse(seg.region, offset - seg.start, False)
    return fields == () or (bool(fields) and fields[RecordField.PHYSICAL_OFFSET] == offset)
