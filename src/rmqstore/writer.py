"""StoreWriter: the store's write side, owned by MessageStore: put, put_async, put_batch,
put_encoded_batch for the embedded API, put_record and put_entries for the broker and the
store's own services.

Every append runs under the put lock (RocketMQ's putMessageLock), which retention shares: the
record and its consume-queue unit are encoded natively in one call (see _native/append.c), and
the native appender asks to roll a full segment or consume-queue file, which happens here (or
in batch_append for batches). The writer also owns what only writes change: whether puts are
refused (closed, disk full), and the condition that wakes callers of wait_for_message.
"""

from __future__ import annotations

import functools
import threading
import time
import zlib
from collections.abc import Callable
from typing import Any

import lz4.frame

from . import _native
from .batch_append import append_entries, entry_index_keys, roll_for_bodies
from .commitlog import CommitLog
from .config import StoreConfig
from .consumequeue import ConsumeQueue
from .errors import (
    DiskFullError,
    InvalidBodyError,
    InvalidPropertyError,
    MessageTooLargeError,
    ReplicaStoreError,
    StoreClosedError,
    SyncFailedError,
)
from .flush import GroupCommit
from .index import IndexService, index_keys
from .message import PendingBatch, PendingPut, PutBatchResult, PutResult, PutStatus
from .options import PutOptions, RecordInput, put_options, tags_code
from .protocol.message import BodyDecodeError, decode_body
from .queue_table import ConsumeQueueTable
from .record import (
    COMPRESSION_LZ4,
    COMPRESSION_SHIFT,
    MAX_PROPERTIES_BYTES,
    PROP_TAGS,
    SYSFLAG_BORNHOST_V6,
    SYSFLAG_COMPRESSED,
    SYSFLAG_STOREHOST_V6,
    SYSFLAG_TX_MASK,
    encode_host,
    encode_properties,
)
from .topics import TopicRoutes

_put_simple = _native.put_simple
_put_simple_shared = _native.put_simple_shared
_put_sent = _native.put_sent
_CACHE_MAX = 4096  # producers' addresses repeat: their encodings are kept
_host_cache: dict[tuple[str, int], bytes] = {}
_NO_TARGETS = _native.Targets()  # the plain-path targets of a topic with none
_PUT_OK = PutStatus.PUT_OK  # an enum member lookup costs more than the native append


