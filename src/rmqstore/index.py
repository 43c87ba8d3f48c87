"""IndexFile and IndexService: key -> commit-log offset hash index (RocketMQ's IndexFile).

Files: index/<yyyyMMddHHmmssSSS> (creation time), each 40 + slots*4 + entries*20 bytes
(420,000,040 with RocketMQ's 5,000,000 slots and 20,000,000 entries). Big-endian.

Header, 40 bytes:
    off  size  field
      0     8  beginTimestamp   store time of the first indexed message, ms
      8     8  endTimestamp     store time of the last indexed message, ms
     16     8  beginPhyOffset
     24     8  endPhyOffset
     32     4  hashSlotCount    slots that became non-empty
     36     4  indexCount       next entry number; starts at 1 (entry 0 is never used)
Slots: slots * 4-byte int at 40 + slot*4: number of the newest entry in that bucket, 0 = empty.
Entries: entry i at 40 + slots*4 + i*20:
      0     4  keyHash          abs(Java String.hashCode("topic#key")), MIN_VALUE -> 0
      4     8  phyOffset
     12     4  timeDiff         (storeTs - beginTimestamp) / 1000, seconds, clamped to int
     16     4  prevIndex        previous entry in the bucket, 0 = end of chain
slot = keyHash % slots. Keys indexed per message: UNIQ_KEY, then each space-separated KEYS
token, as "topic#key". Only hashes are stored: callers confirm hits on the real key.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path

from . import _native
from .filenames import index_name, is_index_name
from .record import PROP_KEYS, PROP_UNIQ_KEY
from .segment import MappedFile

log = logging.getLogger(__name__)

HEADER = struct.Struct(">qqqqii")  # begin ts, end ts, begin phys, end phys, slot count, index count
HEADER_SIZE = HEADER.size  # 40
ENTRY = struct.Struct(">iqii")  # key hash, phys offset, time diff (s), previous entry
SLOT = struct.Struct(">i")


def index_keys(props: dict[str, str] | None, keys: list[str] | None = None) -> list[str]:
    """UNIQ_KEY first, then each non-empty space-separated key (IndexService.buildIndex);
    the keys come from props' KEYS unless given apart."""
    found = []
    uniq = props.get(PROP_UNIQ_KEY) if props else None
    if uniq:
        found.append(uniq)
    if keys is None:
        keys = props.get(PROP_KEYS, "").split(" ") if props else []
    found.extend(k for key in keys for k in key.split(" ") if k)
    return found


class IndexFile:
    def __init__(self, seg: MappedFile, slots: int, entries: int) -> None:
        self.seg = seg
        self.slots = slots
        self.entries = entries

    @property
    def name(self) -> str:
        return self.seg.path.name

    def header(self) -> tuple[int, int, int, int, int, int]:
        return HEADER.unpack_from(self.seg.view, 0)

    @property
    def end_phys(self) -> int:
        return self.header()[3]

    @property
    def end_ts(self) -> int:
        return self.header()[1]

    @property
    def full(self) -> bool:
        return self.header()[5] >= self.entries

    def put(self, key: bytes, phys: int, store_ts: int) -> bool:
        return _native.index_put(self.seg.region, self.slots, self.entries, key, phys, store_ts)

    def put_keys(self, topic: str, keys: list[str], phys: int, store_ts: int) -> int:
        """put of each key as topic#key: how many went in before the file was full."""
        return _native.index_put_keys(self.seg.region, self.slots, self.entries, topic, keys,
                                      phys, store_ts)

    def get(self, key: bytes, begin_ms: int, end_ms: int, max_out: int) -> list[int]:
        return _native.index_get(self.seg.region, self.slots, self.entries, key, begin_ms,
                                 end_ms, max_out)

    def time_matches(self, begin_ms: int, end_ms: int) -> bool:
        begin_ts, end_ts = self.header()[:2]
        return begin_ts <= end_ms and end_ts >= begin_ms

    def _entry_at(self, i: int) -> int:
        return HEADER_SIZE + self.slots * 4 + i * ENTRY.size

    def truncate(self, offset: int) -> None:
        """Drop the entries pointing at or past ``offset`` (entries are in phys order): each
        bucket they headed is pointed back at its newest older entry, the header's end moves
        back to the last entry kept."""
        view = self.seg.view
        begin_ts, end_ts, begin_phys, end_phys, slot_count, count = self.header()
        lo, hi = 1, count  # the first entry at or past offset, by bisection
        while lo < hi:
            mid = (lo + hi) // 2
            if ENTRY.unpack_from(view, self._entry_at(mid))[1] < offset:
                lo = mid + 1
            else:
                hi = mid
        keep = lo
        for i in range(keep, count):
            key_hash = ENTRY.unpack_from(view, self._entry_at(i))[0]
            slot_at = HEADER_SIZE + (key_hash % self.slots) * 4
            head = SLOT.unpack_from(view, slot_at)[0]
            newest = head
            while newest >= keep:
                newest = ENTRY.unpack_from(view, self._entry_at(newest))[3]
            if newest != head:
                SLOT.pack_into(view, slot_at, newest)
                slot_count -= newest == 0
        if keep < count:
            view[self._entry_at(keep):self._entry_at(count)] = bytes(
                (count - keep) * ENTRY.size)
        if keep > 1:
            _, end_phys, diff, _ = ENTRY.unpack_from(view, self._entry_at(keep - 1))
            end_ts = begin_ts + diff * 1000
        else:
            end_phys, end_ts = begin_phys, begin_ts
        HEADER.pack_into(view, 0, begin_ts, end_ts, begin_phys, end_phys, slot_count, keep)
        self.seg.flushed = 0
        self.seg.flush()


