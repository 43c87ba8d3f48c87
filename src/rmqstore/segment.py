"""MappedFile: one fixed-size, memory-mapped segment file (RocketMQ's MappedFile), and the
file operations it shares with queue_file.QueueFile, its consume-queue form.

These two are the only engine modules that open, map, sync or delete segment files, so faults
can be injected in one place; their syncs go through sync_journal, which power-loss tests read.
Positions are byte positions inside the file; `start` is the global offset of byte 0 (the
20-digit file name).

Concurrency: `wrote` is advanced only by the single writer holding the store's put lock; readers
only look below the `wrote` they read. `flush()` may run on a flusher thread concurrently with
appends: it syncs at least everything written before it was called.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import mmap
import os
import struct
import threading
from pathlib import Path
from typing import Any

from . import _native, sync_journal
from .errors import CorruptSegmentError, DiskFullError, StoreLimitError
from .filenames import temp_of

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


class WritePosition:
    """A file's write position, kept in a native cell the appenders advance (readers see
    [0, wrote)), and what follows from it. Subclasses set ``cell``, ``start`` and ``size``."""

    __slots__ = ()

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


class MappedFile(WritePosition):
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
        "sync_fd",
        "sync_lock",
        "view",
        "zeroed",
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
        # flush()'s own open file while the segment takes bytes. Every open file reports a
        # failed write-back to its next sync, but syncs through one file report it once: a
        # thread syncing through fd while another's sync failed could take the pages the
        # failure left clean for written ones (sync_failure.py). The event loop's syncs
        # (aio_commit) use fd, one at a time, and see each failure before the next.
        self.sync_fd = -1
        self.sync_lock = threading.Lock()  # flush() and close(): sync_fd is closed once full
        self.zeroed = 0  # zeros written ahead of the writer up to here (write_zeros_ahead)

    @classmethod
    def create(cls, path: Path, start: int, size: int, advice: str = "normal") -> MappedFile:
        """Create a zero-filled file of exactly `size` bytes (blocks reserved up front, so a full
        disk fails here, not as SIGBUS on a later append), mapped with the madvise `advice`."""
        def whole(fd: int) -> None:
            if not allocate(fd, 0, size, path):
                os.ftruncate(fd, size)  # file systems without fallocate: sparse file

        fd, _ = new_file(path, temp_of(path), whole, os.rename)
        seg = cls(path, start, size, fd, _map(fd, size, advice))
        seg.sync_fd = open_fd(path, os.O_RDONLY)
        return seg

    @classmethod
    def open(cls, path: Path, start: int, size: int, advice: str = "normal") -> MappedFile:
        """Map an existing segment; positions start at `size` until recovery sets them."""
        fd = open_fd(path, os.O_RDWR)
        try:
            check_size(path, os.fstat(fd).st_size, size)
            seg = cls(path, start, size, fd, _map(fd, size, advice))
        except BaseException:
            os.close(fd)
            raise
        seg.wrote = seg.flushed = size
        return seg

    def flush(self) -> int:
        """Make [0, wrote) durable with fdatasync (the GIL is released meanwhile); returns the
        new flushed position. Dirty mmap pages are part of the page cache fdatasync writes."""
        target = self.wrote
        if target > self.flushed:
            with self.sync_lock:  # a housekeeper's flush and a closing store's may meet
                if target > self.flushed:
                    sync_journal.fdatasync_upto(self.sync_fd if self.sync_fd >= 0 else self.fd,
                                                self.path, target)
                    self.flushed = max(self.flushed, target)
                    if self.flushed >= self.size:
                        self._close_sync_fd()
        return self.flushed

    def write_zeros_ahead(self, ahead: int) -> None:
        """Write zeros over the next ``ahead`` bytes of whole pages past the write position and
        the zeros written before, and start their write-back (_native.write_zeros): the syncs
        that later cover records there find their blocks converted. The caller holds the put
        lock, so that no record is written meanwhile; the pages hold zeros already, so readers
        see no change."""
        if self.fd < 0:
            return
        start = max(self.zeroed, -(-self.wrote // PAGE) * PAGE)
        end = min(self.size, start + ahead)
        if end > start:
            err = _native.write_zeros(self.fd, start, end - start)
            if err:  # a sync of the records there pays for the conversion, as before
                log.warning("writing zeros ahead in %s: %s", self.path, os.strerror(err))
        self.zeroed = max(self.zeroed, end)

    def set_positions(self, pos: int) -> None:
        self.wrote = self.flushed = pos
        if pos < self.size and self.sync_fd < 0 and self.fd >= 0:
            self.sync_fd = open_fd(self.path, os.O_RDONLY)

    def _close_sync_fd(self) -> None:
        if self.sync_fd >= 0:
            os.close(self.sync_fd)
            self.sync_fd = -1

    def zero_from(self, pos: int, forget: bool = False) -> None:
        """Zero [pos, size) and sync it: truncation must not leave old records behind. Whole
        pages go by punching a hole (no page is read or written) where they were written: the
        tail after a clean close was not, but for the pages warmed ahead of the writer
        (punching all of it and allocating it again discarded half a segment at every open);
        the rest is written. forget: every whole page is punched, written or not: after a
        failed sync the page cache may hold pages the disk does not, over blocks ext4 keeps
        as unwritten extents, which a later write of the same page would not mend
        (sync_failure.py); punching drops both."""
        cut = pos  # the loop below advances pos
        page_end = min(self.size, -(-pos // PAGE) * PAGE)
        written = written_ranges(self.fd, page_end, self.size - page_end) \
            if page_end < self.size and not forget else None
        if written is None:
            written = [(page_end, self.size)]  # cannot tell: all of it
        if page_end < self.size and all(_native.zero_range(self.fd, lo, hi - lo)
                                        for lo, hi in written):
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

    def advise(self, advice: str) -> None:
        """Map with ``advice`` from now on (a role change: segment.ADVICE's names)."""
        if self.fd >= 0:
            _advise(self.mm, ADVICE[advice])

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
        with self.sync_lock:
            self._close_sync_fd()
        os.close(self.fd)
        self.fd = -1

    def destroy(self) -> None:
        """Close and delete the file."""
        self.close()
        unlink_quietly(self.path)


def new_file(path: Path, tmp: Path, shape, place) -> tuple[int, Any]:
    """A new file made as tmp, given its size and blocks by shape(fd) (whose answer comes
    back beside the descriptor), put in place by place(tmp, path) and journaled as created;
    the caller closes the descriptor."""
    fd = open_fd(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC)
    try:
        shaped = shape(fd)
        place(tmp, path)
        if sync_journal.ON:
            sync_journal.created(path)
    except BaseException:
        os.close(fd)
        unlink_quietly(tmp)
        raise
    return fd, shaped


def open_fd(path: Path, flags: int) -> int:
    """os.open; running out of descriptors is a StoreLimitError that names the limit."""
    try:
        return os.open(path, flags, 0o644)
    except OSError as exc:
        if exc.errno in (errno.EMFILE, errno.ENFILE):
            raise StoreLimitError.open_files(path, exc.errno) from exc
        raise


def allocate(fd: int, start: int, length: int, path: Path) -> bool:
    """Back [start, start + length) of fd with blocks; DiskFullError when there is no room,
    False where the file system cannot allocate ahead."""
    try:
        os.posix_fallocate(fd, start, length)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DiskFullError(f"no space to create or extend {path}") from exc
        if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL):
            return False
        raise
    return True


