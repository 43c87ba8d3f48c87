"""MappedFileQueue: the ordered, contiguous segments of one log (RocketMQ's MappedFileQueue),
and the background pre-allocator of the next segment (AllocateMappedFileService).

Offsets here are global: segment i covers [start_i, start_i + size).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from . import _native
from .errors import CorruptSegmentError
from .filenames import list_offset_files, offset_name
from .segment import MappedFile

log = logging.getLogger(__name__)


class Preallocator:
    """Makes the next segment ahead of time on a background thread (AllocateMappedFileService),
    so rolling over costs the writer nothing; with `warm_bytes`, its first pages are faulted in
    too (the Warmer keeps the rest ahead of the writer). One outstanding file per path."""

    def __init__(self, warm_bytes: int) -> None:
        self.warm_bytes = warm_bytes
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rmq-alloc")
        self._pending: dict[Path, Future] = {}
        self._lock = threading.Lock()
        self._closing = False

    def request(self, path: Path, start: int, size: int, advice: str = "normal") -> None:
        """advice: the madvise hint to map the file with, before any page is warmed."""
        with self._lock:
            if path not in self._pending and not path.exists() and not self._closing:
                self._pending[path] = self._pool.submit(self._make, path, start, size, advice)

    def _make(self, path: Path, start: int, size: int, advice: str) -> MappedFile:
        seg = MappedFile.create(path, start, size, advice)
        if self.warm_bytes:
            _native.populate(seg.region, 0, self.warm_bytes)
        return seg

    def take(self, path: Path, start: int, size: int, advice: str = "normal") -> MappedFile:
        with self._lock:
            fut = self._pending.pop(path, None)
        if fut is not None:
            try:
                return fut.result()
            except Exception:  # fall back to creating it here, which raises a clear error
                log.warning("pre-allocation of %s failed; creating it inline", path, exc_info=True)
        return MappedFile.create(path, start, size, advice)

    def close(self) -> None:
        """Wait for work in flight and delete files made ahead but never used."""
        self._closing = True
        self._pool.shutdown(wait=True, cancel_futures=True)
        for fut in self._pending.values():
            try:
                fut.result().destroy()
            except Exception:
                pass
        self._pending.clear()


class MappedFileQueue:
    def __init__(self, directory: Path, file_size: int, allocator: Preallocator | None,
                 advice: str = "normal", kind=MappedFile) -> None:
        """advice: the madvise hint of every segment's mapping (segment.ADVICE). kind makes
        the files: create(path, start, size, advice) and open(path, start, size, advice), as
        MappedFile's classmethods (a consume queue's makes QueueFiles)."""
        self.directory = directory
        self.file_size = file_size
        self.allocator = allocator
        self.advice = advice
        self.kind = kind
        self._files: list[MappedFile] = []
        self._table: _native.SegmentTable | None = None

    @property
    def files(self) -> list[MappedFile]:
        """The segments, oldest first. Replaced, never mutated, so readers can hold a copy."""
        return self._files

    @files.setter
    def files(self, files: list[MappedFile]) -> None:
        self._files = files
        self._table = None

    def table(self) -> _native.SegmentTable:
        """The segments as native reads see them."""
        table = self._table
        if table is None or table.segments is not self._files:
            table = self._table = _native.SegmentTable(self._files, self.file_size)
        return table

    def load(self) -> None:
        """Map every segment on disk; a wrong-sized or non-contiguous file is refused."""
        self.directory.mkdir(parents=True, exist_ok=True)
        files: list[MappedFile] = []
        try:
            for start, path in list_offset_files(self.directory):
                if files and start != files[-1].start + self.file_size:
                    raise CorruptSegmentError(f"{path} does not follow {files[-1].path}")
                if start % self.file_size:
                    raise CorruptSegmentError(f"{path} does not start on a segment boundary")
                if files:
                    files[-1].written_out(self.advice)  # only the last one takes appends
                files.append(self.kind.open(path, start, self.file_size, self.advice))
        except BaseException:
            for seg in files:
                seg.close()
            raise
        self.files = files

    @property
    def min_offset(self) -> int:
        return self.files[0].start if self.files else 0

    @property
    def max_offset(self) -> int:
        """Offset just past the last written byte (MappedFile.end's, inline: a SYNC_MASTER
        asks once per waiting read)."""
        files = self._files
        if not files:
            return 0
        last = files[-1]
        return last.start + last.cell[0]

    def last(self) -> MappedFile | None:
        return self.files[-1] if self.files else None

    def last_for_write(self, start_if_empty: int = 0) -> MappedFile:
        """The segment to append into, rolling to a new one when the last is full."""
        last = self.files[-1] if self.files else None
        if last is not None and not last.full:
            return last
        start = last.start + self.file_size if last is not None else \
            start_if_empty - start_if_empty % self.file_size
        if last is not None:
            last.written_out(self.advice)
        return self._create(start)

    def _create(self, start: int) -> MappedFile:
        path = self.directory / offset_name(start)
        if self.allocator is not None:
            seg = self.allocator.take(path, start, self.file_size, self.advice)
            nxt = start + self.file_size
            self.allocator.request(self.directory / offset_name(nxt), nxt, self.file_size,
                                   self.advice)
        else:
            seg = self.kind.create(path, start, self.file_size, self.advice)
        self.files = [*self.files, seg]
        return seg

    def find(self, offset: int) -> MappedFile | None:
        """The segment holding global offset, or None when outside the queue."""
        files = self.files
        if not files:
            return None
        i = (offset - files[0].start) // self.file_size
        if 0 <= i < len(files):
            seg = files[i]
            if seg.start <= offset < seg.start + self.file_size:
                return seg
        return None

    def drop_empty(self) -> None:
        """Delete the segments of a queue that holds no byte (ValueError otherwise)."""
        if self.max_offset != self.min_offset:
            raise ValueError(f"segments from {self.min_offset} hold bytes to {self.max_offset}")
        for seg in self.files:
            seg.destroy()
        self.files = []

    def truncate_dirty(self, offset: int, forget: bool = False) -> None:
        """Drop everything at and after offset: later segments are deleted, the one holding it
        keeps [start, offset) and has the rest zeroed, so that a later recovery scan can never
        walk from new records into stale ones (forget: see MappedFile.zero_from)."""
        keep = []
        for seg in self.files:
            if seg.start + self.file_size <= offset:
                keep.append(seg)
            elif seg.start <= offset:
                if forget:  # a commit-log segment's (a consume queue's does not)
                    seg.zero_from(offset - seg.start, forget)
                else:
                    seg.zero_from(offset - seg.start)
                seg.set_positions(offset - seg.start)
                keep.append(seg)
            else:
                seg.destroy()
        self.files = keep

    def flush(self, upto: int) -> int:
        """fdatasync every segment with unflushed bytes below upto (walking back from the
        newest to the first one already clean); returns the offset durable from the start."""
        files = self.files
        dirty = []
        for seg in reversed(files):
            if seg.flushed >= seg.wrote:
                if seg.wrote == seg.size:
                    break  # a full, clean segment: everything before it is clean too
                continue
            if seg.start < upto:
                dirty.append(seg)
        for seg in reversed(dirty):
            seg.flush()
        return self.durable()

    def durable(self) -> int:
        """The offset durable from the start: the oldest segment not wholly flushed bounds it."""
        files = self.files
        durable = files[-1].start + files[-1].flushed if files else 0
        for seg in reversed(files):
            if seg.flushed >= seg.size:
                break
            durable = seg.start + seg.flushed
        return durable

    def oldest_unflushed(self) -> MappedFile | None:
        """The oldest segment with written bytes not yet durable (None: all durable)."""
        found = None
        for seg in reversed(self.files):
            if seg.flushed < seg.wrote:
                found = seg
            elif seg.wrote == seg.size:
                break  # a full, clean segment: everything before it is clean too
        return found

    def close(self) -> None:
        for seg in self.files:
            seg.close()
        self.files = []
