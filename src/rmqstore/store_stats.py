"""What an open store can report about itself, read in one call (the inputs of RocketMQ 5's
store metrics, DefaultStoreMetricsManager: storage size, flush and dispatch behind bytes,
message reserve time; and the disk alarm's ratio) and whether it takes writes."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .retention import disk_used_ratio

if TYPE_CHECKING:
    from .store import MessageStore


@dataclass(frozen=True, slots=True)
class StoreStats:
    commitlog_min_offset: int
    commitlog_max_offset: int
    flush_behind_bytes: int  # written to the commit log, not yet fdatasync'ed
    # Always 0: consume queues and the index are written with each put (no reput service).
    dispatch_behind_bytes: int
    disk_used_bytes: int  # of the store's filesystem (total - free), as RocketMQ reports it
    disk_total_bytes: int
    disk_used_ratio: float  # what retention and the disk alarm compare with their thresholds
    earliest_store_time_ms: int  # 0 when the store holds no message
    reserve_time_ms: int  # now - earliest_store_time_ms; 0 when empty
    topics: int
    disk_alarm_level: int  # disk_alarm.py's level at the last periodic check
    sync_failed_at: int | None  # durable offset at a failed commit-log sync (sync_failure.py)
    disk_full: bool  # writes refused above disk_full_ratio

    @property
    def writes_stopped(self) -> tuple[str, ...]:
        """Why puts are refused now, each of WRITES_STOPPED_REASONS that holds; () if none."""
        held = (self.sync_failed_at is not None, self.disk_full)
        return tuple(r for r, h in zip(WRITES_STOPPED_REASONS, held, strict=True) if h)


# Why a store refuses writes (the reason label of rmqstore_store_writes_stopped)
WRITES_STOPPED_REASONS = ("sync_failed", "disk_full")


def read_store_stats(store: MessageStore) -> StoreStats:
    log = store.commitlog
    usage = shutil.disk_usage(store.root)
    earliest = store.earliest_store_time() or 0
    now_ms = int(time.time() * 1000)
    max_offset = log.max_offset
    return StoreStats(
        commitlog_min_offset=log.min_offset, commitlog_max_offset=max_offset,
        flush_behind_bytes=max(0, max_offset - log.files.durable()),
        dispatch_behind_bytes=0,
        disk_used_bytes=usage.total - usage.free, disk_total_bytes=usage.total,
        disk_used_ratio=disk_used_ratio(store.root),
        earliest_store_time_ms=earliest,
        reserve_time_ms=max(0, now_ms - earliest) if earliest else 0,
        topics=len(store.topics.topics),
        disk_alarm_level=store.disk_alarm.level,
        sync_failed_at=store.sync_failed_at, disk_full=store.disk_full)