FS_IOC_FIEMAP = 0xC020660B
FIEMAP_FLAG_SYNC = 0x1  # write the file's dirty pages first: their blocks count as written
FIEMAP_EXTENT_LAST = 0x1
FIEMAP_EXTENT_UNWRITTEN = 0x800
FIEMAP_HEAD = struct.Struct("=QQIIII")  # struct fiemap (linux/fiemap.h)
FIEMAP_EXTENT = struct.Struct("=QQQ16xI12x")  # struct fiemap_extent: logical, _, length, flags
FIEMAP_BATCH = 32


def written_ranges(fd: int, start: int, length: int) -> list[tuple[int, int]] | None:
    """The ranges of [start, start + length) of fd that hold written blocks (holes and blocks
    allocated but never written read as zeros), by FIEMAP; None where it cannot tell."""
    end, found = start + length, []
    while start < end:
        buf = bytearray(FIEMAP_HEAD.size + FIEMAP_BATCH * FIEMAP_EXTENT.size)
        FIEMAP_HEAD.pack_into(buf, 0, start, end - start, FIEMAP_FLAG_SYNC, 0, FIEMAP_BATCH, 0)
        try:
            fcntl.ioctl(fd, FS_IOC_FIEMAP, buf)
        except OSError:  # no FIEMAP here (tmpfs, some network file systems)
            return None
        mapped = FIEMAP_HEAD.unpack_from(buf)[3]
        if mapped == 0:
            break  # a hole to the end
        for i in range(mapped):
            logical, _, size, flags = FIEMAP_EXTENT.unpack_from(
                buf, FIEMAP_HEAD.size + i * FIEMAP_EXTENT.size)
            if not flags & FIEMAP_EXTENT_UNWRITTEN:
                lo, hi = max(logical, start), min(logical + size, end)
                if found and found[-1][1] == lo:
                    found[-1] = (found[-1][0], hi)
                elif lo < hi:
                    found.append((lo, hi))
            if flags & FIEMAP_EXTENT_LAST:
                return found
            if logical + size <= start:
                return None  # not advancing: cannot tell
            start = logical + size
    return found


def check_size(path: Path, actual: int, size: int) -> None:
    if actual != size:
        # RocketMQ refuses to load a wrong-sized segment (MappedFileQueue.doLoad).
        raise CorruptSegmentError(f"{path} is {actual} bytes; segments here are {size}")


def unlink_quietly(path: Path) -> None:
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
