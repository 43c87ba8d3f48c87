"""MessageStore: the embedded store's facade. It wires CommitLog, ConsumeQueues, IndexService,
checkpoint, offsets, flushing and retention; byte formats live in their own modules.

Threads: put/put_batch serialize on one put lock (RocketMQ's putMessageLock); gets, queries and
offset calls run concurrently with them; one housekeeping thread flushes and cleans; in sync
flush mode writers share fdatasyncs through GroupCommit after leaving the put lock.
"""

from __future__ import annotations

import array
import fcntl
import logging
import os
import threading
import time
import zlib
from pathlib import Path
from typing import Iterable

import lz4.frame

from . import _native, filenames
from .checkpoint import StoreCheckpoint
from .commitlog import CommitLog
from .config import StoreConfig
from .consumequeue import ConsumeQueue
from .errors import (DiskFullError, InvalidTopicError, MessageTooLargeError, StoreClosedError,
                     StoreLockedError)
from .flush import GroupCommit, Housekeeper, SyncFlusher, dirty_pages
from .index import IndexService
from .message import PendingPut, PutBatchResult, PutResult, PutStatus
from .offsets import ConsumerOffsetManager
from .reader import StoreReader
from .record import (COMPRESSION_LZ4, COMPRESSION_SHIFT, PROP_KEYS, PROP_TAGS,
                     SYSFLAG_BORNHOST_V6, SYSFLAG_COMPRESSED, SYSFLAG_STOREHOST_V6,
                     SYSFLAG_TX_MASK, check_topic, encode_host, encode_properties)
from .recovery import index_keys, recover
from .retention import Retention, disk_used_ratio
from .segment_queue import Preallocator
from .topics import TopicConfig, TopicConfigManager
from .warm import Warmer

log = logging.getLogger(__name__)
_put_simple = _native.put_simple
_PUT_OK = PutStatus.PUT_OK  # an enum member lookup costs more than the native append

OFFSET_PERSIST_INTERVAL_S = 5.0  # flushConsumerOffsetInterval
DISK_CHECK_INTERVAL_S = 10.0


def open_store(path: str | os.PathLike, **config) -> "MessageStore":
    """Open (creating or recovering) the store at path. Keyword arguments are StoreConfig
    fields. Use it as a context manager, or call close()."""
    return MessageStore(path, StoreConfig(**config))


