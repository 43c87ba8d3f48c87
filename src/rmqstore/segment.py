"""MappedFile: one fixed-size, memory-mapped segment file (RocketMQ's MappedFile).

This is the only engine module that opens, maps, syncs or deletes segment files, so faults can
be injected in one place; its syncs go through sync_journal, which power-loss tests read.
Positions are byte positions inside the file; `start` is the global offset of byte 0 (the
20-digit file name).

Concurrency: `wrote` is advanced only by the single writer holding the store's put lock; readers
only look below the `wrote` they read. `flush()` may run on a flusher thread concurrently with
appends: it syncs at least everything written before it was called.
"""

from __future__ import annotations

import logging
import mmap
import os
from pathlib import Path

from . import _native, sync_journal
from .errors import CorruptSegmentError, DiskFullError

log = logging.getLogger(__name__)

ZERO_CHUNK = 1 << 20
PAGE = 4096
# madvise hints a commit-log mapping can take (StoreConfig.commitlog_advice)
ADVICE = {
    "normal": mmap.MADV_NORMAL,
    "hugepage": mmap.MADV_HUGEPAGE,  # large page-cache folios: one fault maps up to 2 MiB
    "sequential": mmap.MADV_SEQUENTIAL,
    "random": mmap.MADV_RANDOM,
    # A replica's: no readahead while the segment takes appends (they come through pwrite,
    # and readahead would allocate and zero the pages ahead of them), the kernel's default
    # once written out (a slave serves cold reads of old segments).
    "replica": mmap.MADV_RANDOM,
}


class MappedFile:
    __slots__ = (
        "__weakref__",
        "cell",
        "fd",
        "flushed",
        "mm",
        "path",
        "region",
        "size",
        "start",
        "view",
    )

    def __init__(self, path: Path, start: int, size: int, fd: int, mm: mmap.mmap) -> None:
        self.path = path
        self.start = start
        self.size = size
        self.fd = fd
        self.mm = mm
        self.region = _native.Region(mm)
        self.view = memoryview(mm)
        # Bytes appended (readers see [0, wrote)); kept in a cell the native appenders advance.
        self.cell = _native.new_cell(0)
        self.flushed = 0  # bytes known durable

    @classmethod
    def create(cls, path: Path, start: int, size: int, advice: str = "normal") -> MappedFile:
        """Create a zero-filled file of exactly `size` bytes (blocks reserved up front, so a full
        disk fails here, not as SIGBUS on a later append), mapped with the madvise `advice`."""
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            try:
                os.posix_fallocate(fd, 0, size)
            except OSError as exc:
                if exc.errno == 28:  # ENOSPC
                    raise DiskFullError(f"no space to create segment {path.name}") from exc
                os.ftruncate(fd, size)  # file systems without fallocate: sparse file
            os.rename(tmp, path)
            if sync_journal.ON:
                sync_journal.created(path)
        except BaseException:
            os.close(fd)
            _unlink_quietly(tmp)
            raise
        return cls(path, start, size, fd, _map(fd, size, advice))

    @classmethod
    def open(cls, path: Path, start: int, size: int, advice: str = "normal") -> MappedFile:
        """Map an existing segment; positions start at `size` until recovery sets them."""
        fd = os.open(path, os.O_RDWR)
        actual = os.fstat(fd).st_size
        if actual != size:
            os.close(fd)
            # RocketMQ refuses to load a wrong-sized segment (MappedFileQueue.doLoad).
            raise CorruptSegmentError(f"{path} is {actual} bytes; segments here are {size}")
        seg = cls(path, start, size, fd, _map(fd, size, advice))
        seg.wrote = seg.flushed = size
        return seg

    @property
    def wrote(self) -> int:
        return self.cell[0]

    @wrote.setter
    def wrote(self, pos: int) -> None:
        self.cell[0] = pos

    @property
    def end(self) -> int:
        """Global offset just past the written bytes."""
        return self.start + self.wrote

    @property
    def full(self) -> bool:
        return self.wrote >= self.size

    def flush(self) -> int:
        """Make [0, wrote) durable with fdatasync (the GIL is released meanwhile); returns the
        new flushed position. Dirty mmap pages are part of the page cache fdatasync writes."""
        target = self.wrote
        if target > self.flushed:
            sync_journal.fdatasync_upto(self.fd, self.path, target)
            self.flushed = max(self.flushed, target)
        return self.flushed

    def set_positions(self, pos: int) -> None:
        self.wrote = self.flushed = pos

    def zero_from(self, pos: int) -> None:
        """Zero [pos, size) and sync it: truncation must not leave old records behind. Whole
        pages go by punching a hole (no page is read or written); the rest is written."""
        cut = pos  # the loop below advances pos
        page_end = min(self.size, -(-pos // PAGE) * PAGE)
        if page_end < self.size and _native.zero_range(self.fd, page_end, self.size - page_end):
            self.view[pos:page_end] = bytes(page_end - pos)
            sync_journal.fdatasync_cut(self.fd, self.path, cut)
            return
        chunk = bytes(min(ZERO_CHUNK, self.size - pos))
        view = self.view
        while pos < self.size:
            n = min(len(chunk), self.size - pos)
            if view[pos:pos + n] != chunk[:n]:
                view[pos:pos + n] = chunk[:n]
            pos += n
        sync_journal.fdatasync_cut(self.fd, self.path, cut)

    def written_out(self, advice: str) -> None:
        """No more writes go through this segment: drop "hugepage", a write-path advice (huge
        folios would make a cold random read fetch 2 MiB), and a replica's "no readahead".
        Read hints stay."""
        if advice == "hugepage" and self.fd >= 0:
            _advise(self.mm, mmap.MADV_NOHUGEPAGE)
        elif advice == "replica" and self.fd >= 0:
            _advise(self.mm, mmap.MADV_NORMAL)

    def mtime(self) -> float:
        return os.fstat(self.fd).st_mtime

    def close(self) -> None:
        """Unmap and close. A reader still holding a zero-copy view keeps the mapping alive
        until it lets go (the kernel keeps an unlinked file's pages while mapped)."""
        if self.fd < 0:
            return
        self.region.release()
        try:
            self.view.release()
            self.mm.close()
        except BufferError:
            log.debug("segment %s still viewed by a reader; unmapped when it lets go", self.path)
        os.close(self.fd)
        self.fd = -1

    def destroy(self) -> None:
        """Close and delete the file."""
        self.close()
        _unlink_quietly(self.path)


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _map(fd: int, size: int, advice: str) -> mmap.mmap:
    mm = mmap.mmap(fd, size)
    if advice != "normal":
        _advise(mm, ADVICE[advice])
    return mm


def _advise(mm: mmap.mmap, flag: int) -> None:
    try:
        mm.madvise(flag)
    except OSError as exc:  # e.g. EINVAL where the kernel lacks transparent huge pages
        log.info("madvise(%d) refused (%s); the mapping keeps the kernel's default", flag, exc)
