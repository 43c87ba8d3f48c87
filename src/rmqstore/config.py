"""Store configuration: one frozen dataclass, validated once at open.

Defaults are RocketMQ 4.x's (MessageStoreConfig) unless a comment says otherwise.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from dataclasses import dataclass

from . import mapping_clock
from .delay_ladder import DEFAULT_DELAY_LEVELS, parse_delay_levels

GiB = 1 << 30
MiB = 1 << 20
# Single records from this size on are written with pwrite where no warmer runs (measured)
STAGE_SINGLE_MIN = 8 << 10


@dataclass(frozen=True)
class StoreConfig:
    commitlog_segment_bytes: int = GiB  # mappedFileSizeCommitLog
    consumequeue_units: int = 300_000  # mappedFileSizeConsumeQueue / 20
    # Consume-queue files mapped at once; the least recently used are unmapped past it and
    # mapped again when used (RocketMQ maps them all). None: half of vm.max_map_count.
    consumequeue_mapped_files: int | None = None
    index_slots: int = 5_000_000  # maxHashSlotNum
    index_entries: int = 20_000_000  # maxIndexNum
    index_enable: bool = True  # messageIndexEnable

    flush: str = "async"  # "async" (FlushRealTimeService) or "sync" (GroupCommitService)
    flush_interval_ms: int = 500  # flushIntervalCommitLog
    flush_least_pages: int = 4  # flushCommitLogLeastPages
    flush_thorough_interval_ms: int = 10_000  # flushCommitLogThoroughInterval
    sync_flush_timeout_ms: int = 5_000  # syncFlushTimeout
    consumequeue_flush_interval_ms: int = 1_000  # flushIntervalConsumeQueue
    consumequeue_flush_least_pages: int = 2  # flushConsumeQueueLeastPages
    consumequeue_flush_thorough_interval_ms: int = 60_000  # flushConsumeQueueThoroughInterval

    retention_hours: float = 72.0  # fileReservedTime
    # The disk alarm's levels (DefaultMessageStore.CleanCommitLogService.isSpaceToDelete):
    disk_max_used_ratio: float = 0.75  # diskMaxUsedSpaceRatio (75 %): reclaim space (logged)
    # diskSpaceCleanForciblyRatio: above it retention deletes segments that have not expired
    disk_clean_forcibly_ratio: float = 0.85
    disk_full_ratio: float = 0.90  # diskSpaceWarningLevelRatio: refuse writes above it
    clean_interval_ms: int = 10_000  # cleanResourceInterval

    max_message_size: int = 4 * MiB  # maxMessageSize (body limit, as RocketMQ >= 4.9.4)
    check_crc_on_recover: bool = True  # checkCRCOnRecover
    check_crc_on_read: bool = True  # beyond RocketMQ: a corrupt record is skipped, never served
    # Body compression at or above compress_over_bytes: None (stored as given, as RocketMQ's
    # broker does; compressing is its clients' job), "zlib" (what RocketMQ 4.x clients read)
    # or "lz4" (faster; RocketMQ 5's compression-type bits).
    compression: str | None = None
    compress_over_bytes: int = 4096  # compressMsgBodyOverHowmuch (a client setting in RocketMQ)
    zlib_level: int = 5  # RocketMQ client's compressLevel

    default_queue_nums: int = 1  # queues of an auto-created topic (embedded default: one FIFO)
    # Fault in pages ahead of the writer (warmMapedFileEnable, as a sliding window): 0 turns it
    # off. Default: 16 MiB with async flush; off with sync flush, where every pre-faulted page
    # is written twice (zeros at the next fdatasync, then data) and measured slower.
    warm_window_bytes: int | None = None
    # madvise hint of the commit-log segment being written: "normal" (the kernel's default),
    # "hugepage" (large page-cache folios: one fault maps up to 2 MiB), "sequential" or
    # "random". "hugepage" suits a busy async-flush store (single puts of 4 KiB: median
    # 2.2x), never sync flush (each fdatasync writes a whole 2 MiB folio: sync puts 3x
    # slower), and costs a store at a trickle the same: 200 puts/s of 100 B wrote 4.2 MB/s
    # instead of 0.06 MB/s, since every flush rewrites the folio being filled.
    commitlog_advice: str = "normal"
    # Batches are encoded into a buffer this size and written with pwrite, a buffer-full at a
    # time, instead of through the mapping: no page fault, and no zeroing, per fresh page
    # (measured 2.6 GB/s against 0.5-1.8 GB/s sustained); so are large single records where
    # no warmer runs (stage_single_bytes). A record larger than the buffer goes through the
    # mapping. 0 writes everything through the mapping.
    batch_write_buffer_bytes: int = 8 << 20
    # Sync flush led from an event loop (a server: aio_commit): while producers are concurrent,
    # a sync first waits up to this long for as many sends as the last sync answered
    # (PostgreSQL's commit_delay, ended early as by commit_siblings). 0: never. Measured with
    # four producers (server_bench --store): 200 us gave the most sync sends/s (50 and 500
    # less, 0 least), with less CPU per send. Embedded: blocking puts never wait; puts in
    # flight (put_async) are synced once they pause for this long (see flush.SyncFlusher).
    group_commit_delay_us: int = 200
    store_host: tuple[str, int] = ("127.0.0.1", 10911)  # STOREHOSTADDRESS and message ids
    # storePathCommitLog: the commit log's directory, when not <root>/commitlog
    commitlog_path: str | os.PathLike[str] | None = None
    background: bool = True  # run flusher, retention and pre-allocation threads
    # Opened as a replica (a slave of RocketMQ's HA): its commit log is its master's copy,
    # grown only through MessageStore.replica (rmqstore.ha feeds it); puts raise
    # ReplicaStoreError.
    replica: bool = False
    # messageDelayLevel: what the consume-queue units of delayed messages are stamped with
    # (store time + the level's delay); a ScheduleService with its own ladder sets that one.
    delay_levels: str = DEFAULT_DELAY_LEVELS
    # Beyond RocketMQ: several processes of one machine open the store at once (shared/): each
    # append takes a cross-process lock, readers in any process see it at once. Every process
    # must say shared=True; the sizes are the first opener's (its control file's slots for
    # consume queues and consumer offsets, fixed while any process has the store open).
    shared: bool = False
    shared_queues: int = 1024
    shared_offsets: int = 1024

    def __post_init__(self) -> None:
        if self.flush not in ("async", "sync"):
            raise ValueError("flush must be 'async' or 'sync'")
        if self.commitlog_segment_bytes < 4096:
            raise ValueError("commitlog_segment_bytes must be at least 4096")
        if self.consumequeue_units < 1 or self.index_slots < 1 or self.index_entries < 2:
            raise ValueError("consume-queue and index sizes must be positive")
        if self.compression not in (None, "zlib", "lz4"):
            raise ValueError("compression must be None, 'zlib' or 'lz4'")
        if not 0.1 <= self.disk_max_used_ratio <= 0.95:
            raise ValueError("disk_max_used_ratio must be within [0.1, 0.95]")
        if not 0 < self.disk_clean_forcibly_ratio <= 1 or not 0 < self.disk_full_ratio <= 1:
            raise ValueError("disk_clean_forcibly_ratio and disk_full_ratio must be within "
                             "(0, 1]")
        if self.batch_write_buffer_bytes < 0:
            raise ValueError("batch_write_buffer_bytes must be 0 or more")
        if not 0 <= self.group_commit_delay_us <= 100_000:
            raise ValueError("group_commit_delay_us must be within [0, 100000]")
        if self.commitlog_advice not in ("normal", "hugepage", "sequential", "random"):
            raise ValueError("commitlog_advice must be 'normal', 'hugepage', 'sequential' or "
                             "'random'")
        if self.max_message_size < 1:
            raise ValueError("max_message_size must be positive")
        if self.consumequeue_flush_least_pages < 0 or \
                self.consumequeue_flush_thorough_interval_ms < 0:
            raise ValueError("consumequeue_flush_least_pages and "
                             "consumequeue_flush_thorough_interval_ms must be 0 or more")
        if self.consumequeue_mapped_files is not None and self.consumequeue_mapped_files < 1:
            raise ValueError("consumequeue_mapped_files must be positive (or None: half of "
                             "vm.max_map_count)")
        socket.inet_aton(self.store_host[0])  # IPv4 only for the store host
        parse_delay_levels(self.delay_levels)  # ValueError naming a bad entry
        if not (1 <= self.shared_queues <= 1 << 20 and 1 <= self.shared_offsets <= 1 << 20):
            raise ValueError("shared_queues and shared_offsets must be within [1, 1048576]")
        if self.shared and self.warm_window_bytes:
            raise ValueError("warm_window_bytes is not supported with shared=True: the warmer "
                             "follows one process's appends")
        if self.shared and self.replica:
            raise ValueError("a replica cannot be shared=True: its one HA link appends to it")

    @property
    def commitlog_map_advice(self) -> str:
        """The advice segments are mapped with: commitlog_advice, but for a replica left at
        "normal", "replica" (segment.py): its appends go through pwrite and its dispatch reads
        the newest records through the mapping, where readahead would allocate and zero the
        pages just ahead of the writer, which pwrite then fills again (measured: a quarter of
        a catch-up's CPU)."""
        if self.replica and self.commitlog_advice == "normal":
            return "replica"
        return self.commitlog_advice

    @property
    def warm_bytes(self) -> int:
        if self.warm_window_bytes is not None:
            return self.warm_window_bytes
        # a replica appends with pwrite, which faults nothing: warming would only dirty pages
        # (measured on a catch-up: appends through the mapping cost its receive thread 2.4x
        # the CPU, in faults; with a 16 MiB warmer ahead, the warmer spends what it saves)
        return 0 if self.flush == "sync" or self.shared or self.replica else (16 << 20)

    @property
    def mapped_files_budget(self) -> int:
        """How many consume-queue files may stay mapped (consumequeue_mapped_files)."""
        if self.consumequeue_mapped_files is not None:
            return self.consumequeue_mapped_files
        return mapping_clock.default_budget()

    @property
    def warms(self) -> bool:
        """Whether a Warmer faults pages in ahead of the commit-log writer."""
        return self.background and self.warm_bytes > 0

    @property
    def stage_single_bytes(self) -> int:
        """Single records this long or longer go to disk with pwrite, like batches, instead of
        through the mapping (0: none). Only without a warmer: its pre-faulted pages make the
        mapping as fast or faster. Measured against the mapping, sync puts: 1.1x at 8 KiB, 1.4x
        at 16 KiB, 1.7x at 64 KiB, 2.2x at 1 MiB; async puts beside the warmer: up to 25%
        slower at 8-16 KiB, the same from 64 KiB."""
        if self.warms:
            return 0
        return STAGE_SINGLE_MIN if self.batch_write_buffer_bytes else 0

    @staticmethod
    def sizes_on_disk(root, commitlog_path: str | os.PathLike[str] | None = None) -> dict:
        """The file sizes an existing store was written with (to open a store made with other
        settings, RocketMQ's or ours): commit-log segment and consume-queue file sizes from
        their files, index slots and entries from an index file's size assuming RocketMQ's
        4 entries per slot. Empty for a new store."""
        from pathlib import Path

        from .filenames import commitlog_dir, consumequeue_root, index_dir, is_index_name
        root = Path(root)
        found: dict = {}
        for seg in sorted(commitlog_dir(root, commitlog_path).glob("[0-9]" * 20))[:1]:
            found["commitlog_segment_bytes"] = seg.stat().st_size
        for cq in sorted(consumequeue_root(root).glob("*/*/" + "[0-9]" * 20))[:1]:
            found["consumequeue_units"] = cq.stat().st_size // 20
        index = index_dir(root)
        for f in sorted(index.iterdir()) if index.is_dir() else []:
            if is_index_name(f.name):
                slots = (f.stat().st_size - 40) // 84
                found.update(index_slots=slots, index_entries=4 * slots)
                break
        return found

    def replace(self, **changes) -> StoreConfig:
        return dataclasses.replace(self, **changes)