class MessageStore(StoreReader):
    def __init__(self, path: str | os.PathLike, config: StoreConfig | None = None) -> None:
        self.root = Path(path)
        self.config = config = config or StoreConfig()
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _take_lock(filenames.lock_file(self.root))
        self._closed = False
        self._put_lock = threading.Lock()
        self._arrival = threading.Condition(self._put_lock)
        self._arrival_waiters = 0
        self._topic_cache: dict[str, bytes] = {}
        self._round_robin: dict[str, int] = {}
        self._writable = True
        self._refusing = False  # closed or disk full: the hot path checks this one flag
        self._sync = config.flush == "sync"
        self._store_host = encode_host(*config.store_host)
        # (topic, queue_id or None) -> ConsumeQueue for puts that can take the plain path.
        self._plain_targets: dict[tuple[str, int | None], ConsumeQueue] = {}
        self._plain_limit = min(config.max_message_size + 1,
                                config.compress_over_bytes if config.compression else 1 << 62)
        try:
            self._open_parts(config)
        except BaseException:
            os.close(self._lock_fd)
            raise

    def _open_parts(self, config: StoreConfig) -> None:
        root = self.root
        abnormal = filenames.abort_file(root).exists()
        self._allocator = Preallocator(config.warm_bytes) if config.background else None
        self.commitlog = CommitLog(root, config.commitlog_segment_bytes, self._allocator,
                                   self._store_host)
        self._log = self.commitlog.appender.ptr
        self.commitlog.load()
        self._cqs: dict[tuple[str, int], ConsumeQueue] = {}
        self._load_consume_queues()
        self.checkpoint = StoreCheckpoint(filenames.checkpoint_file(root))
        self.index = IndexService(filenames.index_dir(root), config.index_slots,
                                  config.index_entries, self._index_file_full) \
            if config.index_enable else None
        if self.index is not None:
            self.index.load()
        self.topics = TopicConfigManager(root)
        self.topics.load()
        self.offsets = ConsumerOffsetManager(root)
        self.offsets.load()
        recover(self.commitlog, self._cqs, self.index, self.checkpoint, abnormal,
                config.check_crc_on_recover, self._queue_for_write, _native.java_hash)
        self.commitlog.attach_last()
        filenames.abort_file(root).touch()
        self._sync_dir(root)
        durable = self.commitlog.max_offset
        self._group_commit = GroupCommit(self._flush_commitlog_all, durable,
                                         config.sync_flush_timeout_ms / 1000)
        self.retention = Retention(self.commitlog, lambda: list(self._cqs.values()), self.index,
                                   config.retention_hours, config.disk_max_used_ratio,
                                   lambda: disk_used_ratio(self.root))
        self._last_thorough = time.monotonic()
        self._housekeeper = None
        if config.background:
            self._housekeeper = Housekeeper([
                ("flush-commitlog", config.flush_interval_ms / 1000, self._flush_commitlog_timed),
                ("flush-queues", config.consumequeue_flush_interval_ms / 1000, self.flush_queues),
                ("persist-offsets", OFFSET_PERSIST_INTERVAL_S, self.offsets.persist),
                ("disk-check", DISK_CHECK_INTERVAL_S, self._check_disk),
                ("retention", config.clean_interval_ms / 1000, self.retention.clean_once),
            ])
            self._housekeeper.start()
        self._warmer = None
        if config.background and config.warm_bytes:
            self._warmer = Warmer(self.commitlog.files, config.warm_bytes)
            self._warmer.start()
        self._sync_flusher = None
        if self._sync:
            self._sync_flusher = SyncFlusher(self._group_commit, lambda: self.commitlog.max_offset)
            self._sync_flusher.start()

    def _load_consume_queues(self) -> None:
        base = filenames.consumequeue_root(self.root)
        if not base.is_dir():
            return
        for topic_dir in sorted(base.iterdir()):
            try:
                check_topic(topic_dir.name)
            except InvalidTopicError:
                log.warning("ignoring %s: not a topic name", topic_dir)
                continue
            for qdir in sorted(topic_dir.iterdir()):
                if qdir.name.isdigit():
                    cq = self._new_cq(topic_dir.name, int(qdir.name))
                    cq.load()

    def _new_cq(self, topic: str, queue_id: int) -> ConsumeQueue:
        cq = ConsumeQueue(filenames.consumequeue_dir(self.root, topic, queue_id), topic,
                          queue_id, self.config.consumequeue_units)
        self._cqs = {**self._cqs, (topic, queue_id): cq}  # copy-on-write for lock-free readers
        return cq

    def _queue_for_write(self, topic: str, queue_id: int) -> ConsumeQueue:
        cq = self._cqs.get((topic, queue_id))
        if cq is None:
            cq = self._new_cq(topic, queue_id)
            cq.files.directory.mkdir(parents=True, exist_ok=True)
        return cq

    # -- topics ---------------------------------------------------------------------------
    def create_topic(self, topic: str, queue_nums: int = 1) -> TopicConfig:
        """Create or resize a topic (persisted in config/topics.json)."""
        check_topic(topic)
        if not 1 <= queue_nums <= 1024:
            raise ValueError("queue_nums must be within [1, 1024]")
        cfg = TopicConfig(topic, queue_nums, queue_nums)
        self.topics.put(cfg)
        self._plain_targets = {k: v for k, v in self._plain_targets.items() if k[0] != topic}
        return cfg

    def _topic_bytes(self, topic: str) -> bytes:
        data = self._topic_cache.get(topic)
        if data is None:
            data = check_topic(topic)
            if self.topics.get(topic) is None:
                self.create_topic(topic, self.config.default_queue_nums)
            self._topic_cache[topic] = data
        return data

    def _single_queue(self, topic: str) -> bool:
        cfg = self.topics.get(topic)
        return cfg is None or cfg.write_queue_nums == 1

    def _choose_queue(self, topic: str) -> int:
        cfg = self.topics.get(topic)
        n = cfg.write_queue_nums if cfg else 1
        if n == 1:
            return 0
        i = self._round_robin.get(topic, -1) + 1
        self._round_robin[topic] = i
        return i % n

    # -- writing --------------------------------------------------------------------------
    def put(self, topic: str, body: bytes, *, queue_id: int | None = None,
            tags: str | None = None, keys: Iterable[str] = (),
            properties: dict[str, str] | None = None, flag: int = 0,
            born_timestamp: int | None = None, reconsume_times: int = 0,
            born_host: tuple[str, int] | None = None, sysflag: int = 0) -> PutResult:
        """Append one message. With flush="sync" it returns once the message is on disk
        (status FLUSH_DISK_TIMEOUT if that took longer than sync_flush_timeout_ms).

        born_host is the producer's address (default: the store host); sysflag passes a
        producer's flags through (a body flagged compressed is stored as given)."""
        cq = self._plain_targets.get((topic, queue_id))
        if (cq is not None and tags is None and not keys and properties is None and not flag
                and born_timestamp is None and not reconsume_times and born_host is None
                and not sysflag and type(body) is bytes and len(body) < self._plain_limit):
            result = self._put_plain(cq, body)
        else:
            result = self._put(topic, body, queue_id, tags, keys, properties, flag,
                               born_timestamp, reconsume_times, born_host, sysflag)
        # Durable positions are record boundaries, so durable > offset covers the record.
        if self._sync and not self._group_commit.wait(result.commitlog_offset + 1):
            result.status = PutStatus.FLUSH_DISK_TIMEOUT
        return result

    def put_async(self, topic: str, body: bytes, **options) -> PendingPut:
        """put() without waiting for the disk: the message is stored (and readable) when this
        returns; PendingPut.wait() blocks until it is durable. Many puts in flight share each
        fdatasync, which a background flusher runs while anything is pending (sync flush)."""
        if not options:
            cq = self._plain_targets.get((topic, None))
            if cq is not None and type(body) is bytes and len(body) < self._plain_limit:
                return PendingPut(self._put_plain(cq, body), self._group_commit)
        queue_id = options.pop("queue_id", None)
        return PendingPut(self._put(topic, body, queue_id, options.pop("tags", None),
                                    options.pop("keys", ()), options.pop("properties", None),
                                    options.pop("flag", 0), options.pop("born_timestamp", None),
                                    options.pop("reconsume_times", 0),
                                    options.pop("born_host", None), options.pop("sysflag", 0),
                                    **options),
                          self._group_commit)

    def _put_plain(self, cq: ConsumeQueue, body: bytes) -> PutResult:
        """The hot path: a topic and queue seen before, no properties, no compression."""
        log, lock = self._log, self._put_lock
        lock.acquire()  # cheaper than `with` on the hot path
        try:
            if self._refusing:
                self._check_writable()
            qoff = _put_simple(log, cq.wptr, body, len(body))
            if qoff < 0:
                qoff = self._append_retrying(
                    cq, lambda: _put_simple(log, cq.wptr, body, len(body)), qoff)
            result = PutResult(_PUT_OK, cq.queue_id, qoff, log.last_phys, log.last_ts,
                               self._store_host)
            if self._arrival_waiters:
                self._arrival.notify_all()
        finally:
            lock.release()
        return result

    def _put(self, topic, body, queue_id, tags, keys, properties, flag, born_timestamp,
             reconsume_times, born_host=None, sysflag=0) -> PutResult:
        """The general path: validates, builds properties, compresses, indexes keys."""
        if type(body) is not bytes:
            if not isinstance(body, (bytearray, memoryview)):
                raise TypeError(f"body must be bytes-like, not {type(body).__name__}")
            body = bytes(body)
        if topic not in self._topic_cache:
            self._topic_bytes(topic)  # validates the name, creates the topic config
        if len(body) > self.config.max_message_size:
            raise MessageTooLargeError(
                f"body is {len(body)} bytes; max_message_size is {self.config.max_message_size}")
        keys = [keys] if isinstance(keys, str) else list(keys)
        props = self._properties(tags, keys, properties) if (tags or keys or properties) else b""
        to_index = index_keys(properties, keys)
        if sysflag & SYSFLAG_COMPRESSED:
            sysflag &= ~(SYSFLAG_BORNHOST_V6 | SYSFLAG_STOREHOST_V6)
        else:
            body, compressed = self._maybe_compress(body)
            sysflag = (sysflag & SYSFLAG_TX_MASK) | compressed
        host = None
        if born_host is not None:
            host = encode_host(*born_host)
            if len(host) == 20:
                sysflag |= SYSFLAG_BORNHOST_V6
        tags_code = _native.java_hash(tags) if tags else 0
        log = self._log
        with self._put_lock:
            self._check_writable()
            qid = self._choose_queue(topic) if queue_id is None else queue_id
            cq = self._cqs.get((topic, qid)) or self._queue_for_write(topic, qid)
            born = -1 if born_timestamp is None else born_timestamp

            def append():
                return _native.put(log, cq.wptr, body, len(body), props, len(props),
                                   tags_code, sysflag, flag, born, reconsume_times, 0,
                                   host if host is not None else _native.NULL)

            qoff = append()
            if qoff < 0:
                qoff = self._append_retrying(cq, append, qoff)
            phys, now = log.last_phys, log.last_ts
            if to_index and self.index is not None:
                self.index.put_keys(topic, to_index, phys, now)
            if queue_id is not None or self._single_queue(topic):
                self._plain_targets[(topic, queue_id)] = cq
            if self._arrival_waiters:
                self._arrival.notify_all()
        return PutResult(PutStatus.PUT_OK, qid, qoff, phys, now, self._store_host)

    def _append_retrying(self, cq: ConsumeQueue, append, code: int) -> int:
        """The native append refused with code: roll the commit-log segment or the
        consume-queue file as it asks, then append again."""
        for _ in range(3):
            if code == -_native.SEGMENT_FULL:
                self.commitlog.roll()
            elif code == -_native.QUEUE_FULL:
                cq.roll()
            else:
                raise MessageTooLargeError(
                    f"record does not fit a {self.config.commitlog_segment_bytes}-byte segment")
            code = append()
            if code >= 0:
                return code
        raise RuntimeError(f"append refused with code {code} after rolling")

    def put_batch(self, topic: str, bodies: list[bytes], *, queue_id: int | None = None,
                  tags: str | None = None, keys: Iterable[str] = (),
                  properties: dict[str, str] | None = None, flag: int = 0) -> PutBatchResult:
        """Append many messages to one queue in one native call; they share tags, keys and
        properties and get consecutive queue offsets. Bodies are stored as given (no
        compression). A batch that fits one segment stays in one segment."""
        if topic not in self._topic_cache:
            self._topic_bytes(topic)  # validates the name
        data = b"".join(bodies)
        lens = array.array("i", map(len, bodies))
        limit = self.config.max_message_size
        if len(data) > limit and max(lens) > limit:
            raise MessageTooLargeError(f"a body is {max(lens)} bytes; max_message_size is {limit}")
        if tags or keys or properties:
            keys = [keys] if isinstance(keys, str) else list(keys)
            props = self._properties(tags, keys, properties)
            to_index = index_keys(properties, keys)
            tags_code = _native.java_hash(tags) if tags else 0
        else:
            props, to_index, tags_code = b"", None, 0
        n = len(lens)
        phys = array.array("q", bytes(8 * n))
        appender = self.commitlog.appender
        with self._put_lock:
            if self._refusing:
                self._check_writable()
            qid = self._choose_queue(topic) if queue_id is None else queue_id
            cq = self._cqs.get((topic, qid)) or self._queue_for_write(topic, qid)
            qoff = cq.max_offset
            done = body_at = 0
            stamp = 0  # the first native call takes the time; continuations reuse it
            try:
                while done < n:
                    wrote, stop = appender.put_batch(cq.writer, data, lens, done, body_at, phys,
                                                     props, tags_code, flag, stamp)
                    stamp = self._log.last_ts if done or wrote else 0
                    if wrote:
                        body_at += sum(lens[done:done + wrote])
                        done += wrote
                    if stop == _native.SEGMENT_FULL:
                        self.commitlog.roll()
                    elif stop == _native.QUEUE_FULL:
                        cq.roll()
                    elif stop == _native.TOO_LARGE:
                        raise MessageTooLargeError(
                            f"a record does not fit a {self.config.commitlog_segment_bytes}-byte segment")
            finally:
                now = self._log.last_ts
            if to_index and self.index is not None:
                for p in phys:
                    self.index.put_keys(topic, to_index, p, now)
            if self._arrival_waiters:
                self._arrival.notify_all()
        status = PutStatus.PUT_OK
        if n and self._sync and not self._group_commit.wait(phys[-1] + 1):
            status = PutStatus.FLUSH_DISK_TIMEOUT
        return PutBatchResult(status, qid, qoff, phys.tolist(), now, self._store_host)

    def _properties(self, tags, keys, properties) -> bytes:
        props = dict(properties) if properties else {}
        if tags:
            props[PROP_TAGS] = tags
        if keys:
            props[PROP_KEYS] = " ".join(keys)
        return encode_properties(props)

    def _maybe_compress(self, body: bytes) -> tuple[bytes, int]:
        """Compress a body at or over compress_over_bytes when compression is on, keeping
        the result only when it is smaller (incompressible bodies are stored as given)."""
        cfg = self.config
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

    def _check_writable(self) -> None:
        if self._closed:
            raise StoreClosedError("store is closed")
        if not self._writable:
            raise DiskFullError(f"disk above {self.config.disk_full_ratio:.0%} full; writes refused")

    def _check_disk(self) -> None:
        ratio = disk_used_ratio(self.root)
        writable = ratio < self.config.disk_full_ratio
        if writable != self._writable:
            log.warning("disk %.0f%% full: writes %s", ratio * 100,
                        "resumed" if writable else "refused")
        self._set_writable(writable)

    def _set_writable(self, writable: bool) -> None:
        self._writable = writable
        self._refusing = self._closed or not writable

    # -- waiting for messages (long polling) --------------------------------------------
    def wait_for_message(self, topic: str, queue_id: int, offset: int, timeout: float) -> bool:
        """Block until the queue holds a message at offset, or timeout seconds pass."""
        deadline = time.monotonic() + timeout
        with self._arrival:
            self._arrival_waiters += 1
            try:
                while True:
                    cq = self._cqs.get((topic, queue_id))
                    if cq is not None and cq.max_offset > offset:
                        return True
                    left = deadline - time.monotonic()
                    if left <= 0 or self._closed:
                        return False
                    self._arrival.wait(left)
            finally:
                self._arrival_waiters -= 1

    # -- consumer offsets ---------------------------------------------------------------
    def commit_offset(self, group: str, topic: str, queue_id: int, offset: int) -> None:
        """Record the next offset group will consume; on disk within 5 s (async flush) or
        before returning (sync flush)."""
        self.offsets.commit(group, topic, queue_id, offset)
        if self.config.flush == "sync":
            self.offsets.persist()

    def committed_offset(self, group: str, topic: str, queue_id: int) -> int | None:
        return self.offsets.committed(group, topic, queue_id)

    # -- flushing -------------------------------------------------------------------------
    def _flush_commitlog_all(self) -> int:
        ts = self._log.last_ts
        durable = self.commitlog.flush(self.commitlog.max_offset)
        self.checkpoint.physic_ts = max(self.checkpoint.physic_ts, ts)
        return durable

    def _flush_commitlog_timed(self) -> None:
        last = self.commitlog.files.last()
        if last is None or self.config.flush == "sync":
            return
        thorough = time.monotonic() - self._last_thorough >= self.config.flush_thorough_interval_ms / 1000
        if thorough or last.full or dirty_pages(last.wrote, last.flushed) >= self.config.flush_least_pages:
            self._flush_commitlog_all()
            if thorough:
                self._last_thorough = time.monotonic()

    def flush_queues(self) -> None:
        """Flush dirty consume queues and the index, then record in the checkpoint how far
        they are durable (FlushConsumeQueueService)."""
        ts = self._log.last_ts
        for cq in list(self._cqs.values()):
            cq.flush()  # a no-op for a queue with nothing new
        if self.index is not None:
            self.index.flush()
        self.checkpoint.logics_ts = max(self.checkpoint.logics_ts, ts)
        self.checkpoint.flush()

    def _index_file_full(self, end_ts: int) -> None:
        self.checkpoint.index_ts = end_ts
        self.checkpoint.flush()

    @property
    def durable_offset(self) -> int:
        """Commit-log offset up to which everything is on disk (record boundaries)."""
        return self._group_commit.flushed

    def wait_durable(self, offset: int) -> bool:
        """Block until the commit log is durable past offset (one group commit serves every
        waiter); False after sync_flush_timeout_ms."""
        return self._group_commit.wait(offset)

    def flush(self) -> None:
        """Make everything written so far durable: log, queues, index, checkpoint, offsets."""
        self._group_commit.wait(self.commitlog.max_offset)
        self.flush_queues()
        self.offsets.persist()

    # -- lifecycle ------------------------------------------------------------------------
    def close(self) -> None:
        """Flush everything, remove the abort marker, release the lock. Idempotent."""
        if self._closed:
            return
        with self._put_lock:
            self._closed = True
            self._refusing = True
            self._arrival.notify_all()
        if self._housekeeper is not None:
            self._housekeeper.stop()
        if self._sync_flusher is not None:
            self._sync_flusher.stop()
        if self._warmer is not None:
            self._warmer.stop()
        self.flush()
        if self._allocator is not None:
            self._allocator.close()
        self.retention.close()
        for cq in self._cqs.values():
            cq.close()
        if self.index is not None:
            self.index.close()
        self.commitlog.close()
        self.checkpoint.close()
        filenames.abort_file(self.root).unlink(missing_ok=True)
        self._sync_dir(self.root)
        os.close(self._lock_fd)

    def __enter__(self) -> "MessageStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @staticmethod
    def _sync_dir(path: Path) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _take_lock(path: Path) -> int:
    """RocketMQ's `lock` file: an exclusive lock held while the store is open."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StoreLockedError(f"{path.parent} is open in another process") from None
    os.pwrite(fd, b"lock", 0)
    return fd
