"""The read side of MessageStore: consume-queue reads, lookups by offset, id, key and time.

Readers take no lock: they read the copy-on-write maps and file lists, and only bytes below a
segment's `wrote` position, which the single writer advances after the bytes are in place.
"""

from __future__ import annotations

import array
import time

from . import _native
from .message import GetResult, GetStatus, Message
from .record import RecordField as F, parse_msg_id

MAX_QUERY_RESULTS = 64  # maxMsgsNumBatch


class StoreReader:
    """Mixed into MessageStore; expects self.commitlog, self._cqs and self.index."""

    def get(self, topic: str, queue_id: int, offset: int, max_count: int = 32, *,
            tags: str | list[str] | None = None) -> GetResult:
        """Up to max_count messages of (topic, queue_id) from queue offset on, RocketMQ's
        getMessage: a tag filter ("A || B", a list, or "*") matches by hash code in the
        consume queue, then on the real tag."""
        cq = self._cqs.get((topic, queue_id))
        if cq is None:
            return GetResult(GetStatus.NO_MATCHED_LOGIC_QUEUE, [], 0, 0, 0)
        lo, hi = cq.min_offset, cq.max_offset
        if hi == 0:
            return GetResult(GetStatus.NO_MESSAGE_IN_QUEUE, [], 0, lo, hi)
        if offset < lo:
            return GetResult(GetStatus.OFFSET_TOO_SMALL, [], lo, lo, hi)
        if offset == hi:
            return GetResult(GetStatus.OFFSET_OVERFLOW_ONE, [], offset, lo, hi)
        if offset > hi:
            return GetResult(GetStatus.OFFSET_OVERFLOW_BADLY, [], lo if lo == 0 else hi, lo, hi)
        wanted = _tag_set(tags)
        codes = tuple(_native.java_hash(t) for t in wanted) if wanted else None
        messages: list[Message] = []
        cur = offset
        removed = False
        while len(messages) < max_count and cur < hi:
            _, phys, _, scanned = cq.read(cur, max_count - len(messages), codes)
            if scanned == 0:
                break
            cur += scanned
            found = self._messages_at(phys)
            removed = removed or len(found) < len(phys)
            if wanted:
                found = [m for m in found if m.tags in wanted]
            messages.extend(found)
        if messages:
            status = GetStatus.FOUND
        elif removed:
            status = GetStatus.MESSAGE_WAS_REMOVING
        else:
            status = GetStatus.NO_MATCHED_MESSAGE
        return GetResult(status, messages, cur, lo, hi)

    def _messages_at(self, phys) -> list[Message]:
        """Messages at the given commit-log offsets (ascending), skipping removed ones."""
        out: list[Message] = []
        files = self.commitlog.files
        i, n = 0, len(phys)
        while i < n:
            seg = files.find(phys[i])
            if seg is None:
                i += 1
                continue
            j = i
            seg_end = seg.start + seg.size
            while j < n and seg.start <= phys[j] < seg_end:
                j += 1
            positions = array.array("q", [p - seg.start for p in phys[i:j]])
            fields = _native.parse_many(seg.region, positions)
            view = memoryview(seg.mm)
            out.extend(Message(view, fields, k * 16) for k in range(len(fields) // 16))
            i = j
        return out

    def get_bodies(self, topic: str, queue_id: int, offset: int,
                   max_count: int = 32) -> tuple[list[memoryview], int]:
        """The fast path: stored bodies only (zero-copy views, compressed as stored) and the
        next offset. No tag filter."""
        cq = self._cqs.get((topic, queue_id))
        if cq is None or offset >= cq.max_offset or offset < cq.min_offset:
            return [], offset
        _, phys, _, scanned = cq.read(offset, max_count, None)
        bodies = []
        files = self.commitlog.files
        i, n = 0, len(phys)
        while i < n:
            seg = files.find(phys[i])
            if seg is None:
                break
            j = i
            seg_end = seg.start + seg.size
            while j < n and seg.start <= phys[j] < seg_end:
                j += 1
            fields = _native.parse_many(seg.region, array.array("q", [p - seg.start for p in phys[i:j]]))
            view = memoryview(seg.mm)
            bodies.extend(view[fields[k + 10]:fields[k + 10] + fields[k + 11]]
                          for k in range(0, len(fields), 16))
            i = j
        return bodies, offset + scanned

    def get_by_commitlog_offset(self, offset: int) -> Message | None:
        found = self.commitlog.parse_at(offset)
        if found is None:
            return None
        seg, fields = found
        return Message(memoryview(seg.mm), fields, 0)

    def get_by_id(self, msg_id: str) -> Message | None:
        """By RocketMQ's offset message id (store host + commit-log offset)."""
        _, offset = parse_msg_id(msg_id)
        return self.get_by_commitlog_offset(offset)

    def query(self, topic: str, key: str, begin_ms: int = 0, end_ms: int | None = None,
              max_count: int = 32) -> list[Message]:
        """Messages of topic whose KEYS or UNIQ_KEY hold key, stored within [begin_ms, end_ms],
        oldest first (the index stores hashes: hits are confirmed on the real key)."""
        if self.index is None:
            return []
        end_ms = int(time.time() * 1000) + 1000 if end_ms is None else end_ms
        max_count = min(max_count, MAX_QUERY_RESULTS)
        offsets = self.index.query(topic, key, begin_ms, end_ms, max_count * 2)
        found = []
        for off in sorted(set(offsets)):
            m = self.get_by_commitlog_offset(off)
            if m is not None and m.topic == topic and (key in m.keys or m.uniq_key == key) \
                    and begin_ms <= m.store_timestamp <= end_ms:
                found.append(m)
        return found[-max_count:]

    def min_offset(self, topic: str, queue_id: int) -> int:
        cq = self._cqs.get((topic, queue_id))
        return cq.min_offset if cq else 0

    def max_offset(self, topic: str, queue_id: int) -> int:
        """The next queue offset to be written (the queue's message count since creation)."""
        cq = self._cqs.get((topic, queue_id))
        return cq.max_offset if cq else 0

    def offset_for_time(self, topic: str, queue_id: int, timestamp_ms: int) -> int:
        """The first queue offset whose message was stored at or after timestamp_ms (the
        queue's max offset when none was); binary search over store times."""
        cq = self._cqs.get((topic, queue_id))
        if cq is None:
            return 0
        lo, hi = cq.min_offset, cq.max_offset
        while lo < hi:
            mid = (lo + hi) // 2
            ts = self._store_time_at(cq, mid)
            if ts is None or ts < timestamp_ms:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def _store_time_at(self, cq, offset: int) -> int | None:
        unit = cq.unit(offset)
        if unit is None:
            return None
        found = self.commitlog.parse_at(unit[0])
        return found[1][F.STORE_TIMESTAMP] if found else None

    def earliest_store_time(self) -> int | None:
        """Store time of the oldest message still in the CommitLog."""
        for _, fields in self.commitlog.records(self.commitlog.min_offset, self.commitlog.max_offset):
            return fields[F.STORE_TIMESTAMP]
        return None

    def topics_and_queues(self) -> list[tuple[str, int]]:
        return sorted(self._cqs)


def _tag_set(tags) -> frozenset[str] | None:
    if tags is None:
        return None
    items = tags.split("||") if isinstance(tags, str) else list(tags)
    items = [t.strip() for t in items if t.strip()]
    if not items or "*" in items:
        return None
    return frozenset(items)