class StoreWriter:
    def __init__(self, config: StoreConfig, commitlog: CommitLog, queues: ConsumeQueueTable,
                 routes: TopicRoutes, index: IndexService | None, group_commit: GroupCommit,
                 put_lock: threading.Lock, store_host: bytes) -> None:
        """put_lock: shared with retention, which replaces the same file lists. group_commit:
        what sync flush waits on, and puts in flight cue."""
        self._config = config
        self._commitlog = commitlog
        self._log = commitlog.appender.ptr  # what the native appends take
        self._log_address = _native.appender_address(commitlog.appender)  # put_sent's
        self._last = commitlog.appender.last
        self._queues = queues
        self._routes = routes
        self._admitted = routes.admitted
        self._index = index
        self._group_commit = group_commit
        self._put_lock = put_lock
        self._arrival = threading.Condition(put_lock)
        self._on_append: Callable[[], object] | None = None
        self._store_host = store_host
        self._sync = config.flush == "sync"
        # topic -> _native.Targets: the queues puts to that topic can take the plain path to
        # (their rmq_queue addresses, the form the native put reads, and the ConsumeQueues the
        # Python paths take), by queue id or None, in one object per topic: a put to one queue
        # of thousands finds it in one dict entry and that object, which the queues of a topic
        # share (it builds no (topic, queue_id) key).
        self._targets: dict[str, Any] = {}
        self._plain_limit = min(config.max_message_size + 1,
                                config.compress_over_bytes if config.compression else 1 << 62)
        # put's plain path in one native call; it also holds what that path reads from here:
        # whether puts are refused, the count of wait_for_message callers, on_append
        self._putter = _native.new_putter(
            commitlog.appender, self._targets, put_lock, self._arrival,
            StoreWriter.put.__get__(self), StoreWriter.put_async.__get__(self),
            StoreWriter.put_batch.__get__(self), self._roll_for_bodies,
            self._durable if self._sync else None, self._durable_batch if self._sync else None,
            functools.partial(PendingPut, commit=group_commit), PutResult, PutBatchResult,
            _PUT_OK, store_host, self._plain_limit, config.max_message_size)
        self._closed = False
        self._writable = True
        self._sync_failed_at: int | None = None  # see stop_after_failed_sync
        self._replica = config.replica  # a replica's log grows only through MessageStore.replica
        self._set_refusing()
        if hasattr(put_lock, "native"):  # a shared store's: one native call locks and appends
            self._shared_args = put_lock.native
            self._put_plain = self._put_plain_shared
        else:
            self.put = self._putter.put  # type: ignore[method-assign]
            self.put_async = self._putter.put_async  # type: ignore[method-assign]
            self.put_batch = self._putter.put_batch  # type: ignore[method-assign]

    @property
    def on_append(self) -> Callable[[], object] | None:
        """Called after every append, under the put lock (replication's HAService wakes its
        links with it); None when nobody listens."""
        return self._on_append

    @on_append.setter
    def on_append(self, callback: Callable[[], object] | None) -> None:
        self._on_append = self._putter.on_append = callback

    def _set_refusing(self) -> None:
        """Closed, disk full, a failed sync or a replica: the hot paths check this one flag."""
        self._refusing = self._closed or not self._writable or self._replica \
            or self._sync_failed_at is not None
        self._putter.refusing = self._refusing

    # -- single messages --------------------------------------------------------------------
    def put(self, topic: str, body: bytes, *, queue_id: int | None = None,
            options: PutOptions | None = None, **fields: Any) -> PutResult:
        """Append one message; ``options``, or keyword arguments naming PutOptions fields
        (tags, keys, properties, flag, born_timestamp, reconsume_times), give its optional
        fields. With flush="sync" it returns once the message is on disk (status
        FLUSH_DISK_TIMEOUT if that took longer than sync_flush_timeout_ms)."""
        cq = self._targets.get(topic, _NO_TARGETS).get(queue_id)
        if (cq is not None and options is None and not fields and type(body) is bytes
                and len(body) < self._plain_limit):
            result = self._put_plain(cq, body)
        else:
            result = self._put(topic, body, queue_id, put_options(options, fields).record())
        return self._durable(result) if self._sync else result

    def _durable(self, result: PutResult) -> PutResult:
        """result once its record is on disk; status FLUSH_DISK_TIMEOUT past
        sync_flush_timeout_ms. Durable positions are record boundaries, so durable > offset
        covers the record."""
        if not self._group_commit.wait(result.commitlog_offset + 1):
            result.status = PutStatus.FLUSH_DISK_TIMEOUT
        return result

    def put_async(self, topic: str, body: bytes, *, queue_id: int | None = None,
                  options: PutOptions | None = None, **fields: Any) -> PendingPut:
        """put() without waiting for the disk: the message is stored (and readable) when this
        returns; PendingPut.wait() blocks until it is durable. Many puts in flight share each
        fdatasync, which a background flusher runs while anything is pending (sync flush)."""
        cq = self._targets.get(topic, _NO_TARGETS).get(queue_id)
        if (cq is not None and options is None and not fields and type(body) is bytes
                and len(body) < self._plain_limit):
            return PendingPut(self._put_plain(cq, body), self._group_commit)
        record = put_options(options, fields).record()
        return PendingPut(self._put(topic, body, queue_id, record), self._group_commit)

    def put_record(self, topic: str, body: bytes, queue_id: int | None,
                   record: RecordInput) -> PendingPut:
        """put_async for the broker and the store's services: ``record`` may carry a
        producer's address and sysflag, encoded properties, a unit's own tags code."""
        return PendingPut(self._put(topic, body, queue_id, record), self._group_commit)

    def _put_plain(self, cq: ConsumeQueue, body: bytes) -> PutResult:
        """The hot path: a topic and queue seen before, no properties, no compression."""
        lock = self._put_lock
        lock.acquire()  # cheaper than `with` on the hot path
        try:
            if self._refusing:
                self._check_writable()
            qoff = _put_simple(self._log, cq.wptr, body, len(body))
            if qoff < 0:
                qoff = self._put_plain_retrying(cq, body, qoff)
            last = self._last  # (phys, store time) of the record just appended
            result = PutResult(_PUT_OK, cq.queue_id, qoff, last[0], last[1], self._store_host)
            if self._putter.waiters:
                self._arrival.notify_all()
            if self._on_append is not None:
                self._on_append()
        finally:
            lock.release()
        return result

    def _put_plain_shared(self, cq: ConsumeQueue, body: bytes) -> PutResult:
        """_put_plain for a shared store: this process's thread lock, then the write mutex,
        the append and the release in one native call (the write mutex taken in Python only
        to repair, roll or catch up)."""
        local = self._put_lock.local
        local.acquire()
        try:
            if self._refusing:
                self._check_writable()
            qoff = _put_simple_shared(*self._shared_args, self._log, cq.wptr, body, len(body))
            if qoff < 0:  # redone under the write mutex: what the code said may be stale now
                lock = self._put_lock
                lock.lock_shared()
                try:
                    if self._refusing:  # another process's sync failed (WriteLock tells)
                        self._check_writable()
                    qoff = _put_simple(self._log, cq.wptr, body, len(body))
                    if qoff < 0:
                        qoff = self._put_plain_retrying(cq, body, qoff)
                finally:
                    lock.unlock_shared()
            last = self._last
            return PutResult(_PUT_OK, cq.queue_id, qoff, last[0], last[1], self._store_host)
        finally:
            local.release()

    def _put(self, topic: str, body: bytes, queue_id: int | None,
             record: RecordInput) -> PutResult:
        """The general path: validates, encodes the properties, compresses, indexes keys."""
        if type(body) is not bytes:
            if not isinstance(body, (bytearray, memoryview)):
                raise TypeError(f"body must be bytes-like, not {type(body).__name__}")
            body = bytes(body)
        if topic not in self._admitted:
            self._routes.admit(topic)
        if queue_id is not None:
            self._routes.check_queue(topic, queue_id)
        if len(body) > self._config.max_message_size:
            raise MessageTooLargeError(
                f"body is {len(body)} bytes; max_message_size is {self._config.max_message_size}")
        props = _encoded_properties(record)
        to_index = index_keys(record.properties)
        code = record.tags_code
        if code is None:
            tags = record.properties.get(PROP_TAGS)
            code = tags_code(tags) if tags else 0
        sysflag = record.sysflag
        if sysflag & SYSFLAG_COMPRESSED:
            self._check_inflates(body, sysflag)
            sysflag &= ~(SYSFLAG_BORNHOST_V6 | SYSFLAG_STOREHOST_V6)
        else:
            body, compressed = self._maybe_compress(body)
            sysflag = (sysflag & SYSFLAG_TX_MASK) | compressed
        host = None
        if record.born_host is not None:
            host, sysflag = _born_host(record.born_host, sysflag)
        born = -1 if record.born_timestamp is None else record.born_timestamp
        flag = record.flag
        self._prepare(topic, queue_id)
        log = self._log
        lock = self._put_lock
        lock.acquire()
        try:
            self._check_writable()
            qid = self._routes.next_queue(topic) if queue_id is None else queue_id
            cq = self._queues.for_write(topic, qid)
            # A tuple, not a closure: cells would slow every use of these names in here.
            args = (log, cq.wptr, body, len(body), props, len(props), code, sysflag, flag,
                    born, record.reconsume_times, 0, host if host is not None else _native.NULL)
            qoff, phys, now = self._append_record(topic, cq, args, to_index)
            if queue_id is not None or self._routes.single_queue(topic):
                self._plain_target(topic, queue_id, cq)
        finally:
            lock.release()
        return PutResult(PutStatus.PUT_OK, qid, qoff, phys, now, self._store_host)

    def put_sent(self, topic: str, queue_id: int, body: bytes, props: bytes, tags_code: int,
                 flag: int, born_ts: int, reconsume_times: int,
                 born_host: bytes | None, keys: list[str]) -> tuple[int, int, int] | None:
        """put_record of a broker's common send, whose fields its native parse checked: the
        properties encoded as stored (within MAX_PROPERTIES_BYTES), their TAGS' code and index
        ``keys`` given, sysflag 0 (the IPv6 bit for a 20-byte ``born_host``, encoded by
        encode_host). (queue offset, commit-log offset, store time); None, with
        nothing stored, when the general path must take it: (topic, queue_id) took no put
        yet, the body is too large or to be compressed, or puts are refused."""
        cq = self._targets.get(topic, _NO_TARGETS).get(queue_id)
        if cq is None or len(body) >= self._plain_limit or self._refusing:
            return None
        lock = self._put_lock
        lock.acquire()
        try:
            if self._refusing:
                self._check_writable()
            # one C-API call, no GIL drop: the common case
            stored = _put_sent(self._log_address, cq.waddr, body, props, tags_code, flag,
                               born_ts, reconsume_times, born_host)
            if type(stored) is int:  # a roll first, as _append_record makes it
                sysflag = SYSFLAG_BORNHOST_V6 if born_host and len(born_host) == 20 else 0
                args = (self._log, cq.wptr, body, len(body), props, len(props), tags_code,
                        sysflag, flag, born_ts, reconsume_times, 0,
                        _native.NULL if born_host is None else born_host)
                qoff = self._append_retrying(cq, lambda: _native.put(*args), stored)
                stored = (qoff, self._log.last_phys, self._log.last_ts)
            self._appended(topic, keys, stored[1], stored[2])
        finally:
            lock.release()
        commit = self._group_commit
        if not commit.async_pending:
            commit.cue()  # as PendingPut does: a put in flight wants to be made durable
        return stored

    def bind_send_path(self, path: Any, table: dict[str, int], durable_waits: bool) -> bool:
        """Let a broker's SendPath.serve (_native/send_read.c) put common sends as put_sent
        does, many per call: it reads this writer's targets, Putter flags, put lock and index
        as they change. table: the broker's fast topics. False (nothing bound) for a shared
        store, whose put lock the native put cannot take."""
        if hasattr(self._put_lock, "native"):
            return False
        index = self._index
        path.bind_fast(table, self._targets, self._putter, self._put_lock, self._arrival,
                       self._log_address, self._plain_limit, durable_waits, self._store_host,
                       index, _native.index_file_address, self._group_commit)
        return True

    def _append_record(self, topic: str, cq: ConsumeQueue, args: tuple,
                       to_index: list[str]) -> tuple[int, int, int]:
        """_native.put(*args) under the put lock, rolling as it asks, then what follows every
        append: the index keys, waking arrivals and replication. (queue offset, commit-log
        offset, store time)."""
        qoff = _native.put(*args)
        if qoff < 0:
            qoff = self._append_retrying(cq, lambda: _native.put(*args), qoff)
        log = self._log
        phys, now = log.last_phys, log.last_ts
        self._appended(topic, to_index, phys, now)
        return qoff, phys, now

    def _appended(self, topic: str, to_index: list[str], phys: int, now: int) -> None:
        """What follows every append, under the put lock: the index keys, waking arrivals and
        replication."""
        if to_index and self._index is not None:
            self._index.add_keys(topic, to_index, phys, now)
        if self._putter.waiters:
            self._arrival.notify_all()
        if self._on_append is not None:
            self._on_append()

    def _put_plain_retrying(self, cq: ConsumeQueue, body: bytes, code: int) -> int:
        # Apart from _put_plain: a closure there would cost every put its cells.
        log = self._log
        return self._append_retrying(cq, lambda: _put_simple(log, cq.wptr, body, len(body)),
                                     code)

    def _append_retrying(self, cq: ConsumeQueue, append, code: int) -> int:
        """The native append refused with code: roll the commit-log segment or the
        consume-queue file as it asks, then append again."""
        for _ in range(4):
            if code == -_native.SEGMENT_FULL:
                self._commitlog.roll()
            elif code == -_native.STALE:
                self._commitlog.catch_up(cq)
            elif code == -_native.QUEUE_FULL:
                cq.roll()
            elif code == -_native.IO_ERROR:
                raise OSError("writing a record to the commit log failed; it was not appended")
            else:
                raise MessageTooLargeError(
                    f"record does not fit a {self._config.commitlog_segment_bytes}-byte segment")
            code = append()
            if code >= 0:
                return code
        raise RuntimeError(f"append refused with code {code} after rolling")

    # -- batches ----------------------------------------------------------------------------
    def put_batch(self, topic: str, bodies: list[bytes], *, queue_id: int | None = None,
                  options: PutOptions | None = None, **fields: Any) -> PutBatchResult:
        """Append many messages to one queue in one native call; they share the options (tags,
        keys, properties, flag; not born_timestamp or reconsume_times) and get consecutive
        queue offsets. Bodies are stored as given (no compression). A batch that fits one
        segment stays in one segment."""
        if options is None and not fields:  # bodies alone: nothing to encode or index
            record = None
        else:
            record = put_options(options, fields).record()
            if record.born_timestamp is not None or record.reconsume_times:
                raise TypeError("put_batch stores no born_timestamp or reconsume_times")
        if topic not in self._admitted:
            self._routes.admit(topic)
        if queue_id is not None:
            self._routes.check_queue(topic, queue_id)
        bodies = [b if type(b) is bytes else _bytes_of(b) for b in bodies]
        limit = self._config.max_message_size
        longest = max(map(len, bodies), default=0)
        if longest > limit:
            raise MessageTooLargeError(f"a body is {longest} bytes; max_message_size is {limit}")
        props, to_index, code, flag = b"", None, 0, 0
        if record is not None:
            props = _encoded_properties(record)
            to_index = index_keys(record.properties)
            code, flag = record.tags_code or 0, record.flag
        self._prepare(topic, queue_id)
        with self._put_lock:
            if self._refusing:
                self._check_writable()
            qid = self._routes.next_queue(topic) if queue_id is None else queue_id
            cq = self._queues.for_write(topic, qid)
            qoff = cq.max_offset_locked()
            phys, now = [], self._commitlog.appender.last_ts
            if bodies:
                phys, now = self._putter.append_batch(_native.plain_target(cq), bodies, props,
                                                      code, flag)
            if to_index and self._index is not None:
                for p in phys:
                    self._index.add_keys(topic, to_index, p, now)
            if self._putter.waiters:
                self._arrival.notify_all()
            if self._on_append is not None:
                self._on_append()
            if queue_id is not None or self._routes.single_queue(topic):
                self._plain_target(topic, queue_id, cq)
        result = PutBatchResult(_PUT_OK, qid, qoff, phys, now, self._store_host)
        return self._durable_batch(result) if self._sync and phys else result

    def _durable_batch(self, result: PutBatchResult) -> PutBatchResult:
        """_durable for a batch: its last record's durability covers the others."""
        if not self._group_commit.wait(result.commitlog_offsets[-1] + 1):
            result.status = PutStatus.FLUSH_DISK_TIMEOUT
        return result

    def _roll_for_bodies(self, cq: ConsumeQueue, stop: int) -> None:
        roll_for_bodies(self._commitlog, cq, stop)

    def put_encoded_batch(self, topic: str, data: bytes, *, queue_id: int,
                          properties: dict[str, str] | None = None) -> PendingBatch:
        """Append the messages of a batch body in RocketMQ's wire encoding (what
        SEND_BATCH_MESSAGE carries: per entry TOTALSIZE MAGICCODE BODYCRC FLAG BODYLEN BODY
        PROPLEN PROPERTIES) to one queue, in one native call: each record keeps its entry's
        flag, body and properties (minus WAIT) followed by ``properties``; its unit carries the
        hash of its TAGS; UNIQ_KEY and KEYS are indexed. Nothing is stored when an entry's sizes
        do not add up (ValueError) or the batch is over max_message_size. Returns at once; the
        PendingBatch says when the batch is durable."""
        return self.put_entries(topic, data, queue_id, RecordInput(dict(properties or {})))

    def put_entries(self, topic: str, data: bytes, queue_id: int,
                    shared: RecordInput) -> PendingBatch:
        """put_encoded_batch for the broker: ``shared`` gives the properties that follow each
        entry's own, and every record's born time and host, sysflag (transaction type only:
        bodies in a batch are never compressed) and reconsume times; each entry has its own
        flag, tags and keys."""
        if topic not in self._admitted:
            self._routes.admit(topic)
        self._routes.check_queue(topic, queue_id)
        limit = self._config.max_message_size
        if len(data) > limit:  # the whole batch, as DefaultMessageStore.putMessages checks it
            raise MessageTooLargeError(
                f"batch body is {len(data)} bytes; max_message_size is {limit}")
        data = bytes(data)
        n = _native.check_entries(data, limit)  # ValueError if bad
        extra = _encoded_properties(shared)
        host, sysflag = None, shared.sysflag
        if shared.born_host is not None:
            host, sysflag = _born_host(shared.born_host, sysflag)
        sysflag &= SYSFLAG_TX_MASK | SYSFLAG_BORNHOST_V6
        born = -1 if shared.born_timestamp is None else shared.born_timestamp
        out = _native.new_entry_reports(max(n, 1))
        self._prepare(topic, queue_id)
        with self._put_lock:
            if self._refusing:
                self._check_writable()
            cq = self._queues.for_write(topic, queue_id)
            qoff = cq.max_offset_locked()
            now = append_entries(self._commitlog, cq, data, n, extra, sysflag, born,
                                 shared.reconsume_times, host, out)
            reports = _native.entry_reports(out, n)
            if self._index is not None:
                self._index.put_many(topic, entry_index_keys(data, reports), now)
            if self._putter.waiters:
                self._arrival.notify_all()
            if self._on_append is not None:
                self._on_append()
        return PendingBatch(PutBatchResult(PutStatus.PUT_OK, queue_id, qoff,
                                           [r[0] for r in reports], now, self._store_host),
                            self._group_commit)

    def _prepare(self, topic: str, queue_id: int | None) -> None:
        """Before the put lock: a queue's first put makes its directory and first file here
        (milliseconds on a busy disk), so that other producers do not wait for it. A put that
        names no queue prepares the one the round robin most likely gives it."""
        qid = self._routes.peek_queue(topic) if queue_id is None else queue_id
        if (topic, qid) not in self._queues.by_key:
            self._queues.prepare(topic, qid)

    def _plain_target(self, topic: str, queue_id: int | None, cq: ConsumeQueue) -> None:
        """Later plain puts to (topic, queue_id) go straight to cq (under the put lock)."""
        if queue_id is None or 0 <= queue_id <= _native.TARGETS_MAX_QUEUE_ID:
            address, _ = _native.plain_target(cq)
            self._targets[topic] = self._targets.get(topic, _NO_TARGETS).with_queue(
                queue_id, address, cq)

    # -- refusals and arrivals ----------------------------------------------------------------
    def topic_changed(self, topic: str) -> None:
        """topic's config changed (its queue count), or it was deleted: its plain-path
        targets may be stale. With or without the put lock (each dict operation is atomic)."""
        self._targets.pop(topic, None)

    def _check_writable(self) -> None:
        if self._replica:
            raise ReplicaStoreError("this store is a replica: it takes its master's commit log, "
                                    "not puts")
        if self._closed:
            raise StoreClosedError("store is closed")
        if self._sync_failed_at is not None:
            raise SyncFailedError(
                f"a sync of the commit log failed: writes are refused until the store is "
                f"reopened, which ends the log at offset {self._sync_failed_at}")
        if not self._writable:
            raise DiskFullError(
                f"disk above {self._config.disk_full_ratio:.0%} full; writes refused")

    @property
    def writable(self) -> bool:
        return self._writable

    @property
    def sync_failed_at(self) -> int | None:
        """The durable offset given to stop_after_failed_sync; None while no sync failed."""
        return self._sync_failed_at

    def stop_after_failed_sync(self, durable: int) -> None:
        """A sync of the commit log failed (sync_failure.py): puts raise SyncFailedError."""
        self._sync_failed_at = durable
        self._set_refusing()

    def set_writable(self, writable: bool) -> None:
        """False while the disk is above disk_full_ratio: puts raise DiskFullError."""
        self._writable = writable
        self._set_refusing()

    def set_replica(self, replica: bool) -> None:
        """A controller-mode role change: a replica refuses puts (ReplicaStoreError). Called
        under the put lock."""
        self._replica = replica
        self._targets.clear()  # the putter holds this dict: emptied, never replaced
        self._set_refusing()

    def close(self) -> None:
        """Refuse every later put (StoreClosedError) and wake every wait_for_message."""
        with self._put_lock:
            self._closed = True
            self._set_refusing()
            self._arrival.notify_all()

    def notify_arrivals(self) -> None:
        """Wake wait_for_message callers: a replica's dispatch added units (put lock held)."""
        if self._putter.waiters:
            self._arrival.notify_all()

    def wait_for_message(self, topic: str, queue_id: int, offset: int, timeout: float) -> bool:
        """Block until the queue holds a message at offset, or timeout seconds pass (long
        polling); the appends wake it."""
        deadline = time.monotonic() + timeout
        with self._arrival:
            self._putter.waiters += 1
            try:
                while True:
                    cq = self._queues.get_locked(topic, queue_id)
                    if cq is not None and cq.max_offset_locked() > offset:
                        return True
                    left = deadline - time.monotonic()
                    if left <= 0 or self._closed:
                        return False
                    self._arrival.wait(left)
            finally:
                self._putter.waiters -= 1

    def _check_inflates(self, body: bytes, sysflag: int) -> None:
        """A body stored as flagged compressed (a producer's, or a service's copy of one) must
        inflate within max_message_size: no reader may later meet one that does not, or a
        bomb. Inflated into a buffer bounded by that size, then dropped."""
        try:
            decode_body(body, sysflag, self._config.max_message_size)
        except BodyDecodeError as exc:
            raise InvalidBodyError(str(exc)) from None

    def _maybe_compress(self, body: bytes) -> tuple[bytes, int]:
        """Compress a body at or over compress_over_bytes when compression is on, keeping
        the result only when it is smaller (incompressible bodies are stored as given)."""
        cfg = self._config
        if cfg.compression is None or len(body) < cfg.compress_over_bytes:
            return body, 0
        if cfg.compression == "lz4":
            packed = lz4.frame.compress(body)
            flags = SYSFLAG_COMPRESSED | (COMPRESSION_LZ4 << COMPRESSION_SHIFT)
        else:  # type bits left 0 (plain zlib) so RocketMQ 4.x clients read it too
            packed = zlib.compress(body, cfg.zlib_level)
            flags = SYSFLAG_COMPRESSED
        if len(packed) >= len(body):
            return body, 0
        return packed, flags


def _encoded_properties(record: RecordInput) -> bytes:
    data = record.encoded
    if data is None:
        return encode_properties(record.properties) if record.properties else b""
    if len(data) > MAX_PROPERTIES_BYTES:
        raise InvalidPropertyError(
            f"properties are {len(data)} bytes; the limit is {MAX_PROPERTIES_BYTES}")
    return data


def _born_host(address: tuple[str, int], sysflag: int) -> tuple[bytes, int]:
    """The producer's address as stored, and sysflag with the IPv6 bit it needs."""
    host = _host_cache.get(address)
    if host is None:
        host = encode_host(*address)
        if len(_host_cache) >= _CACHE_MAX:
            _host_cache.clear()
        _host_cache[address] = host
    return host, (sysflag | SYSFLAG_BORNHOST_V6) if len(host) == 20 else sysflag


def _bytes_of(body: Any) -> bytes:
    """A batch's body as bytes (put_batch took any bytes-like body, as b"".join does)."""
    if not isinstance(body, (bytearray, memoryview)):
        raise TypeError(f"a body must be bytes-like, not {type(body).__name__}")
    return bytes(body)
