"""MessageStore: the embedded store's facade. It wires CommitLog, ConsumeQueues, IndexService,
checkpoint, offsets, flushing and retention; the write path is in writer.py, the read path in
reader.py, byte formats in their own modules.

Threads: put/put_batch serialize on one put lock (RocketMQ's putMessageLock); gets, queries and
offset calls run concurrently with them; one housekeeping thread flushes and cleans; in sync
flush mode writers share fdatasyncs through GroupCommit after leaving the put lock.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from . import _native, filenames
from .checkpoint import StoreCheckpoint
from .commitlog import CommitLog
from .config import StoreConfig
from .consumequeue import ConsumeQueue
from .errors import DiskFullError, InvalidTopicError, StoreClosedError, StoreLockedError
from .flush import GroupCommit, Housekeeper, SyncFlusher, dirty_pages
from .index import IndexService
from .offsets import ConsumerOffsetManager
from .reader import StoreReader
from .record import check_topic, encode_host
from .recovery import recover
from .retention import Retention, disk_used_ratio
from .segment_queue import Preallocator
from .topics import TopicConfig, TopicConfigManager
from .warm import Warmer
from .writer import StoreWriter

if TYPE_CHECKING:
    import asyncio

    from .aio_commit import AsyncGroupCommit

log = logging.getLogger(__name__)

OFFSET_PERSIST_INTERVAL_S = 5.0  # flushConsumerOffsetInterval
DISK_CHECK_INTERVAL_S = 10.0


def open_store(path: str | os.PathLike, **config) -> MessageStore:
    """Open (creating or recovering) the store at path. Keyword arguments are StoreConfig
    fields. Use it as a context manager, or call close()."""
    return MessageStore(path, StoreConfig(**config))


class MessageStore(StoreReader, StoreWriter):
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
                                   self._store_host, config.batch_write_buffer_bytes,
                                   config.commitlog_advice, config.stage_single_bytes)
        self._log = self.commitlog.appender.ptr
        self._last = self.commitlog.appender.last
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
                                   lambda: disk_used_ratio(self.root), self._put_lock)
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
        if config.warms:
            appender = self.commitlog.appender
            self._warmer = Warmer(self.commitlog.files, config.warm_bytes,
                                  lambda: appender.mapped_bytes)
            self._warmer.start()
        self._sync_flusher = None
        self._aio_commit: AsyncGroupCommit | None = None
        if self._sync:
            self._sync_flusher = SyncFlusher(self._group_commit, lambda: self.commitlog.max_offset,
                                             config.group_commit_delay_us / 1e6)
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

    def async_group_commit(self, loop: asyncio.AbstractEventLoop) -> AsyncGroupCommit:
        """Sync flush led from ``loop`` (a server's): puts made on that loop wait for
        durability with ``future(offset)`` instead of a thread (see aio_commit). Replaces the
        background flusher of puts in flight; made once, closed with the store."""
        if self.config.flush != "sync":
            raise ValueError("an asyncio group commit needs flush='sync'")
        if self._aio_commit is None:
            from .aio_commit import AsyncGroupCommit  # asyncio only for those who use it

            if self._sync_flusher is not None:
                self._sync_flusher.stop()
                self._sync_flusher = None
            self._aio_commit = AsyncGroupCommit(
                loop, self.commitlog.files, self._group_commit, lambda: self._log.last_ts,
                self._synced_upto, self.config.sync_flush_timeout_ms / 1000,
                self.config.group_commit_delay_us)
        return self._aio_commit

    def _synced_upto(self, ts: int) -> None:
        self.checkpoint.physic_ts = max(self.checkpoint.physic_ts, ts)

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
        if self._aio_commit is not None:
            self._aio_commit.close()
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

    def __enter__(self) -> MessageStore:
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
