"""StoreFlush: when what a MessageStore holds becomes durable, owned by the store.

It makes the group commit sync puts wait on (one process's GroupCommit, or a shared store's
SharedGroupCommit), the background SyncFlusher for puts in flight, the asyncio group commit a
server leads instead, and the flushes the housekeeping runs: the commit log's timed flush
(RocketMQ's FlushRealTimeService), the consume queues', the index's and the topic journal's
(FlushConsumeQueueService), each recording in the checkpoint how far it is durable.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from .checkpoint import StoreCheckpoint
from .commitlog import CommitLog
from .config import StoreConfig
from .flush import GroupCommit, SyncFlusher, dirty_pages, flush_queue_files
from .index import IndexService
from .queue_table import ConsumeQueueTable
from .topics import TopicConfigManager

if TYPE_CHECKING:
    import asyncio
    import threading

    from .aio_commit import AsyncGroupCommit
    from .segment import MappedFile
    from .shared import Sharing


class StoreFlush:
    def __init__(self, config: StoreConfig, root: Path, commitlog: CommitLog,
                 queues: ConsumeQueueTable, index: IndexService | None,
                 topics: TopicConfigManager, checkpoint: StoreCheckpoint,
                 sharing: Sharing | None) -> None:
        """Made once recovery is done (sharing wired): the log's end is durable then."""
        self._config = config
        self._root = root
        self._topics = topics
        self._commitlog = commitlog
        self._log = commitlog.appender.ptr
        self._queues = queues
        self._index = index
        self._checkpoint = checkpoint
        self._sharing = sharing
        timeout_s = config.sync_flush_timeout_ms / 1000
        self.group_commit = GroupCommit(self.flush_commitlog_all, commitlog.max_offset,
                                        timeout_s) if sharing is None \
            else sharing.group_commit(self.flush_commitlog_all, timeout_s,
                                      config.group_commit_delay_us, self._last_log_file,
                                      self._log_synced)
        self._last_thorough = self._queues_thorough = time.monotonic()
        self._sync_flusher: SyncFlusher | None = None
        self._aio_commit: AsyncGroupCommit | None = None

    def start(self) -> None:
        """Sync flush: start the background flusher of puts in flight."""
        if self._config.flush == "sync":
            self._sync_flusher = SyncFlusher(self.group_commit,
                                             lambda: self._commitlog.max_offset,
                                             self._config.group_commit_delay_us / 1e6)
            self._sync_flusher.start()

    def _catch_up(self) -> None:
        """A shared store: map what the other processes appended."""
        if self._sharing is not None:
            self._sharing.view.catch_up_log()

    def _last_ts(self) -> int:
        """Store time of the last record appended (by any process of a shared store)."""
        return self._log.last_ts if self._sharing is None else self._sharing.last_ts

    def flush_commitlog_all(self) -> int:
        """fdatasync the commit log up to its end; the durable offset."""
        ts = self._last_ts()
        self._catch_up()
        durable = self._commitlog.flush(self._commitlog.max_offset)
        self._checkpoint.physic_ts = max(self._checkpoint.physic_ts, ts)
        return durable

    def _last_log_file(self) -> MappedFile | None:
        files = self._commitlog.files.files
        return files[-1] if files else None

    def _log_synced(self, seg: MappedFile, ts: int, upto: int) -> None:
        """A shared store's native group commit synced seg, making [0, upto) durable and the
        records stored up to ts."""
        seg.flushed = max(seg.flushed, min(seg.size, upto - seg.start))
        self._checkpoint.physic_ts = max(self._checkpoint.physic_ts, ts)

    def flush_commitlog_timed(self) -> None:
        """Async flush's periodic flush: when flush_least_pages are dirty, a segment is full,
        or flush_thorough_interval_ms went by."""
        self._catch_up()
        last = self._commitlog.files.last()
        if last is None or self._config.flush == "sync" or self.group_commit.failed_at is not None:
            return
        cfg = self._config
        thorough = time.monotonic() - self._last_thorough >= cfg.flush_thorough_interval_ms / 1000
        dirty = dirty_pages(last.wrote, last.flushed)
        if thorough or last.full or dirty >= cfg.flush_least_pages:
            # A failure stops the store as a sync flush's does: Linux marked the pages it could
            # not write clean, so a later sync would succeed over a hole that recovery then
            # ends the log at, dropping every record after it (sync_failure.py).
            try:
                self.flush_commitlog_all()
            except OSError as exc:
                self.group_commit.fail(exc, self._commitlog.files.durable())
                return
            if thorough:
                self._last_thorough = time.monotonic()

    def flush_queues_timed(self) -> None:
        """FlushConsumeQueueService's pass: queue files with consumequeue_flush_least_pages
        dirty pages or full (see flush.flush_queue_files), the thorough one once per
        consumequeue_flush_thorough_interval_ms."""
        cfg = self._config
        if time.monotonic() - self._queues_thorough >= \
                cfg.consumequeue_flush_thorough_interval_ms / 1000:
            self.flush_queues()
            return
        flush_queue_files(self._root, self._queues.loaded(), cfg.consumequeue_flush_least_pages)
        self._topics.sync()  # topic configs made since: as durable as a put is

    def flush_queues(self) -> None:
        """Flush every dirty consume queue, the index and the topic journal, then record in
        the checkpoint how far they are durable (FlushConsumeQueueService's thorough pass)."""
        self._queues_thorough = time.monotonic()
        ts = self._last_ts()
        if self._sharing is not None:  # every queue, caught up: a unit points below ts
            self._sharing.queues.open_all()
            for cq in self._queues.loaded():
                self._sharing.view.catch_up_queue(cq)
        self._queues.write_staged()
        flush_queue_files(self._root, self._queues.loaded(), 0)
        if self._index is not None:
            self._index.flush()
        self._topics.sync()
        self._checkpoint.logics_ts = max(self._checkpoint.logics_ts, ts)
        self._checkpoint.flush()

    def flush_all(self) -> None:
        """The commit log (in a shared store, what every process wrote), then the queues."""
        self.group_commit.wait(self._sharing.log_end if self._sharing is not None
                               else self._commitlog.max_offset)
        self.flush_queues()

    def async_group_commit(self, loop: asyncio.AbstractEventLoop,
                           put_lock: threading.Lock) -> AsyncGroupCommit:
        """See MessageStore.async_group_commit; ``put_lock``: the store's."""
        if self._config.flush != "sync":
            raise ValueError("an asyncio group commit needs flush='sync'")
        if self._sharing is not None:
            raise ValueError("an asyncio group commit serves one process; a shared store "
                             "syncs through its processes' group commit")
        if self._aio_commit is None:
            from .aio_commit import AsyncGroupCommit  # asyncio only for those who use it

            if self._sync_flusher is not None:
                self._sync_flusher.stop()
                self._sync_flusher = None
            self._aio_commit = AsyncGroupCommit(
                loop, self._commitlog.files, self.group_commit, lambda: self._log.last_ts,
                self._synced_upto, self._config.sync_flush_timeout_ms / 1000,
                self._config.group_commit_delay_us, self._commitlog.appender.stage_singles,
                put_lock)
        return self._aio_commit

    def _synced_upto(self, ts: int) -> None:
        self._checkpoint.physic_ts = max(self._checkpoint.physic_ts, ts)

    def stop(self) -> None:
        """Stop the background flusher and the asyncio group commit (closing)."""
        if self._sync_flusher is not None:
            self._sync_flusher.stop()
        if self._aio_commit is not None:
            self._aio_commit.close()
