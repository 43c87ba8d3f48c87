"""Bringing a store back to a consistent state at open (DefaultMessageStore.load/recover).

1. Every ConsumeQueue is recovered on its own (torn units dropped).
2. The CommitLog is scanned, with CRC when configured: after a clean close from its third-last
   segment, after a crash (the `abort` file is there) from the newest segment whose first message
   is older than the checkpoint's safe time. A corrupt record with records the consume queues
   know of after it is skipped and reported (commitlog.py's policy); the log is cut after the
   last valid record.
3. ConsumeQueue units pointing past the cut are dropped.
4. Re-dispatch: records not yet in their ConsumeQueue or in the index are added again (both
   writes are idempotent). After a crash this starts at the segment chosen in 2; otherwise where
   the most advanced ConsumeQueue stops (RocketMQ's reputFromOffset), which also rebuilds
   deleted consume-queue or index files for the newest records.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from .checkpoint import StoreCheckpoint
from .commitlog import CommitLog
from .consumequeue import ConsumeQueue
from .index import IndexService, index_keys
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


def recover(commitlog: CommitLog, cqs: dict[tuple[str, int], ConsumeQueue],
            index: IndexService | None, checkpoint: StoreCheckpoint, abnormal: bool,
            check_crc: bool, queue_for: Callable[[str, int], ConsumeQueue],
            tags_code: Callable[[str], int],
            deleted: Mapping[str, int] | None = None) -> RecoveryReport:
    """Run steps 1-4. queue_for(topic, qid) gets or creates a ConsumeQueue; tags_code(tag)
    hashes a tag; deleted maps a deleted topic to the log offset before which its records are
    gone."""
    for cq in cqs.values():
        cq.recover()
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
    end, skipped = scan(commitlog, cqs.values(), start_index, check_crc)
    commitlog.skipped = skipped
    commitlog.truncate(end)
    for cq in cqs.values():
        if cq.max_phys > end or abnormal:
            cq.truncate_dirty(end)
    if not commitlog.files.files:
        return RecoveryReport(0)
    reput_from = max([cq.max_phys for cq in cqs.values()] + [commitlog.min_offset])
    if abnormal:
        remaining = commitlog.files.files
        reput_from = min(reput_from, remaining[min(start_index, len(remaining) - 1)].start)
    n = redispatch(commitlog, reput_from, end, index, queue_for, tags_code, deleted or {})
    if n:
        log.info("re-dispatched %d records from offset %d to %d", n, reput_from, end)
    for cq in cqs.values():
        cq.correct_min_offset(commitlog.min_offset)
    return RecoveryReport(end, tuple(skipped))


def scan(commitlog: CommitLog, cqs: Iterable[ConsumeQueue], start_index: int,
         check_crc: bool) -> tuple[int, list[tuple[int, int]]]:
    """The commit log's end and the corrupt ranges it holds from segment start_index on; reads
    only (`rmqstore inspect` runs it over every segment)."""
    if not commitlog.files.files:
        return 0, []
    queues = list(cqs)
    known_end = max((cq.max_phys for cq in queues), default=0)
    end, skipped = commitlog.scan_from(start_index, check_crc, known_end,
                                       lambda offset: any(cq.spans(offset) for cq in queues))
    for offset, length in skipped:
        log.error("commit log: %d corrupt bytes at offset %d skipped; the records after them "
                  "are kept", length, offset)
    return end, skipped


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