class IndexService:
    """All index files of a store, oldest first. Writers call put_keys under the store's put
    lock; queries may run concurrently (a torn read yields at most a missed or false hit,
    which callers filter)."""

    def __init__(self, directory: Path, slots: int, entries: int,
                 on_file_full=lambda end_ts: None) -> None:
        """on_file_full(end_ts) runs when a file fills and has been flushed (the store records
        end_ts as the checkpoint's indexMsgTimestamp, as RocketMQ does)."""
        self.directory = directory
        self.on_file_full = on_file_full
        self.slots = slots
        self.entries = entries
        self.file_size = HEADER_SIZE + slots * 4 + entries * 20
        self.files: list[IndexFile] = []
        self._lock = threading.Lock()  # guards the file list against retention
        self.dirty = False
        self.on_file_added: Callable[[], None] = lambda: None  # a shared store tells the others

    def load(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for path in sorted(p for p in self.directory.iterdir() if is_index_name(p.name)):
            try:
                seg = MappedFile.open(path, 0, self.file_size)
            except Exception:
                log.warning("index file %s has the wrong size for this configuration; ignored",
                            path)
                continue
            self.files.append(IndexFile(seg, self.slots, self.entries))

    @property
    def end_phys(self) -> int:
        return self.files[-1].end_phys if self.files else 0

    def put_keys(self, topic: str, keys: list[str], phys: int, store_ts: int) -> None:
        """Index each key as topic#key. Idempotent: records below the last file's end offset
        are already in (IndexService.buildIndex)."""
        if not keys:
            return
        if self.files and phys < self.files[-1].end_phys:
            return
        self.add_keys(topic, keys, phys, store_ts)

    def add_keys(self, topic: str, keys: list[str], phys: int, store_ts: int) -> None:
        """put_keys for a record the writer has just appended: no file can hold it yet, so
        the idempotence check (a read of the file header per send) is skipped."""
        self.dirty = True
        last = self.files[-1] if self.files else None
        if last is not None:  # the common case in one native call; a full file rolls below
            done = last.put_keys(topic, keys, phys, store_ts)
            if done == len(keys):
                return
            keys = keys[done:]
        for key in keys:
            data = f"{topic}#{key}".encode()
            if last is None or not last.put(data, phys, store_ts):
                last = self._roll(last)
                last.put(data, phys, store_ts)

    def put_many(self, topic: str, entries: list[tuple[str, int]], store_ts: int) -> None:
        """put_keys for many (key, phys) pairs of one topic, phys ascending (a batch): the
        idempotence check reads the file header once instead of once per key."""
        if not entries:
            return
        last = self.files[-1] if self.files else None
        start = 0
        if last is not None:
            end_phys = last.end_phys
            while start < len(entries) and entries[start][1] < end_phys:
                start += 1
        self.dirty = True
        prefix = f"{topic}#"
        for key, phys in entries[start:]:
            data = (prefix + key).encode()
            if last is None or not last.put(data, phys, store_ts):
                last = self._roll(last)
                last.put(data, phys, store_ts)

    def _roll(self, last: IndexFile | None) -> IndexFile:
        now = int(time.time() * 1000)
        path = self.directory / index_name(now)
        while path.exists():
            now += 1
            path = self.directory / index_name(now)
        seg = MappedFile.create(path, 0, self.file_size)
        f = IndexFile(seg, self.slots, self.entries)
        if last is not None:  # a new file starts where the previous ended
            _, end_ts, _, end_phys, _, _ = last.header()
            HEADER.pack_into(seg.view, 0, end_ts, end_ts, end_phys, end_phys, 0, 1)
            last.seg.wrote = last.seg.size
            last.seg.flushed = 0
            last.seg.flush()
            self.on_file_full(end_ts)
        else:
            HEADER.pack_into(seg.view, 0, 0, 0, 0, 0, 0, 1)
        seg.wrote = seg.size
        with self._lock:
            self.files.append(f)
        self.on_file_added()
        return f

    def query(self, topic: str, key: str, begin_ms: int, end_ms: int, max_out: int) -> list[int]:
        """Commit-log offsets of candidates for topic#key, newest file first."""
        data = f"{topic}#{key}".encode()
        found: list[int] = []
        with self._lock:
            files = list(self.files)
        for f in reversed(files):
            if len(found) >= max_out:
                break
            if f.time_matches(begin_ms, end_ms):
                found.extend(f.get(data, begin_ms, end_ms, max_out - len(found)))
            if f.header()[0] < begin_ms:
                break
        return found

    def delete_expired(self, min_phys: int, retire) -> int:
        """Drop files (never the last) whose entries all point below min_phys; each segment
        goes to retire(segment), which unlinks it and unmaps it later."""
        removed = 0
        with self._lock:
            while len(self.files) > 1 and self.files[0].end_phys < min_phys:
                retire(self.files.pop(0).seg)
                removed += 1
        return removed

    def truncate(self, offset: int, retire) -> None:
        """Forget every entry pointing at or past ``offset`` (the commit log was cut there):
        files that begin past it go to retire(segment), the last one kept drops its tail."""
        with self._lock:
            while self.files and self.files[-1].header()[2] >= offset and len(self.files) > 1:
                retire(self.files.pop().seg)
        if self.files:
            self.files[-1].truncate(offset)

    def flush(self) -> None:
        if self.files and self.dirty:
            self.dirty = False
            seg = self.files[-1].seg
            seg.flushed = 0
            seg.flush()

    def close(self) -> None:
        for f in self.files:
            f.seg.close()
        self.files = []
