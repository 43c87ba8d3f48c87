"""QueueFile: a consume-queue file (consumequeue.py) that holds no descriptor and costs the
disk what it holds. With segment.py, the only engine module that opens, maps or syncs segment
files.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from . import _native, sync_journal
from .errors import DiskFullError, StoreLimitError
from .filenames import aside_of, temp_of
from .segment import (
    PAGE,
    ZERO_CHUNK,
    WritePosition,
    allocate,
    check_size,
    new_file,
    open_fd,
    unlink_quietly,
)

if TYPE_CHECKING:
    from .mapping_clock import MappingClock

log = logging.getLogger(__name__)

# What a consume-queue file backs with blocks at a time: 1,024 units in exactly 5 pages, so a
# new queue costs 20 KiB of disk, not the 6 MB of a whole file.
RESERVE_BYTES = 20480
# A file that holds more is backed as much again ahead, up to this many chunks (65,536 units,
# 1.25 MiB): a busy queue then stops for a reservation once per 65,536 units, not per 1,024
# (those stops were a tenth of the time of puts in batches of 128).
MAX_RESERVE_CHUNKS = 64


class QueueFile(WritePosition):
    """A consume-queue file with RocketMQ's name and size that costs the disk what it holds and
    the process no descriptor.

    Sparse: created at its full size with only its first RESERVE_BYTES backed; the writer is
    given room a chunk at a time (``reserve``: RESERVE_BYTES, more as it fills), each backed
    by the file system before any unit is stored there, so a full disk is an error at a
    reservation and never a SIGBUS in the middle of a put. Mapped natively and its descriptor
    closed at once; a MappingClock may unmap it (``try_unmap``) and it is mapped again on use.
    Syncs go through the mapping (msync), or, while unmapped, through a descriptor opened for
    the sync.

    Threads: the store's put lock guards mapping, unmapping, reserving and the write position.
    A reader without it pins the mapping (``pin``/``unpin``) for as long as it reads; the clock
    never unmaps a pinned file.
    """

    __slots__ = ("cell", "clock", "flushed", "mapping", "owner", "path", "pins", "referenced",
                 "reserved", "size", "slot", "start")

    def __init__(self, path: Path, start: int, size: int, clock: MappingClock, owner) -> None:
        self.path = path
        self.start = start
        self.size = size
        self.clock = clock
        self.owner = owner  # the ConsumeQueue: the clock detaches its writer before unmapping
        self.mapping: _native.Mapping | None = None
        self.pins: list[None] = []  # one entry per reader inside the mapping (append/pop: atomic)
        self.referenced = False  # used since the clock's hand last passed
        self.slot = -1  # place in the clock's ring while mapped
        self.cell = _native.new_cell(0)  # bytes appended (readers see [0, wrote))
        self.flushed = 0
        self.reserved = 0  # [0, reserved) is backed by blocks: the writer may store there

    @classmethod
    def create(cls, path: Path, start: int, size: int, clock: MappingClock,
               owner) -> QueueFile:
        """Create the file (sparse, its first chunk backed) and map it."""
        f = cls(path, start, size, clock, owner)
        fd, backed = make_queue_file(path, size)
        try:
            f._map(fd)
        except BaseException:
            unlink_quietly(path)
            raise
        finally:
            os.close(fd)
        f.reserved = backed
        return f

    @classmethod
    def create_aside(cls, path: Path, start: int, size: int, clock: MappingClock,
                     owner) -> QueueFile:
        """create() without the put lock, for a queue's first put to find ready: the file is
        made unless one is there already (FileExistsError: a writer made it meanwhile, and it
        is the queue's), mapped and its first page faulted in, but not counted by the clock
        until the put lock is taken (MappingClock.adopt), nor ever unlinked by this call."""
        f = cls(path, start, size, clock, owner)
        fd, f.reserved = _new_queue_file(path, aside_of(path), size, _link_new)
        try:
            f.mapping = _native.Mapping(fd, size)
        except OSError as exc:
            if exc.errno == errno.ENOMEM:
                raise StoreLimitError.mappings(path, len(clock)) from exc
            raise
        finally:
            os.close(fd)
        f.wrote = f.flushed = 0
        f.mapping.populate(0, min(size, PAGE))  # the first store then meets no page fault
        return f

    @classmethod
    def open(cls, path: Path, start: int, size: int, clock: MappingClock, owner) -> QueueFile:
        """An existing file, not mapped yet; positions start at `size` until recovery sets
        them."""
        check_size(path, os.stat(path).st_size, size)
        f = cls(path, start, size, clock, owner)
        f.set_positions(size)
        return f

    def set_positions(self, pos: int) -> None:
        self.wrote = self.flushed = pos
        self.reserved = min(self.reserved, pos)

    # -- mapping (put lock held) --------------------------------------------------------------
    def mapped(self) -> _native.Mapping:
        """The mapping, made again if the clock unmapped it; valid while the put lock is held
        and no other file is mapped."""
        m = self.mapping
        if m is None:
            fd = open_fd(self.path, os.O_RDWR)
            try:
                m = self._map(fd)
            finally:
                os.close(fd)
        self.referenced = True
        return m

    def _map(self, fd: int) -> _native.Mapping:
        self.clock.make_room()
        try:
            m = _native.Mapping(fd, self.size)
        except OSError as exc:
            if exc.errno != errno.ENOMEM:
                raise
            self.clock.shrink()  # the process is at vm.max_map_count: hold fewer mappings
            try:
                m = _native.Mapping(fd, self.size)
            except OSError as again:
                raise StoreLimitError.mappings(self.path, len(self.clock)) from again
        self.mapping = m
        self.clock.add(self)
        return m

    def try_unmap(self) -> bool:
        """Unmap, unless a reader holds a pin (False). Pairs with pin(): each side writes its
        own field, then reads the other's, so one of them always sees the other."""
        m = self.mapping
        if m is None:
            return True
        self.mapping = None
        if self.pins:
            self.mapping = m
            return False
        m.unmap()
        return True

    # -- readers (no lock) --------------------------------------------------------------------
    def pin(self) -> _native.Mapping | None:
        """The mapping, kept mapped until unpin(); None when it is not mapped (map it under the
        put lock, then pin again)."""
        self.pins.append(None)
        m = self.mapping
        if m is None:
            self.pins.pop()
            return None
        self.referenced = True
        return m

    def unpin(self) -> None:
        self.pins.pop()

    # -- writing (put lock held) ----------------------------------------------------------------
    def reserve(self, upto: int) -> None:
        """Back the file with blocks past the write position up to `upto`, rounded up to a
        chunk of RESERVE_BYTES times what the file holds (1 to MAX_RESERVE_CHUNKS of them):
        afterwards the writer may store below `reserved`. DiskFullError when the file system
        has no room (nothing is stored then)."""
        if upto <= self.reserved:
            return
        chunk = RESERVE_BYTES * min(MAX_RESERVE_CHUNKS, max(1, self.wrote // RESERVE_BYTES))
        end = min(self.size, -(-upto // chunk) * chunk)
        start = max(self.reserved, self.wrote)  # below both: written, or backed already
        if self.clock.others_write:
            self._populate(start, end)
        else:
            fd = open_fd(self.path, os.O_RDWR)
            try:
                _back_with_zeros(fd, start, end, self.path)
            finally:
                os.close(fd)
        self.reserved = end

    def _populate(self, start: int, end: int) -> None:
        """Back [start, end) through the mapping (MADV_POPULATE_WRITE), which never changes
        content: another process may have stored units there already (a shared store)."""
        err = self.mapped().populate(start, end)
        if err == errno.EINVAL:  # no MADV_POPULATE_WRITE: allocate through a descriptor
            fd = open_fd(self.path, os.O_RDWR)
            try:
                allocate(fd, start, end - start, self.path)
            finally:
                os.close(fd)
        elif err in (errno.EFAULT, errno.ENOSPC):
            raise DiskFullError(f"no space to extend consume-queue file {self.path} (or a write "
                                "error there); nothing was stored")
        elif err:
            raise OSError(err, f"reserving {self.path}: {os.strerror(err)}")

    def zero_from(self, pos: int) -> None:
        """Zero [pos, size) durably, the file staying sparse: the rest of pos's page is
        written, pages after it that hold data are punched out; no sync when nothing was not
        zero. The writer then has no room past pos until it reserves again."""
        view = self.mapped().view
        page_end = min(self.size, -(-pos // PAGE) * PAGE)
        changed = bytes(view[pos:page_end]) != bytes(page_end - pos)
        if changed:
            view[pos:page_end] = bytes(page_end - pos)
        fd = open_fd(self.path, os.O_RDWR)
        try:
            if page_end < self.size and _holds_data(fd, page_end, self.size):
                if not _native.punch_hole(fd, page_end, self.size - page_end):
                    for at in range(page_end, self.size, ZERO_CHUNK):  # no hole punching here
                        n = min(ZERO_CHUNK, self.size - at)
                        view[at:at + n] = bytes(n)
                changed = True
            if changed:
                sync_journal.fdatasync_cut(fd, self.path, pos)
        finally:
            os.close(fd)
        self.reserved = min(self.reserved, pos)

    # -- durability (any thread) ----------------------------------------------------------------
    def flush(self) -> int:
        """Make [0, wrote) durable: msync of the unsynced range through the mapping, or, while
        unmapped, fdatasync through a descriptor opened for it; returns the flushed position."""
        target = self.wrote
        if target <= self.flushed:
            return self.flushed
        m = self.pin()
        if m is not None:
            try:
                sync_journal.msync_upto(m, self.path, self.flushed, target)
            finally:
                self.unpin()
        else:
            try:
                fd = open_fd(self.path, os.O_RDWR)
            except FileNotFoundError:  # retention deleted it: nothing left to keep
                fd = -1
            if fd >= 0:
                try:
                    sync_journal.fdatasync_upto(fd, self.path, target)
                finally:
                    os.close(fd)
        self.flushed = max(self.flushed, target)
        return self.flushed

    def written_out(self, advice: str) -> None:
        """Nothing to drop: a queue file takes no advice."""

    def mtime(self) -> float:
        return os.stat(self.path).st_mtime

    def close(self) -> None:
        """Unmap (left to the process's end if a reader still holds a pin)."""
        if self.mapping is not None:
            self.clock.remove(self)
            if not self.try_unmap():
                log.debug("queue file %s still read; left mapped", self.path)

    def destroy(self) -> None:
        self.close()
        unlink_quietly(self.path)


_ZEROS = bytes(RESERVE_BYTES * MAX_RESERVE_CHUNKS)


def _back_with_zeros(fd: int, start: int, end: int, path: Path) -> None:
    """Back [start, end) with blocks by writing its zeros through fd (nothing is stored there
    yet: past both the write position and the reservation, and no other process writes the
    file): the file system reserves the
    blocks now (a full disk fails here, never a SIGBUS in a put) and the pages land in the
    page cache, so the writer's first store in each only maps it. MADV_POPULATE_WRITE did the
    same at 4.4-5.6 us a page against 0.8-1.1 written and stored into (a sparse 64 MiB file,
    1 MiB steps): the mapping is MADV_RANDOM (mapping.c), so each page was read in alone, a
    hole's zeros. A replica's dispatch spent a fifth of its time there."""
    view = memoryview(_ZEROS)
    while start < end:
        try:
            n = os.pwrite(fd, view[:min(len(view), end - start)], start)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFullError(f"no space to extend consume-queue file {path}; nothing "
                                    "was stored") from exc
            raise
        start += n


def _new_queue_file(path: Path, tmp: Path, size: int, place) -> tuple[int, int]:
    """A sparse queue file of `size` bytes (_new_file), its first RESERVE_BYTES backed where
    the file system can; returns its descriptor and how many bytes are backed."""
    def sparse(fd: int) -> int:
        os.ftruncate(fd, size)
        first = min(size, RESERVE_BYTES)
        return first if allocate(fd, 0, first, path) else 0

    return new_file(path, tmp, sparse, place)


def make_queue_file(path: Path, size: int) -> tuple[int, int]:
    """A new queue file at path, replacing any there (_new_queue_file)."""
    return _new_queue_file(path, temp_of(path), size, os.rename)


def _link_new(tmp: Path, path: Path) -> None:
    """Give tmp the name path unless a file has it (FileExistsError), then drop tmp's name."""
    os.link(tmp, path)
    os.unlink(tmp)


def read_tail(path: Path, length: int) -> bytes:
    """The last `length` bytes of a file, read through a descriptor held for the call."""
    fd = open_fd(path, os.O_RDONLY)
    try:
        return os.pread(fd, length, os.fstat(fd).st_size - length)
    finally:
        os.close(fd)


def _holds_data(fd: int, start: int, end: int) -> bool:
    """Whether fd has data (not a hole) somewhere in [start, end)."""
    try:
        return os.lseek(fd, start, os.SEEK_DATA) < end
    except OSError as exc:
        return exc.errno != errno.ENXIO  # ENXIO: only holes from start on
