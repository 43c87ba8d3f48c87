"""StoreReader: the store's read side, owned by MessageStore: consume-queue reads, lookups by
offset, id, key and time.

Readers take no lock: they read the copy-on-write maps and file lists, and only bytes below a
segment's `wrote` position, which the single writer advances after the bytes are in place.
"""

from __future__ import annotations

import array
import logging
import time

from . import _native
from .cold_read import ColdRead
from .commitlog import CommitLog
from .consumequeue import UNIT_SIZE
from .index import IndexService
from .message import GetResult, GetStatus, Message
from .queue_table import ConsumeQueueTable
from .read_ahead import ReadAhead
from .record import RecordField as F
from .record import parse_msg_id

log = logging.getLogger(__name__)

MAX_QUERY_RESULTS = 64  # maxMsgsNumBatch
ONE_BODY_CAP = 1 << 62  # no cap: one body, whatever its size


class StoreReader:
    def __init__(self, commitlog: CommitLog, queues: ConsumeQueueTable,
                 index: IndexService | None, check_crc: bool, max_body_bytes: int) -> None:
        """check_crc: verify each body's CRC as it is read (check_crc_on_read).
        max_body_bytes: what a compressed body may inflate to (max_message_size)."""
        self._commitlog = commitlog
        self._queues = queues
        self._index = index
        self._check_crc = check_crc
        self._max_body = max_body_bytes
        self._read_ahead = ReadAhead()
        self._cold = ColdRead(commitlog.max_offset)
        # Controller mode: reads see records ending at or below it only (set by the HA layer
        # through MessageStore.set_confirm_offset); None: everything stored.
        self.confirm_offset: int | None = None

    def close(self) -> None:
        """Wait for read-ahead in flight (it holds pins on queue files)."""
        self._read_ahead.close()

    def get(self, topic: str, queue_id: int, offset: int, max_count: int = 32, *,
            tags: str | list[str] | None = None) -> GetResult:
        """Up to max_count messages of (topic, queue_id) from queue offset on, RocketMQ's
        getMessage: a tag filter ("A || B", a list, or "*") matches by hash code in the
        consume queue, then on the real tag."""
        cq = self._queues.get(topic, queue_id)
        lo, hi = (cq.min_offset, self._visible_max(cq)) if cq is not None else (0, 0)
        refused = _refusal(cq, offset, lo, hi)
        if refused is not None:
            return GetResult(refused[0], [], refused[1], lo, hi)
        wanted = _tag_set(tags)
        codes = tuple(_native.java_hash(t) for t in wanted) if wanted else None
        table = self._commitlog.files.table()
        messages: list[Message] = []
        cur = offset
        missing = 0
        while len(messages) < max_count and cur < hi:
            seg = cq.files.find(cur * UNIT_SIZE)
            if seg is None:
                break
            want = max_count - len(messages)
            pos = cur * UNIT_SIZE - seg.start
            end = min(seg.wrote, hi * UNIT_SIZE - seg.start)  # hi: confirmed units only
            if not codes:  # a unit per message: room for the units there are (often one)
                end = min(end, pos + want * UNIT_SIZE)
                want = max(0, end - pos) // UNIT_SIZE
            units = cq.pinned(seg)
            try:
                self._read_ahead.before_read(cq, seg, pos, table)
                fields, n, scanned, gone, corrupt = _native.read_queue(
                    units, pos, end, codes, table, self._check_crc, want)
            finally:
                seg.unpin()
            if scanned == 0:
                break
            if corrupt:
                log.error("%s/%d: %d corrupt record(s) between queue offsets %d and %d skipped",
                          topic, queue_id, corrupt, cur, cur + scanned)
            cur += scanned
            missing += gone
            found = _native.build_messages(Message, fields, n, table.segments,
                                           self._max_body)
            if wanted:
                found = [m for m in found if m.tags in wanted]
            messages.extend(found)
        return GetResult(_read_status(len(messages), missing), messages, cur, lo, hi)

    def get_bodies(self, topic: str, queue_id: int, offset: int, max_count: int = 1024,
                   max_bytes: int = 4 << 20) -> Bodies:
        """The fast path for bulk consumption: the stored bodies (compressed ones as stored)
        of up to max_count messages from offset, copied into one buffer, with get's status
        and next offset (units whose record retention deleted, or that fails its checks, are
        passed over as get passes them; bodies' CRCs are not checked; the first body comes even
        when it alone is over max_bytes). No tag filter, and no per-message object until you
        index."""
        cq = self._queues.get(topic, queue_id)
        lo, hi = (cq.min_offset, self._visible_max(cq)) if cq is not None else (0, 0)
        refused = _refusal(cq, offset, lo, hi)
        if refused is not None:
            return Bodies(bytearray(), array.array("q"), refused[1], refused[0], lo, hi)
        table = self._commitlog.files.table()
        parts: list[tuple[bytearray, array.array]] = []
        cur, count, size, missing = offset, 0, 0, 0
        while count < max_count and cur < hi and size < max_bytes:
            seg = cq.files.find(cur * UNIT_SIZE)
            if seg is None:
                break
            pos = cur * UNIT_SIZE - seg.start
            end = min(seg.wrote, pos + (max_count - count) * UNIT_SIZE,
                      hi * UNIT_SIZE - seg.start)  # hi: confirmed units only
            units = cq.pinned(seg)
            try:
                ahead = self._read_ahead.before_read(cq, seg, pos, table)
                read = self._cold.read(units, pos, end, table, max_count - count,
                                       max_bytes - size, ahead) if end > pos else None
                if read is None:
                    read = _native.read_bodies(units, pos, end, table, max_count - count,
                                               max_bytes - size)
                if not read[1] and not read[2] and not count and end > pos:
                    # The first body is over max_bytes: it comes alone (RocketMQ always
                    # returns one message), or a consumer's loop would stall on it.
                    read = _native.read_bodies(units, pos, end, table, 1, ONE_BODY_CAP)
                data, ends, scanned, gone = read
            finally:
                seg.unpin()
            if scanned == 0:
                break
            cur += scanned
            missing += gone
            if ends:
                parts.append((data, ends))
                count += len(ends)
                size += len(data)
        data, ends = _joined(parts)
        return Bodies(data, ends, cur, _read_status(count, missing), lo, hi)

    def _visible_max(self, cq) -> int:
        """cq's max offset as reads see it: past the confirm offset nothing is visible."""
        confirm = self.confirm_offset
        if confirm is not None and confirm < self._commitlog.max_offset:
            return cq.visible_max(confirm)
        return cq.max_offset

    def get_by_commitlog_offset(self, offset: int) -> Message | None:
        found = self._commitlog.parse_at(offset)
        if found is None:
            return None
        seg, fields = found
        return Message(memoryview(seg.mm), fields, 0, None, self._max_body)

    def get_by_id(self, msg_id: str) -> Message | None:
        """By RocketMQ's offset message id (store host + commit-log offset)."""
        _, offset = parse_msg_id(msg_id)
        return self.get_by_commitlog_offset(offset)

    def query(self, topic: str, key: str, begin_ms: int = 0, end_ms: int | None = None,
              max_count: int = 32) -> list[Message]:
        """Messages of topic whose KEYS or UNIQ_KEY hold key, stored within [begin_ms, end_ms],
        oldest first (the index stores hashes: hits are confirmed on the real key)."""
        if self._index is None:
            return []
        end_ms = int(time.time() * 1000) + 1000 if end_ms is None else end_ms
        max_count = min(max_count, MAX_QUERY_RESULTS)
        offsets = self._index.query(topic, key, begin_ms, end_ms, max_count * 2)
        found = []
        for off in sorted(set(offsets)):
            m = self.get_by_commitlog_offset(off)
            if m is not None and m.topic == topic and (key in m.keys or m.uniq_key == key) \
                    and begin_ms <= m.store_timestamp <= end_ms:
                found.append(m)
        return found[-max_count:]

    def min_offset(self, topic: str, queue_id: int) -> int:
        cq = self._queues.get(topic, queue_id)
        return cq.min_offset if cq else 0

    def max_offset(self, topic: str, queue_id: int) -> int:
        """The next queue offset to be written (the queue's message count since creation)."""
        cq = self._queues.get(topic, queue_id)
        return cq.max_offset if cq else 0

    def covers(self, topic: str, queue_id: int, offset: int) -> bool:
        """offset <= max_offset(topic, queue_id), looked up in this process's view first: a
        shared store catches the queue up only for an offset past it (an ack's commit, for
        each message, need not read the control file again)."""
        cq = self._queues.by_key.get((topic, queue_id))
        if cq is not None and offset <= cq.max_offset:
            return True
        return offset <= self.max_offset(topic, queue_id)

    def offset_for_time(self, topic: str, queue_id: int, timestamp_ms: int) -> int:
        """The first queue offset whose message was stored at or after timestamp_ms (the
        queue's max offset when none was); binary search over store times."""
        cq = self._queues.get(topic, queue_id)
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
        found = self._commitlog.parse_at(unit[0])
        return found[1][F.STORE_TIMESTAMP] if found else None

    def earliest_store_time(self) -> int | None:
        """Store time of the oldest message still in the CommitLog."""
        commitlog = self._commitlog
        for _, fields in commitlog.records(commitlog.min_offset, commitlog.max_offset):
            return fields[F.STORE_TIMESTAMP]
        return None

    def topics_and_queues(self) -> list[tuple[str, int]]:
        return self._queues.keys()


