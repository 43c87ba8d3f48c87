"""A replica's dispatch: its master's records, once appended, go to its consume queues and
index (a slave's ReputMessageService with CommitLogDispatcherBuildConsumeQueue and
CommitLogDispatcherBuildIndex), as the master's put wrote them:

- one unit per record, at the queue offset the record carries, tagged with the hash of its
  TAGS (0 without), or, for a delayed message waiting in SCHEDULE_TOPIC_XXXX, with its delivery
  time: store time plus its level's delay (CommitLog.checkMessageAndReturnSize);
- index entries for its UNIQ_KEY and each KEYS token (IndexService.buildIndex).

One native call dispatches a slice of records, with the GIL released (rmq_dispatch): so a
replica's dispatch thread runs beside its link's receiving, not in turns with it. A record that
needs Python (a queue's first unit, a full consume-queue file, a gap, an index file to roll)
stops that call before it; Python dispatches it (rmq_scan_dispatch, ConsumeQueue.put), then the
native call goes on. Only that slow path takes the store's put lock (it changes file lists that
retention changes too); the rest writes the active files, which only this dispatch writes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from . import _native
from .commitlog import CommitLog
from .consumequeue import ConsumeQueue
from .delay_ladder import SCHEDULE_TOPIC
from .errors import CorruptSegmentError
from .index import IndexService
from .queue_table import ConsumeQueueTable

log = logging.getLogger(__name__)

_F = _native.DISPATCH_FIELDS
SLICE = 4096  # records per native call: each takes the GIL back once


class ReplicaDispatcher:
    def __init__(self, commitlog: CommitLog, queues: ConsumeQueueTable,
                 index: IndexService | None, delays_ms: Sequence[int], dispatched: int,
                 put_lock: threading.Lock) -> None:
        """dispatched: the offset up to which records are in their queues already (recovery
        re-dispatched everything the log holds). put_lock: the store's, for the slow path."""
        self._commitlog = commitlog
        self._queues = queues
        self._index = index
        self._put_lock = put_lock
        self._delays_ms = tuple(delays_ms)
        self._topics: dict[bytes, str] = {}
        self._native = _native.Dispatcher(self._delays_ms, SCHEDULE_TOPIC.encode(),
                                          index is not None, SLICE)
        self._ids: list[tuple[str, int]] = []  # the native map's ids -> queue
        self._known: dict[tuple[str, int], ConsumeQueue] = {}
        self.dispatched = dispatched
        self.last_ts = 0  # store time of the last record dispatched
        # Controller mode: records past it are not dispatched (readers never see past the
        # confirm offset its master sends); None: everything appended.
        self.limit: int | None = None

    def _end(self) -> int:
        end = self._commitlog.files.max_offset
        return end if self.limit is None else min(end, self.limit)

    def pending(self) -> bool:
        return self.dispatched < self._end()

    def dispatch(self, max_records: int) -> set[tuple[str, int]]:
        """Dispatch up to about max_records of the records appended and not yet dispatched;
        returns the (topic, queue id) of every queue that grew."""
        files = self._commitlog.files
        end = self._end()
        pos = max(self.dispatched, files.min_offset)
        touched: set[tuple[str, int]] = set()
        left = max_records
        self._sync_native()
        while pos < end and left > 0:
            seg = files.find(pos)
            if seg is None:
                break
            seg_end = min(seg.wrote, end - seg.start)
            n, nxt, status = self._native.run(seg.region, pos - seg.start, seg_end)
            if n:
                self._took(touched)
            if status == _native.DISPATCH_SLOW:
                one, nxt, status = self._slow_one(seg, nxt, seg_end, touched)
                n += one
                self._sync_native()
            left -= n
            pos = seg.start + (seg.size if status == _native.DISPATCH_BLANK else nxt)
            if status == _native.DISPATCH_INVALID:
                self.dispatched = pos
                raise CorruptSegmentError(f"replica dispatch: no record at offset {pos}")
            if n == 0:
                break
        self.dispatched = pos
        return touched

    def _took(self, touched: set[tuple[str, int]]) -> None:
        """What a native call did: the queues it grew, the index it wrote."""
        ids = self._ids
        grew, keys, self.last_ts = self._native.done()
        touched.update(ids[i] for i in grew)
        if keys and self._index is not None:
            self._index.dirty = True

    def _slow_one(self, seg, pos: int, end: int,
                  touched: set[tuple[str, int]]) -> tuple[int, int, int]:
        """Dispatch the record at seg[pos] in Python, as run() reports."""
        out, n, nxt, status = _native.scan_dispatch(seg.region, pos, end, 1)
        if n:
            with self._put_lock:
                self._units(seg.view, out, n, touched)
        return n, nxt, status

    def _sync_native(self) -> None:
        """The native side sees every queue and the last index file."""
        for key, cq in self._queues.by_key.items():
            if key not in self._known:
                self._known[key] = cq
                self._ids.append(key)
                self._native.add_queue(cq.writer)
        index = self._index
        if index is not None:
            last = index.files[-1] if index.files else None
            self._native.index_file(last.seg.region if last is not None else None,
                                    index.slots, index.entries)

    def _units(self, view: memoryview, out, n: int, touched: set[tuple[str, int]]) -> None:
        topics = self._topics
        queues = self._queues
        index = self._index
        add_unit = _native.add_unit
        for b in range(0, n * _F, _F):
            phys, size, qid, qoff, ts, tp, tl, code, up, ul, kp, kl, level = out[b:b + _F]
            raw = bytes(view[tp:tp + tl])
            topic = topics.get(raw)
            if topic is None:
                topic = topics[raw] = raw.decode("utf-8", "replace")
            cq = queues.by_key.get((topic, qid)) or queues.for_write(topic, qid)
            if level and topic == SCHEDULE_TOPIC:
                code = ts + self._delays_ms[min(level, len(self._delays_ms)) - 1]
            if add_unit(cq.wptr, qoff, phys, size, code):
                self._slow_unit(cq, qoff, phys, size, code)
            touched.add((topic, qid))
            if index is not None and (up >= 0 or kp >= 0):
                keys = [bytes(view[up:up + ul]).decode("utf-8", "replace")] if up >= 0 else []
                if kp >= 0:
                    text = bytes(view[kp:kp + kl]).decode("utf-8", "replace")
                    keys.extend(k for k in text.split(" ") if k)
                index.put_keys(topic, keys, phys, ts)
        if n:
            self.last_ts = out[(n - 1) * _F + 4]

    @staticmethod
    def _slow_unit(cq: ConsumeQueue, qoff: int, phys: int, size: int, code: int) -> None:
        """A full active file is rolled; a queue's first unit, a gap, or a unit it holds
        already (after a restart) take ConsumeQueue.put, which pre-fills or skips."""
        if cq.files.files and cq.max_offset == qoff:
            cq.roll()
            if not _native.add_unit(cq.wptr, qoff, phys, size, code):
                return
        cq.put(qoff, phys, size, code)
