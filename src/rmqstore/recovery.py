"""Bringing a store back to a consistent state at open (DefaultMessageStore.load/recover).

1. The CommitLog is scanned, with CRC when configured: after a clean close from its third-last
   segment, after a crash (the `abort` file is there) from the newest segment whose first message
   is older than the checkpoint's safe time. A corrupt record with records the consume queues
   know of after it is skipped and reported (commitlog.py's policy); the log is cut after the
   last valid record.
2. ConsumeQueue units pointing past the cut are dropped.
3. Re-dispatch: records not yet in their ConsumeQueue or in the index are added again (both
   writes are idempotent). After a crash this starts at the segment chosen in 1; otherwise where
   the most advanced ConsumeQueue stops (RocketMQ's reputFromOffset), which also rebuilds
   deleted consume-queue or index files for the newest records.

Unlike RocketMQ, which recovers every queue first, a queue is recovered when it is first used
(queue_table.py), checked then against the end found in 1: opening costs what was written since
the checkpoint, not what the idle queues hold. The queues are all consulted only where they
must be: when the scan stops at bytes that are not unwritten space, or at unwritten space
before records the checkpoint says the queues know of (a page lost in the middle of the log),
and after a clean close when the queue of the last record does not hold it (for the reput
offset).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .checkpoint import StoreCheckpoint
from .commitlog import CommitLog
from .consumequeue import ConsumeQueue
from .index import IndexService, index_keys
from .queue_table import ConsumeQueueTable
from .record import (
    PROP_TAGS,
    SYSFLAG_TX_MASK,
    SYSFLAG_TX_PREPARED,
    SYSFLAG_TX_ROLLBACK,
    decode_properties,
)
from .record import RecordField as F

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecoveryReport:
    """What recovery found: where the log ends, and the corrupt ranges it skipped (offset,
    length), the records before and after each kept."""

    end: int
    skipped: tuple[tuple[int, int], ...] = ()

    @property
    def skipped_bytes(self) -> int:
        return sum(n for _, n in self.skipped)


def recover(commitlog: CommitLog, queues: ConsumeQueueTable, index: IndexService | None,
            checkpoint: StoreCheckpoint, abnormal: bool, check_crc: bool,
            tags_code: Callable[[str], int],
            deleted: Mapping[str, int] | None = None,
            cut_at: int | None = None) -> RecoveryReport:
    """Run steps 1-3. tags_code(tag) hashes a tag; deleted maps a deleted topic to the log
    offset before which its records are gone; cut_at, where a failed sync left the log
    durable (sync_failure.py; recovered as after a crash): the log ends there at most."""
    deleted = deleted or {}
    files = commitlog.files.files
    if abnormal:
        # RocketMQ's default messageIndexSafe=false: the index's own timestamp is not waited
        # for; its entries are flushed with the consume queues and re-added idempotently.
        safe_ts = checkpoint.min_timestamp()
        start_index = commitlog.first_segment_before(safe_ts)
        log.warning("store was not closed cleanly; recovering from segment %d of %d",
                    start_index, len(files))
    else:
        start_index = max(0, len(files) - 3)
    end, skipped, last = scan(commitlog, queues, start_index, check_crc, checkpoint.logics_ts)
    forget = cut_at is not None and cut_at < end
    if forget:
        log.warning("a sync failed at offset %d before the store was closed: the %d bytes "
                    "after it, never acknowledged as durable, are cut", cut_at, end - cut_at)
        end = cut_at
        skipped = [(at, n) for at, n in skipped if at + n <= end]
    commitlog.skipped = skipped
    commitlog.truncate(end, forget)
    queues.start(end, lambda: commitlog.min_offset)
    if not commitlog.files.files:
        return RecoveryReport(0)
    if abnormal:
        # Units of the records before the checkpoint's segment are durable
        # (CommitLog.recoverAbnormally re-dispatches from that segment on).
        remaining = commitlog.files.files
        reput_from = remaining[min(start_index, len(remaining) - 1)].start
    else:
        reput_from = _dispatched_upto(commitlog, queues, last, end, deleted)
    n = redispatch(commitlog, reput_from, end, index, queues.for_write, tags_code, deleted)
    if n:
        log.info("re-dispatched %d records from offset %d to %d", n, reput_from, end)
    for cq in queues.loaded():
        cq.correct_min_offset(commitlog.min_offset)
    return RecoveryReport(end, tuple(skipped))


def scan(commitlog: CommitLog, queues: ConsumeQueueTable, start_index: int, check_crc: bool,
         logics_ts: int | None = None) -> tuple[int, list[tuple[int, int]], int]:
    """The commit log's end, the corrupt ranges it holds from segment start_index on, and the
    offset of its last valid record (-1: none); reads only. Where the scan stops at unwritten
    space after a record stored at or after logics_ts (the checkpoint's: every unit of an
    older record is durable), no queue knows of anything past it and none is loaded; anywhere
    else every queue is (`rmqstore inspect` passes no logics_ts)."""
    if not commitlog.files.files:
        return 0, [], -1
    everything: list[ConsumeQueue] = []

    def all_queues() -> list[ConsumeQueue]:
        if not everything:
            everything.extend(queues.load_all())
        return everything

    def known_end(stop: int, last: int) -> int:
        if logics_ts is not None and commitlog.unwritten_at(stop) and \
                _stored_since(commitlog, last, logics_ts):
            return 0
        return max((cq.max_phys for cq in all_queues()), default=0)

    end, skipped, last = commitlog.scan_from(
        start_index, check_crc, known_end, lambda offset: any(cq.spans(offset)
                                                             for cq in all_queues()))
    for offset, length in skipped:
        log.error("commit log: %d corrupt bytes at offset %d skipped; the records after them "
                  "are kept", length, offset)
    return end, skipped, last


def _stored_since(commitlog: CommitLog, offset: int, ts: int) -> bool:
    """Whether the record at offset (-1: none) was stored at or after ts."""
    found = commitlog.parse_at(offset) if offset >= 0 else None
    return found is None or found[1][F.STORE_TIMESTAMP] >= ts


def _dispatched_upto(commitlog: CommitLog, queues: ConsumeQueueTable, last: int, end: int,
                     deleted: Mapping[str, int]) -> int:
    """Where re-dispatch starts after a clean close: the log's end when the queue of its last
    record holds that record (a unit is written with its record, in order) or its topic was
    deleted after it, else where the most advanced queue stops, every queue loaded
    (RocketMQ's reputFromOffset)."""
    found = commitlog.parse_at(last) if last >= 0 else None
    if found is not None:
        seg, f = found
        if f[F.SYSFLAG] & SYSFLAG_TX_MASK not in (SYSFLAG_TX_PREPARED, SYSFLAG_TX_ROLLBACK):
            tp = f[F.TOPIC_POS]
            topic = bytes(seg.view[tp:tp + f[F.TOPIC_LEN]]).decode("utf-8", "replace")
            if last < deleted.get(topic, -1):
                return end
            cq = queues.get(topic, f[F.QUEUE_ID])
            if cq is not None and cq.max_phys >= last + f[F.SIZE]:
                return end
    return max([cq.max_phys for cq in queues.load_all()] + [commitlog.min_offset])


def redispatch(commitlog: CommitLog, start: int, end: int, index: IndexService | None,
               queue_for: Callable[[str, int], ConsumeQueue],
               tags_code: Callable[[str], int], deleted: Mapping[str, int]) -> int:
    """Feed records in [start, end) to their ConsumeQueue and the index (CommitLogDispatcher-
    BuildConsumeQueue / BuildIndex); returns how many were new to a queue. Records both
    already hold, and records of a topic deleted after them, are skipped before their
    properties are decoded."""
    added = 0
    topics: dict[bytes, str] = {}
    index_end = index.end_phys if index is not None else 0
    for seg, f in commitlog.records(start, end):
        view = seg.view
        tp = f[F.TOPIC_POS]
        raw_topic = bytes(view[tp:tp + f[F.TOPIC_LEN]])
        topic = topics.get(raw_topic) or topics.setdefault(raw_topic, raw_topic.decode())
        tx = f[F.SYSFLAG] & SYSFLAG_TX_MASK
        phys, size, pl = f[F.PHYSICAL_OFFSET], f[F.SIZE], f[F.PROPS_LEN]
        if phys < deleted.get(topic, -1):
            continue
        cq = None
        if tx not in (SYSFLAG_TX_PREPARED, SYSFLAG_TX_ROLLBACK):
            cq = queue_for(topic, f[F.QUEUE_ID])
            if phys + size <= cq.max_phys:
                cq = None  # already in its queue
        to_index = index is not None and tx != SYSFLAG_TX_ROLLBACK and pl and phys >= index_end
        if cq is None and not to_index:
            continue
        pp = f[F.PROPS_POS]
        props = decode_properties(view[pp:pp + pl]) if pl else {}
        if cq is not None:
            tag = props.get(PROP_TAGS)
            if cq.put(f[F.QUEUE_OFFSET], phys, size, tags_code(tag) if tag else 0):
                added += 1
        if to_index:
            index.put_keys(topic, index_keys(props), phys, f[F.STORE_TIMESTAMP])
    return added

