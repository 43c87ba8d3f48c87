"""Retention (CleanCommitLogService + CleanConsumeQueueService).

CommitLog segments, oldest first and never the active last one, are deleted when their file is
older than retention_hours, or, while the disk is fuller than disk_clean_forcibly_ratio
(RocketMQ's cleanImmediately, DefaultMessageStore.CleanCommitLogService), regardless of age;
at most 10 per run (DELETE_FILES_BATCH_MAX). Then ConsumeQueue files whose last unit points
below the new minimum offset and index files that end below it go too, and queue minimums move.

A deleted segment is unlinked at once but unmapped only after a grace period, so a reader that
found it a moment before never touches unmapped memory (RocketMQ's hold/release reference count
does the same job).
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .commitlog import CommitLog
from .consumequeue import ConsumeQueue
from .index import IndexService
from .segment import MappedFile

log = logging.getLogger(__name__)

DELETE_FILES_BATCH_MAX = 10
UNMAP_GRACE_S = 30.0


def disk_used_ratio(path: Path) -> float:
    usage = shutil.disk_usage(path)
    return usage.used / usage.total if usage.total else 0.0


class Retention:
    def __init__(self, commitlog: CommitLog, cqs: Callable[[], list[ConsumeQueue]],
                 index: IndexService | None, retention_hours: float, forced_ratio: float,
                 used_ratio: Callable[[], float], writer_lock: threading.Lock) -> None:
        """writer_lock: the store's put lock. The writer replaces the same file lists when it
        rolls a segment or a consume-queue file, so list changes here happen under it."""
        self.commitlog = commitlog
        self.writer_lock = writer_lock
        self.cqs = cqs
        self.index = index
        self.retention_s = retention_hours * 3600
        self.forced_ratio = forced_ratio
        self.used_ratio = used_ratio
        self._retired: list[tuple[float, MappedFile]] = []
        self.on_deleted: Callable[[], None] = lambda: None  # a shared store tells the others

    def clean_once(self, now: float | None = None) -> int:
        """One retention pass; returns the number of CommitLog segments deleted."""
        now = time.time() if now is None else now
        self._unmap_retired()
        forced = self.used_ratio() > self.forced_ratio
        files = self.commitlog.files
        deleted = 0
        while deleted < DELETE_FILES_BATCH_MAX and len(files.files) > 1:
            first = files.files[0]
            if not forced and first.mtime() + self.retention_s > now:
                break
            with self.writer_lock:
                files.files = files.files[1:]  # copy-on-write: readers keep the list they hold
            self.retire(first)
            deleted += 1
            log.info("retention deleted commit-log segment %s (%s)", first.path.name,
                     "disk full" if forced else "expired")
            if forced and self.used_ratio() <= self.forced_ratio:
                forced = False
        if deleted:
            self._clean_queues(self.commitlog.min_offset)
            self.on_deleted()
        return deleted

    def retire(self, seg: MappedFile) -> None:
        """Unlink now, unmap after the grace period."""
        seg.path.unlink(missing_ok=True)
        self._retired.append((time.monotonic() + UNMAP_GRACE_S, seg))

    def _clean_queues(self, min_phys: int) -> None:
        for cq in self.cqs():
            with self.writer_lock:
                cq.delete_expired(min_phys, self.retire)
        if self.index is not None:
            self.index.delete_expired(min_phys, self.retire)

    def _unmap_retired(self, force: bool = False) -> None:
        now = time.monotonic()
        keep = []
        for due, seg in self._retired:
            if force or due <= now:
                seg.close()
            else:
                keep.append((due, seg))
        self._retired = keep

    def close(self) -> None:
        self._unmap_retired(force=True)