def _refusal(cq, offset: int, lo: int, hi: int) -> tuple[GetStatus, int] | None:
    """(status, next offset) of a read that finds nothing to read at offset, RocketMQ's
    getMessage rules; None when there is something to read."""
    if cq is None:
        return GetStatus.NO_MATCHED_LOGIC_QUEUE, 0
    if hi == 0:
        return GetStatus.NO_MESSAGE_IN_QUEUE, 0
    if offset < lo:
        return GetStatus.OFFSET_TOO_SMALL, lo
    if offset == hi:
        return GetStatus.OFFSET_OVERFLOW_ONE, offset
    if offset > hi:
        return GetStatus.OFFSET_OVERFLOW_BADLY, lo if lo == 0 else hi
    return None


def _read_status(found: int, missing: int) -> GetStatus:
    if found:
        return GetStatus.FOUND
    return GetStatus.MESSAGE_WAS_REMOVING if missing else GetStatus.NO_MATCHED_MESSAGE


def _joined(parts: list[tuple[bytearray, array.array]]) -> tuple[bytearray, array.array]:
    """One buffer and its body ends out of the reads of several consume-queue files."""
    if len(parts) == 1:
        return parts[0]
    data, ends = bytearray(), array.array("q")
    for chunk, chunk_ends in parts:
        base = len(data)
        data += chunk
        ends.extend(base + e for e in chunk_ends)
    return data, ends


class Bodies:
    """Bodies read by get_bodies: one buffer, and where each body ends in it; status,
    next_offset, min_offset and max_offset as a GetResult has them."""

    __slots__ = ("data", "ends", "max_offset", "min_offset", "next_offset", "status")

    def __init__(self, data: bytearray, ends: array.array, next_offset: int,
                 status: GetStatus, min_offset: int, max_offset: int) -> None:
        self.data = data
        self.ends = ends
        self.next_offset = next_offset
        self.status = status
        self.min_offset = min_offset
        self.max_offset = max_offset

    def __len__(self) -> int:
        return len(self.ends)

    def __getitem__(self, i: int) -> memoryview:
        ends = self.ends
        if i < 0:
            i += len(ends)
        start = ends[i - 1] if i > 0 else 0
        return memoryview(self.data)[start:ends[i]]

    def __iter__(self):
        view = memoryview(self.data)
        start = 0
        for end in self.ends:
            yield view[start:end]
            start = end


def _tag_set(tags) -> frozenset[str] | None:
    if tags is None:
        return None
    items = tags.split("||") if isinstance(tags, str) else list(tags)
    items = [t.strip() for t in items if t.strip()]
    if not items or "*" in items:
        return None
    return frozenset(items)
