"""The private bridge to the compiled hot paths. Only this module touches cffi's ffi/lib.

Everything here takes bytes, memoryviews or `Region`s and returns ints, bytes or tuples; no cdata
leaves this module. `Region` wraps one writable mapping (a segment's mmap) and caches the pointer
cffi needs, so hot calls do not re-export the buffer each time.
"""

from __future__ import annotations

import array
import ctypes
import errno
import functools
import mmap
import os
import struct
from collections.abc import Callable
from typing import Any

from .._version import __version__
from ..errors import NativeModuleError

ABI_VERSION = 41

try:
    from ._rmq import ffi, lib
except ImportError as exc:  # pragma: no cover - exercised only on a broken install
    raise NativeModuleError(
        "rmqstore's compiled module rmqstore._native._rmq is missing; reinstall with "
        "`pip install --force-reinstall .` on a machine with a C compiler"
    ) from exc

try:
    from . import _messages, _put, _send
except ImportError as exc:  # pragma: no cover - exercised only on a broken install
    raise NativeModuleError(
        f"rmqstore's compiled module {exc.name} is missing; reinstall with "
        "`pip install --force-reinstall .` on a machine with a C compiler"
    ) from exc

for _built in (lib.rmq_abi_version(), _messages.abi_version(), _put.abi_version(),
               _send.abi_version()):
    if _built != ABI_VERSION:  # pragma: no cover - stale build
        raise NativeModuleError(
            f"rmqstore {__version__} expects native ABI {ABI_VERSION}, a compiled module has "
            f"{_built}; rebuild with `pip install --force-reinstall .`"
        )

# The base of rmqstore.message.Message: the parsed fields as read-only ints, the segment's view
# and the body, made by build_messages without a Python call per message.
MessageBase = _messages.MessageBase
# The base of rmqstore.message.PutResult, and the single put that builds one in C (_put.c).
PutResultBase = _put.PutResultBase

backend = "cffi"
PARSE_FIELDS = 16


def _load_unwinder():
    """glibc loads libgcc_s the first time a thread ends through pthread_exit, which a daemon
    thread (the store's housekeeping) does at interpreter exit; with every descriptor of the
    process in use that load fails and the process aborts ("libgcc_s.so.1 must be installed
    for pthread_exit to work"). Loaded now, while a descriptor is free, it is found in memory
    then."""
    try:
        return ctypes.CDLL("libgcc_s.so.1")
    except OSError:  # another C library, or a static one: nothing to load
        return None


_unwinder = _load_unwinder()


class Region:
    """A writable mapping handed to native calls. Owned by its MappedFile; release() before
    closing the mmap."""

    __slots__ = ("ptr", "size")

    def __init__(self, mm: mmap.mmap) -> None:
        self.ptr = ffi.from_buffer("uint8_t[]", mm, require_writable=True)
        self.size = len(mm)

    def release(self) -> None:
        if self.ptr is not None:
            ffi.release(self.ptr)
            self.ptr = None


class Mapping:
    """A file mapped natively, shared and writable, that holds no descriptor (mmap(2) keeps
    the file once the descriptor is closed). Native calls take it as a Region; ``view`` is a
    memoryview over it. Owned by its QueueFile: nothing may touch it after unmap()."""

    __slots__ = ("ptr", "size", "view")

    def __init__(self, fd: int, size: int) -> None:
        """Map fd's first size bytes; OSError with mmap's errno (ENOMEM: no mapping left)."""
        err = ffi.new("int32_t[1]")
        ptr = lib.rmq_map(fd, size, err)
        if ptr == ffi.NULL:
            raise OSError(err[0], f"mmap: {os.strerror(err[0])}")
        self.ptr = ptr
        self.size = size
        self.view = memoryview(ffi.buffer(ptr, size))

    def unmap(self) -> None:
        self.view.release()
        _check(lib.rmq_unmap(self.ptr, self.size), "munmap")
        self.ptr = None

    def __del__(self) -> None:
        """Unreachable, so nothing can read it: unmapped as a Python mmap would be."""
        if getattr(self, "ptr", None) is not None:  # None also when __init__ failed
            try:
                self.view.release()
            except BufferError:  # a slice of the view lives on: it may still be read
                return
            lib.rmq_unmap(self.ptr, self.size)
            self.ptr = None

    def msync(self, start: int, end: int) -> None:
        """Make [start, end) durable (GIL released); OSError on failure."""
        _check(lib.rmq_msync(self.ptr, start, end - start), "msync")

    def populate(self, start: int, end: int) -> int:
        """Back [start, end) with blocks now (MADV_POPULATE_WRITE; content unchanged): 0, or
        the errno (EINVAL: the kernel cannot; EFAULT: no space or an I/O error)."""
        return lib.rmq_populate(self.ptr, start, end - start)


def _check(err: int, what: str) -> None:
    if err:
        raise OSError(err, f"{what}: {os.strerror(err)}")


_NULL = ffi.NULL
NULL = ffi.NULL
_out_i64 = ffi.new("int64_t[1]")
_out_i32 = ffi.new("int32_t[1]")


def crc32(data: bytes | memoryview) -> int:
    """Masked CRC32 as RocketMQ stores a body's BODYCRC."""
    return lib.rmq_crc32(ffi.from_buffer(data), len(data))


def java_hash(text: str) -> int:
    """Java String.hashCode() of text (signed 32-bit)."""
    data = text.encode()
    return lib.rmq_java_hash(data, len(data))


def new_cell(value: int = 0):
    """An int64 cell shared with C (a MappedFile's write position): read and write it as
    cell[0]. Opaque to everyone but MappedFile."""
    cell = ffi.new("int64_t[1]")
    cell[0] = value
    return cell


# Error codes of the append calls (rmq_native.h).
OK, SEGMENT_FULL = lib.RMQ_OK, lib.RMQ_SEGMENT_FULL
QUEUE_FULL, TOO_LARGE = lib.RMQ_QUEUE_FULL, lib.RMQ_TOO_LARGE
IO_ERROR, STALE, SLOW = lib.RMQ_IO_ERROR, lib.RMQ_STALE, lib.RMQ_SLOW

# Hot calls, bound once. Their first two arguments are Appender.ptr and QueueWriter.ptr;
# rmq_put's last (born host) takes bytes or NULL.
put = lib.rmq_put
put_simple = lib.rmq_put_simple


def new_putter(appender: Appender, targets: dict, lock, arrival, slow, slow_async, slow_batch,
               roll, durable, durable_batch, pending, result_type: type, batch_type: type,
               status_ok, host: bytes, plain_limit: int, max_body: int) -> _put.Putter:
    """A _put.Putter appending through appender with rmq_put_simple and rmq_put_batch.
    targets: topic -> Targets of its queues; the rest as putter.c says."""
    return _put.Putter(_address(ffi.addressof(lib, "rmq_put_simple_named")),
                       _address(ffi.addressof(lib, "rmq_put_batch")), _address(appender.ptr),
                       appender, targets, lock, arrival, slow, slow_async, slow_batch, roll,
                       durable, durable_batch, pending, result_type, batch_type, status_ok, host,
                       plain_limit, max_body)


def appender_address(appender: Appender) -> int:
    """The address of appender's rmq_log (put_sent's first argument); appender keeps it
    allocated."""
    return _address(appender.ptr)


Targets = _put.Targets  # a topic's entry in a Putter's targets (putter.c)
TARGETS_MAX_QUEUE_ID = 65535  # a larger queue id has no Targets slot (putter.c)


def plain_target(queue) -> tuple[int, object]:
    """What the native append of a Python put_batch takes for a ConsumeQueue: its rmq_queue's
    address (its waddr) and the queue."""
    return queue.waddr, queue


def queue_address(writer: QueueWriter) -> int:
    """The address of writer's rmq_queue (what the C-API puts take); writer keeps it
    allocated."""
    return _address(writer.ptr)


def _address(ptr) -> int:
    return int(ffi.cast("uintptr_t", ptr))


class Appender:
    """The commit log's write state (rmq_log): the active segment and the host addresses."""

    __slots__ = ("_empty", "_scratch", "_seg", "_stage_min", "_words", "last", "ptr")

    def __init__(self, born_host: bytes, store_host: bytes, host_flags: int,
                 batch_buffer_bytes: int = 0, stage_single_min: int = 0) -> None:
        """batch_buffer_bytes > 0: batches are staged in a buffer that size and pwritten, and
        so are single records of stage_single_min bytes or more (0: none)."""
        self.ptr = ffi.new("rmq_log *")
        self.ptr.born_host = born_host
        self.ptr.store_host = store_host
        self.ptr.host_flags = host_flags
        self._empty = ffi.new("int64_t[1]")
        self._scratch = ffi.new("uint8_t[]", batch_buffer_bytes) if batch_buffer_bytes else None
        self.ptr.scratch = self._scratch if self._scratch is not None else ffi.NULL
        self.ptr.scratch_size = batch_buffer_bytes
        self.ptr.stage_min = self._stage_min = stage_single_min
        # (last_phys, last_ts) as a memoryview over the struct: indexing it costs a third of
        # two cdata attribute reads, on the hot path of every put.
        at = ffi.offsetof("rmq_log", "last_phys") // 8
        assert ffi.offsetof("rmq_log", "last_ts") == 8 * (at + 1)
        self.last = memoryview(ffi.buffer(self.ptr)).cast("q")[at:at + 2]
        self.detach()

    def detach(self, next_start: int = 0) -> None:
        """No segment to write: every append answers SEGMENT_FULL until attach(); the next
        segment starts at next_start (where a shared store's published end must be)."""
        self._seg = None
        p = self.ptr
        p.seg = ffi.NULL
        p.seg_size = 0
        p.seg_start = next_start
        self._empty[0] = 0
        p.wrote = self._empty
        p.fd = -1

    def share(self, words) -> None:
        """Start every append at the published end at ``words`` ({log end, last store time,
        writing}: control.LOG_END's address) and publish there (a shared store)."""
        self.ptr.shared = ffi.cast("int64_t *", words)
        self._words = words

    def attach(self, seg) -> None:
        """Append into seg (a MappedFile) from its write position on."""
        self._seg = seg  # keeps the mapping referenced while C points into it
        p = self.ptr
        p.seg = seg.region.ptr
        p.seg_size = seg.size
        p.seg_start = seg.start
        p.wrote = seg.cell
        p.fd = seg.fd

    @property
    def last_phys(self) -> int:
        return self.ptr.last_phys

    @property
    def last_ts(self) -> int:
        """Store time of the last record appended (0 before any)."""
        return self.ptr.last_ts

    def stage_singles(self, every: bool) -> None:
        """Whether every single record is pwritten (when the buffer can hold it) or only those
        of stage_single_min bytes or more. Under sync flush with one record per sync, each
        record lands on the page the last sync wrote back and write-protected: through the
        mapping it takes a fault (a page_mkwrite) that a pwrite does not."""
        if self._scratch is not None:
            self.ptr.stage_min = 1 if every else self._stage_min

    @property
    def mapped_bytes(self) -> int:
        """Bytes appended through the mapping so far (single puts; batches not pwritten)."""
        return self.ptr.mapped_bytes

    def put_entries(self, q: QueueWriter, data: bytes, at: int, extra: bytes, sysflag: int,
                    born_ts: int, reconsume_times: int, born_host: bytes | None, store_ts: int,
                    whole: bool, out) -> tuple[int, int]:
        """Append the checked batch entries data[at:] (rmq_put_entries); per-record reports go
        to out (from new_entry_reports) from its start. Returns (records written, stop code)."""
        status = ffi.new("int32_t[1]")
        n = lib.rmq_put_entries(self.ptr, q.ptr, data, len(data), at, extra, len(extra), sysflag,
                                born_ts, reconsume_times,
                                born_host if born_host is not None else ffi.NULL, store_ts,
                                int(whole), out, status)
        return n, status[0]


def check_entries(data: bytes, max_body: int) -> int:
    """The number of entries of a batch body in RocketMQ's wire encoding; ValueError names the
    byte offset of the first entry whose sizes do not add up."""
    count = ffi.new("int32_t[1]")
    bad = lib.rmq_check_entries(data, len(data), max_body, count)
    if bad < 0:
        raise ValueError(f"batch entry at byte {-bad - 1}: sizes do not add up (or a body "
                         f"over {max_body} bytes)")
    return count[0]


def new_entry_reports(n: int):
    """Room for n rmq_entry_out reports; read them with entry_report."""
    return ffi.new("rmq_entry_out[]", n)


_ENTRY_REPORT = struct.Struct("=qqiiii")  # rmq_entry_out, natural alignment, no padding
assert ffi.sizeof("rmq_entry_out") == _ENTRY_REPORT.size


def entry_reports(out, n: int) -> list[tuple[int, int, int, int, int, int]]:
    """The first n reports as (phys, props_at, props_len, uniq_at, uniq_len, has_keys)."""
    return list(_ENTRY_REPORT.iter_unpack(ffi.buffer(out, n * _ENTRY_REPORT.size)))


# An rmq_queue on its own two cache lines (rmq_native.h says why)
_new_lines = ffi.new_allocator(lib.rmq_alloc_lines, lib.rmq_free_lines)


class QueueWriter:
    """A consume queue's write state (rmq_queue): topic, queue id, active file."""

    __slots__ = ("_cell", "_seg", "_units", "ptr")

    def __init__(self, topic: bytes, queue_id: int) -> None:
        self.ptr = _new_lines("rmq_queue *")
        self.ptr.topic = topic
        self.ptr.topic_len = len(topic)
        self.ptr.queue_id = queue_id
        self.ptr.deliver_delay_ms = -1
        # rmq_queue.cq_cell, which ptr keeps allocated; a QueueFile holding it as its cell
        # holds its ConsumeQueue, which holds this writer
        self._cell = ffi.addressof(self.ptr[0], "cq_cell")
        self._seg = None
        self.detach()

    def attach(self, seg) -> None:
        """Append into seg (a QueueFile, mapped) from its write position up to its reserved
        end; QUEUE_FULL there. seg's write position moves into rmq_queue.cq_cell until
        detach() (it keeps its value: a reader sees the same position in either cell)."""
        if seg is not self._seg:
            self._release()
            self._cell[0] = seg.cell[0]
            seg.cell = self._cell
            self._seg = seg
        p = self.ptr
        p.cq = seg.mapping.ptr
        p.cq_size = seg.reserved
        p.cq_start = seg.start

    def unstage(self) -> None:
        """Write the units the appends staged (rmq_queue.stage) into the attached file and
        move its write position past them; under the put lock. Until then a reader of the
        file sees the queue without them: every lookup of a queue for reading calls this
        (ConsumeQueueTable.get), and so does everything that reads or moves the file's end
        under the put lock (detach, truncation, flush)."""
        if self.ptr.staged:
            lib.rmq_queue_unstage(self.ptr)

    def _release(self) -> None:
        """The attached file's write position goes back to a cell of its own. A reader reads
        a cell in one step (seg.cell[0]: no thread switch between its two bytecodes), so it
        never reads this one once another file took it."""
        self.unstage()
        seg, self._seg = self._seg, None
        if seg is not None:
            seg.cell = new_cell(self._cell[0])

    def detach(self, next_start: int = 0) -> None:
        """No file to write: every append answers QUEUE_FULL until attach(); the next file
        starts at byte next_start of the unit stream."""
        self._release()
        p = self.ptr
        p.cq = ffi.NULL
        p.cq_size = 0
        p.cq_start = next_start
        self._cell[0] = 0

    def share(self, units) -> None:
        """Start every append at the published unit count at ``units`` (the queue's slot in
        a shared store's control file) and publish there."""
        self.ptr.shared_units = ffi.cast("int64_t *", units)
        self._units = units

    @property
    def attached(self):
        """The file appends go to, or None."""
        return self._seg

    def take_touched(self) -> bool:
        """Whether a unit was appended since the last call (the mapping clock's cue)."""
        p = self.ptr
        touched = p.touched
        p.touched = 0
        return bool(touched)

    @property
    def max_phys(self) -> int:
        return self.ptr.max_phys

    @max_phys.setter
    def max_phys(self, value: int) -> None:
        self.ptr.max_phys = value


def scan(seg: Region | mmap.mmap, seg_start: int, pos: int,
         check_crc: bool) -> tuple[int, int, int]:
    """Walk valid records from pos of a segment starting at offset seg_start. Returns (end
    position, status, position of the last valid record or -1): status 1 = clean BLANK end of
    segment, 0 = invalid or unwritten bytes, 2 = reached the segment's end."""
    ptr, size = _ro(seg)
    status = ffi.new("int32_t[1]")
    last = ffi.new("int64_t[1]", [-1])
    end = lib.rmq_scan(ptr, size, seg_start, pos, 1 if check_crc else 0, status, last)
    return end, status[0], last[0]


def resync(seg: Region | mmap.mmap, seg_start: int, pos: int, end: int) -> int:
    """The first position in [pos, end) of a segment starting at seg_start where a valid
    record (CRC checked) lies at its own offset; -1 when none does."""
    ptr, size = _ro(seg)
    return lib.rmq_resync(ptr, size, seg_start, pos, end)


def zero_range(fd: int, start: int, length: int) -> bool:
    """Zero a file range by punching a hole and allocating it again; False where the file
    system cannot."""
    return lib.rmq_zero_range(fd, start, length) == 0


def punch_hole(fd: int, start: int, length: int) -> bool:
    """Zero a file range by punching a hole (the file keeps its size); False where the file
    system cannot."""
    return lib.rmq_punch_hole(fd, start, length) == 0


def write_zeros(fd: int, start: int, length: int) -> int:
    """Write zeros over a file range that holds zeros already and start its write-back (GIL
    released): its blocks are written ones when a later sync covers them. 0 or errno."""
    return lib.rmq_write_zeros(fd, start, length)


def syncfs(fd: int) -> None:
    """Make everything written to fd's file system durable; OSError on failure."""
    _check(lib.rmq_syncfs(fd), "syncfs")


def scan_units(cq: Region | Mapping, from_pos: int, size: int,
               max_phys: int) -> tuple[int, int]:
    """(the position of the first unit from from_pos that is not a unit, the end of the record
    of the last unit before it, max_phys when there is none); see rmq_scan_units."""
    out = ffi.new("int64_t[1]", [max_phys])
    end = lib.rmq_scan_units(cq.ptr, from_pos, size, out)
    return end, out[0]


def readahead_queue(cq: Region | Mapping, from_pos: int, to_pos: int, table: SegmentTable,
                    max_bytes: int) -> int:
    """Ask the kernel to read the records of units cq[from_pos..to_pos) ahead (up to max_bytes
    of them) unless they are cached; returns the position after the last unit covered."""
    return lib.rmq_readahead_queue(cq.ptr, from_pos, to_pos, table.ptr, max_bytes)


def parse(seg: Region | mmap.mmap, pos: int, check_crc: bool = False) -> tuple[int, ...] | None:
    """Parse the record at pos: a 16-tuple (see record.RecordField), () for a BLANK filler,
    None when the bytes are not a valid record."""
    ptr, size = _ro(seg)
    out = ffi.new("int64_t[16]")
    n = lib.rmq_parse(ptr, size, pos, 1 if check_crc else 0, out)
    if n < 0:
        return None
    if n == 0:
        return ()
    return tuple(out)


MSG_FIELDS = lib.RMQ_MSG_FIELDS


class SegmentTable:
    """The commit log's segments as C sees them (rmq_segtable); rebuilt when the segment list
    changes. Holds the segments so their mappings outlive any read using the table."""

    __slots__ = ("_keep", "ptr", "segments")

    def __init__(self, segments: list, seg_size: int) -> None:
        self.segments = segments
        n = len(segments)
        bases = ffi.new("uint8_t *[]", [s.region.ptr for s in segments] or [ffi.NULL])
        ends = ffi.new("int64_t *[]", [s.cell for s in segments] or [ffi.NULL])
        self.ptr = ffi.new("rmq_segtable *")
        self.ptr.segs = bases
        self.ptr.ends = ends
        self.ptr.n_segs = n
        self.ptr.first_start = segments[0].start if n else 0
        self.ptr.seg_size = seg_size
        self._keep = (bases, ends)


def read_queue(cq: Region, from_pos: int, to_pos: int, codes: tuple[int, ...] | None,
               table: SegmentTable, check_crc: bool,
               max_out: int) -> tuple[bytearray, int, int, int, int]:
    """Messages behind CQ units [from_pos, to_pos): (fields, count, units scanned, units whose
    record is gone, units whose record is corrupt). fields holds MSG_FIELDS native int64 per
    message (a bytearray: an array.array built from zeroes cost more than the read)."""
    out = bytearray(8 * MSG_FIELDS * max_out)
    scanned = ffi.new("int64_t[1]")
    skipped = ffi.new("int32_t[2]")
    if codes is None:
        filt, cs, nc = 0, _NULL, 0
    else:
        filt, cs, nc = 1, ffi.new("int32_t[]", list(codes)), len(codes)
    n = lib.rmq_read_queue(cq.ptr, from_pos, to_pos, filt, cs, nc, table.ptr,
                           1 if check_crc else 0,
                           ffi.from_buffer("int64_t[]", out), max_out,
                           scanned, skipped)
    return out, n, scanned[0], skipped[0], skipped[1]


def build_messages(cls: type, fields: bytearray, n: int, segments: list,
                   max_body_bytes: int) -> list:
    """n instances of cls (a MessageBase subclass) over the fields read_queue parsed, each with
    its segment's view and its body copied out (a compressed one is left for cls._inflate),
    made in one native call. segments: the table's, indexed by the fields' segment index."""
    if n == 0:
        return []
    stride = MSG_FIELDS
    ints = memoryview(fields).cast("q")
    lo = hi = ints[stride - 1]
    if ints[n * stride - 1] != lo:  # the read crossed a segment's end
        touched = ints[stride - 1:n * stride:stride]
        lo, hi = min(touched), max(touched)
    views = [memoryview(segments[i].mm) for i in range(lo, hi + 1)]
    return _messages.build(cls, fields, n, views, lo, max_body_bytes)


def read_bodies(cq: Region, from_pos: int, to_pos: int, table: SegmentTable, max_out: int,
                capacity: int) -> tuple[bytearray, array.array, int, int]:
    """Stored bodies behind CQ units, copied back to back into a buffer sized by a counting
    pass: (data, body ends, units scanned, units whose record is gone)."""
    scanned = ffi.new("int64_t[1]")
    skipped = ffi.new("int32_t[2]")
    ends = array.array("q", bytes(8 * max_out))
    ends_ptr = ffi.from_buffer("int64_t[]", ends, require_writable=True)
    n = lib.rmq_read_bodies(cq.ptr, from_pos, to_pos, table.ptr, _NULL, capacity, ends_ptr,
                            max_out, scanned, skipped)
    data = bytearray(ends[n - 1] if n else 0)
    if n:  # the same units again, copying (a second pass with max_out 0 would scan none)
        n = lib.rmq_read_bodies(cq.ptr, from_pos, to_pos, table.ptr, ffi.from_buffer(data),
                                len(data), ends_ptr, n, scanned, skipped)
    ffi.release(ends_ptr)
    del ends[n:]
    return data, ends, scanned[0], skipped[0]


def read_bodies_pread(cq: Region, from_pos: int, to_pos: int, table: SegmentTable,
                      fds: list[int], scratch: bytearray, max_out: int, capacity: int,
                      map_runs: bool = True) -> tuple[bytearray, array.array, int, int]:
    """read_bodies's answer, the records brought in a run at a time: mapped in (map_runs), or
    read with pread from fds (one per table segment, -1: through the mapping) into scratch."""
    scanned = ffi.new("int64_t[1]")
    skipped = ffi.new("int32_t[2]")
    ends = array.array("q", bytes(8 * max_out))
    ends_ptr = ffi.from_buffer("int64_t[]", ends, require_writable=True)
    # Sized from the units, not by a counting pass: that would fault the records in.
    capacity = min(capacity, lib.rmq_units_body_bound(cq.ptr, from_pos, to_pos, max_out))
    data = bytearray(capacity)
    n = lib.rmq_read_bodies_pread(cq.ptr, from_pos, to_pos, table.ptr, ffi.new("int32_t[]", fds),
                                  ffi.from_buffer(scratch), len(scratch), ffi.from_buffer(data),
                                  capacity, ends_ptr, max_out, scanned, skipped, map_runs)
    ffi.release(ends_ptr)
    del ends[n:]
    del data[ends[n - 1] if n else 0:]
    return data, ends, scanned[0], skipped[0]


def record_resident(table: SegmentTable, phys: int, size: int) -> int:
    """1: the record's first page is in the page cache; 0: not; -1: not in the table."""
    return lib.rmq_record_resident(table.ptr, phys, size)


def index_put(idx: Region, slot_num: int, index_num: int, key: bytes, phys: int,
              store_ts: int) -> bool:
    """Insert key into the index file; False when the file is full."""
    return lib.rmq_index_put(idx.ptr, slot_num, index_num, key, len(key), phys, store_ts) == 1


def index_put_keys(idx: Region, slot_num: int, index_num: int, topic: str, keys: list[str],
                   phys: int, store_ts: int) -> int:
    """index_put of each key as topic#key, in one call: how many went in before the file was
    full."""
    return _send.index_keys(int(ffi.cast("uintptr_t", idx.ptr)), slot_num, index_num, topic,
                            keys, phys, store_ts)  # _address's cast, without its call


def index_file_address(index_file: Any) -> tuple[int, int, int]:
    """(the mapped address, slots, entries) of an IndexFile: what SendPath.serve indexes
    keys into."""
    return (int(ffi.cast("uintptr_t", index_file.seg.region.ptr)), index_file.slots,
            index_file.entries)


def index_get(idx: Region, slot_num: int, index_num: int, key: bytes, begin_ms: int,
              end_ms: int, max_out: int) -> list[int]:
    """Physical offsets of entries whose hash matches key within [begin_ms, end_ms]."""
    out = ffi.new("int64_t[]", max_out)
    n = lib.rmq_index_get(idx.ptr, slot_num, index_num, key, len(key), begin_ms, end_ms, out,
                          max_out)
    return list(out[0:n])


# Why append_raw stopped (rmq_native.h).
RAW_MORE, RAW_SEGMENT_END = lib.RMQ_RAW_MORE, lib.RMQ_RAW_SEGMENT_END
RAW_INVALID, RAW_IO_ERROR = lib.RMQ_RAW_INVALID, lib.RMQ_RAW_IO_ERROR


def read_raw(seg: Region, wrote: int, pos: int, max_bytes: int, head_room: int = 0) -> bytearray:
    """A segment's raw bytes [pos, min(wrote, pos + max_bytes)), copied natively into a new
    buffer after ``head_room`` bytes left for the caller (a frame header)."""
    n = max(0, min(wrote - pos, max_bytes))
    out = bytearray(head_room + n)
    if n:
        got = lib.rmq_read_raw(seg.ptr, wrote, pos, n, ffi.from_buffer(out) + head_room)
        assert got == n
    return out


def read_raw_into(seg: Region, wrote: int, pos: int, dst: memoryview) -> int:
    """read_raw into ``dst`` (at most len(dst) bytes); returns the count."""
    n = max(0, min(wrote - pos, len(dst)))
    if n:
        got = lib.rmq_read_raw(seg.ptr, wrote, pos, n, ffi.from_buffer(dst, require_writable=True))
        assert got == n
    return n


def append_raw(seg, data, at: int = 0) -> tuple[int, int, int]:
    """Append the whole, valid records of data[at:] (a master's raw bytes) at seg's write
    position (seg: a MappedFile); returns (bytes appended, stop status, store time of the last
    record appended or 0)."""
    status = ffi.new("int32_t[1]")
    last_ts = ffi.new("int64_t[1]")
    src = ffi.from_buffer(data)
    n = lib.rmq_append_raw(seg.region.ptr, seg.fd, seg.size, seg.start, seg.cell, src + at,
                           len(data) - at, status, last_ts)
    return n, status[0], last_ts[0]


def _field(name: str, doc: str) -> property:
    """A read-only int field of the struct a wrapper keeps as ``self._f``."""
    return property(lambda self: getattr(self._f, name), doc=doc)


# Why rmq_follow returned (rmq_native.h).
FOLLOW_SEGMENT, FOLLOW_APPENDED = lib.RMQ_FOLLOW_SEGMENT, lib.RMQ_FOLLOW_APPENDED
FOLLOW_CLOSED, FOLLOW_SILENT = lib.RMQ_FOLLOW_CLOSED, lib.RMQ_FOLLOW_SILENT
FOLLOW_BAD_HEADER, FOLLOW_GAP = lib.RMQ_FOLLOW_BAD_HEADER, lib.RMQ_FOLLOW_GAP
FOLLOW_TOO_LONG, FOLLOW_BAD_RECORD = lib.RMQ_FOLLOW_TOO_LONG, lib.RMQ_FOLLOW_BAD_RECORD
FOLLOW_IO_ERROR = lib.RMQ_FOLLOW_IO_ERROR


class Follower:
    """A slave's native HA loop (rmq_follower) on one connected socket. ``follow()`` blocks
    without the GIL until Python has something to do, and says what (FOLLOW_*). One thread;
    ``release()`` once it returned for the last time."""

    def __init__(self, sock: int, offset: int, max_body: int, max_pending: int,
                 heartbeat_ms: int, housekeeping_ms: int, gather_bytes: int,
                 gather_idle_ms: int, gather_max_ms: int, defer_bytes: int,
                 defer_max_ms: int) -> None:
        f = self._f = ffi.new("rmq_follower *")
        f.sock, f.offset, f.max_body, f.max_pending = sock, offset, max_body, max_pending
        f.heartbeat_ms, f.housekeeping_ms = heartbeat_ms, housekeeping_ms
        f.gather_bytes, f.gather_idle_ms, f.gather_max_ms = (gather_bytes, gather_idle_ms,
                                                             gather_max_ms)
        f.defer_bytes, f.defer_max_ms = defer_bytes, defer_max_ms
        self._seg = None  # the MappedFile appended to, kept alive while C writes it
        if lib.rmq_follower_init(f):
            raise MemoryError("HA receive buffer")

    def follow(self) -> int:
        return lib.rmq_follow(self._f)

    def set_segment(self, seg) -> None:
        """Append into seg (a MappedFile) from its write position on."""
        f = self._f
        f.seg, f.seg_fd, f.seg_size, f.seg_start = seg.region.ptr, seg.fd, seg.size, seg.start
        f.seg_wrote = seg.cell
        self._seg = seg

    offset = _field("offset", "Where the next log byte goes; -1 while an empty replica waits "
                              "for a first frame.")

    def take_appended(self) -> int:
        """Bytes appended since the last call."""
        return lib.rmq_follower_take_appended(self._f)

    deferring = _field("deferring", "After a FOLLOW_SEGMENT return: a catch-up holds the "
                                    "dispatch back (its flush cue is still due).")
    catch_ups = _field("catch_ups", "Catch-ups this link has seen.")
    empty_receives = _field("empty_receives", "Receives that found the socket empty: the "
                                              "loop polls first once it knows it is.")

    @property
    def bad_header(self) -> tuple[int, int]:
        return self._f.bad_offset, self._f.bad_size

    errno = _field("err", "errno of the failure that ended the link (0: none).")

    def slow_writes(self, delay_us: int) -> None:
        """Tests: sleep delay_us before each append (a slow disk)."""
        self._f.write_delay_us = delay_us

    def release(self) -> None:
        lib.rmq_follower_release(self._f)
        self._seg = None


# Why rmq_feed returned (rmq_native.h).
FEED_SEGMENT, FEED_CLOSED, FEED_BAD_REPORT = (lib.RMQ_FEED_SEGMENT, lib.RMQ_FEED_CLOSED,
                                              lib.RMQ_FEED_BAD_REPORT)
FEED_AWAKE, FEED_ENDING = lib.RMQ_FEED_AWAKE, lib.RMQ_FEED_ENDING  # take_reports' answers


class Feeder:
    """A master's native HA loop to one slave (rmq_feeder) on a connected socket's descriptor.
    ``feed()`` blocks without the GIL until the link needs the next segment or ends (FEED_*);
    one thread calls it, any thread may wake(), notify_at() or stop()."""

    def __init__(self, sock: int, wake_fd: int, ack_fd: int, start: int, batch: int,
                 heartbeat_ms: int) -> None:
        f = self._f = ffi.new("rmq_feeder *")
        f.sock, f.wake_fd, f.ack_fd = sock, wake_fd, ack_fd
        f.next, f.batch, f.heartbeat_ms = start, batch, heartbeat_ms
        lib.rmq_feeder_init(f)
        # The calls a SYNC_MASTER's event loop makes per acknowledgement, bound: no Python
        # frame of their own (partial holds the cdata; nothing outside this class sees it).
        # push(): send what is new from this thread while the loop sleeps (else wake it);
        # nonzero when frames went. notify_at(end): write ack_fd once acked reaches end;
        # returns acked as it is now.
        self.push: Callable[[], int] = functools.partial(lib.rmq_feeder_push, f)
        self.notify_at: Callable[[int], int] = functools.partial(lib.rmq_feeder_notify_at, f)
        self._view: memoryview | None = None  # the segment's mapping, kept mapped meanwhile
        self._ptr = None
        self._seg = None

    def feed(self) -> int:
        return lib.rmq_feed(self._f)

    def set_segment(self, seg) -> None:
        """Send from seg (a MappedFile), or None: the log ends where the next one starts. The
        mapping stays mapped while it is sent from (a retired segment is unmapped later)."""
        f = self._f
        old, self._view, self._ptr = self._view, None, None
        if seg is None:
            f.seg_wrote = ffi.NULL
        else:
            self._view = memoryview(seg.mm)
            self._ptr = ffi.from_buffer(self._view)
            f.seg = self._ptr
            f.seg_start, f.seg_size, f.seg_wrote = seg.start, seg.size, seg.cell
        self._seg = seg
        if old is not None:
            old.release()

    def wake(self) -> None:
        lib.rmq_feeder_wake(self._f)

    def take_reports(self) -> int:
        """The reports that came while the loop sleeps: acked, or FEED_AWAKE / FEED_ENDING."""
        return lib.rmq_feeder_take_reports(self._f)

    def loop_reads(self, on: bool) -> None:
        """The caller takes the reports that come while the loop sleeps (or no longer)."""
        lib.rmq_feeder_loop_reads(self._f, on)

    def stop(self) -> None:
        lib.rmq_feeder_stop(self._f)

    next = _field("next", "Where the next frame starts.")
    acked = _field("acked", "The slave's last report (-1: none yet).")
    last_read_ms = _field("last_read_ms", "CLOCK_MONOTONIC ms of the last report.")
    bad_report = _field("bad_report", "The report that ended the link (FEED_BAD_REPORT).")
    errno = _field("err", "errno of the failure that ended the link (0: none).")

    def release(self) -> None:
        """After the last feed(): the mapping may go."""
        self.set_segment(None)


DISPATCH_FIELDS = lib.RMQ_DISPATCH_FIELDS
OUT_OF_ORDER = lib.RMQ_OUT_OF_ORDER
# Why a dispatch stopped (rmq_native.h).
DISPATCH_MORE, DISPATCH_BLANK = lib.RMQ_DISPATCH_MORE, lib.RMQ_DISPATCH_BLANK
DISPATCH_INVALID, DISPATCH_SLOW = lib.RMQ_DISPATCH_INVALID, lib.RMQ_DISPATCH_SLOW


def scan_dispatch(seg: Region, pos: int, end: int,
                  max_out: int) -> tuple[array.array, int, int, int]:
    """Records of a segment's [pos, end) as a replica dispatches them: (fields,
    DISPATCH_FIELDS int64 per record; count; position after them; DISPATCH_* status)."""
    out = array.array("q", bytes(8 * DISPATCH_FIELDS * max_out))
    nxt = ffi.new("int64_t[1]")
    status = ffi.new("int32_t[1]")
    n = lib.rmq_scan_dispatch(seg.ptr, seg.size, pos, end,
                              ffi.from_buffer("int64_t[]", out), max_out,
                              nxt, status)
    return out, n, nxt[0], status[0]


# A replica's consume-queue unit: (QueueWriter.ptr, queue offset, phys, size, tags code) -> 0,
# -QUEUE_FULL or -OUT_OF_ORDER.
add_unit = lib.rmq_add_unit


class Dispatcher:
    """A replica's native dispatch (rmq_dispatcher and its queue map). Keeps every QueueWriter
    it was given alive, since the map points at them. One thread at a time."""

    def __init__(self, delays_ms: tuple[int, ...], delay_topic: bytes, index_on: bool,
                 max_records: int) -> None:
        d = self._d = ffi.new("rmq_dispatcher *")
        self._delays = ffi.new("int64_t[]", list(delays_ms) or [0])
        d.delays_ms = self._delays
        d.n_delays = len(delays_ms)
        d.delay_topic = delay_topic
        d.delay_topic_len = len(delay_topic)
        d.index_on = index_on
        self._touched = ffi.new("int32_t[]", max_records)
        d.touched = self._touched
        self.max_records = max_records
        self._writers: list[QueueWriter] = []
        self._map_cap = 0
        self._grow(64)
        self._next = ffi.new("int64_t[1]")
        self._status = ffi.new("int32_t[1]")

    def _grow(self, cap: int) -> None:
        m = ffi.new("rmq_qmap *")
        arrays = (ffi.new("rmq_queue *[]", cap), ffi.new("int32_t[]", cap),
                  ffi.new("int32_t[]", cap))
        m.queues, m.ids, m.stamps = arrays
        m.cap = cap
        self._map, self._arrays, self._map_cap = m, arrays, cap
        self._d.queues = m
        for i, w in enumerate(self._writers):
            lib.rmq_qmap_put(m, w.ptr, i)

    def add_queue(self, writer: QueueWriter) -> int:
        """Put a queue in the map; returns its id (what run() reports when it grows)."""
        qid = len(self._writers)
        self._writers.append(writer)
        if lib.rmq_qmap_put(self._map, writer.ptr, qid):
            self._grow(self._map_cap * 2)
        return qid

    def index_file(self, idx: Region | None, slot_num: int, index_num: int) -> None:
        """The index file keys go to (the last one), or None."""
        d = self._d
        d.idx = idx.ptr if idx is not None else ffi.NULL
        d.slot_num = slot_num
        d.index_num = index_num

    def run(self, seg: Region, pos: int, end: int) -> tuple[int, int, int]:
        """rmq_dispatch over seg[pos, end), GIL released: (records, position after them,
        DISPATCH_* status); done() says what the call did."""
        n = lib.rmq_dispatch(self._d, seg.ptr, seg.size, pos, end, self.max_records,
                             self._next, self._status)
        return n, self._next[0], self._status[0]

    def done(self) -> tuple[list[int], int, int]:
        """What the last run() did: (ids of the queues it grew, index entries it wrote, store
        time of its last record)."""
        d = self._d
        return list(self._touched[0:d.n_touched]), d.keys, d.last_ts


def populate(seg: Region, start: int, length: int) -> bool:
    """Fault in seg's pages [start, start + length) without touching their content (GIL
    released); False where the kernel lacks MADV_POPULATE_WRITE (or a page failed)."""
    if seg.ptr is None:
        return False
    return lib.rmq_populate(seg.ptr, start, min(length, seg.size - start)) == 0


NO_POPULATE = errno.EINVAL  # what rmq_populate answers where the kernel cannot


def _ro(buf: Region | Mapping | mmap.mmap):
    if isinstance(buf, (Region, Mapping)):
        return buf.ptr, buf.size
    return ffi.from_buffer("uint8_t[]", buf), len(buf)


class Syncer:
    """rmq_syncer: fdatasync on a native thread, one job at a time, each completion announced
    on the eventfd given (the owner reads it, then ``done()``). ``close()`` stops the thread."""

    __slots__ = ("_done_err", "_s")

    def __init__(self, efd: int) -> None:
        s = lib.rmq_syncer_new(efd)
        if s == ffi.NULL:
            raise OSError("cannot start the native sync thread")
        self._s = s
        self._done_err = ffi.new("int32_t[1]")

    def submit(self, fd: int, cell, delay_us: int = 0, want: int = 0, waiting: int = 0) -> bool:
        """Wait up to ``delay_us`` until ``want`` records wait (``waiting`` now, each
        ``waiting_one_more()`` adds one), then read the write position in ``cell`` (a new_cell,
        kept alive by the caller until done) and fdatasync(fd). False while a job is pending
        or running."""
        return lib.rmq_syncer_submit(self._s, fd, cell, delay_us, want, waiting) == 0

    def waiting_one_more(self) -> None:
        """One more record waits for the job in flight (it may end its delay)."""
        lib.rmq_syncer_waiting(self._s)

    def done(self) -> tuple[int, int]:
        """(the position the last completed job made durable or -1, its errno or 0)."""
        upto = lib.rmq_syncer_done(self._s, self._done_err)
        return upto, self._done_err[0]

    def close(self) -> None:
        if self._s is not None:
            lib.rmq_syncer_free(self._s)
            self._s = None


# -- the control file of a store several processes share (shared/control.py) -------------
MUTEX_BYTES = lib.RMQ_MUTEX_BYTES
_ETIMEDOUT, _EBUSY = 110, 16


def region_address(region: Region, at: int):
    """A native pointer to byte ``at`` of a mapping; valid while the Region is. Opaque to
    everyone but the appenders' ``share`` methods and the calls below."""
    return region.ptr + at


def mutex_init(region: Region, at: int) -> None:
    rc = lib.rmq_mutex_init(region.ptr + at)
    if rc:
        raise OSError(-rc, "cannot initialize a process-shared robust mutex")


def mutex_lock(mutex, died, timeout_ns: int) -> int | None:
    """Lock the mutex at pointer ``mutex`` (GIL released while waiting): 0 locked, 1 locked
    with *died set (repair first), None when timeout_ns ran out (0: just tried)."""
    rc = lib.rmq_mutex_lock(mutex, died, timeout_ns)
    if rc >= 0:
        return rc
    if rc in (-_ETIMEDOUT, -_EBUSY):
        return None
    raise OSError(-rc, "locking a process-shared mutex failed")


def mutex_failed(rc: int) -> bool:
    """What mutex_lock_raw answered: True when not locked (busy or timed out); OSError for
    any other failure; False when locked (0, or 1: repair first)."""
    if rc >= 0:
        return False
    if rc in (-_ETIMEDOUT, -_EBUSY):
        return True
    raise OSError(-rc, "locking a process-shared mutex failed")


mutex_lock_raw = lib.rmq_mutex_lock  # (mutex, died, timeout_ns): 0, 1 or -errno
# (mutex, died, seq, waiters, sync_failed, log, queue, body, len): a plain put under the
# write mutex
put_simple_shared = lib.rmq_put_simple_shared
mutex_unlock = lib.rmq_mutex_unlock
release_and_wake = lib.rmq_release_and_wake  # (mutex, seq, waiters) pointers
futex_wake = lib.rmq_futex_wake


DURABLE_TIMEOUT, DURABLE_DONE, DURABLE_SYNCED = (
    lib.RMQ_DURABLE_TIMEOUT, lib.RMQ_DURABLE_DONE, lib.RMQ_DURABLE_SYNCED)
DURABLE_AGAIN, DURABLE_HOLDING = lib.RMQ_DURABLE_AGAIN, lib.RMQ_DURABLE_HOLDING


def shared_commit(region: Region, words: dict[str, int], mutex: int, delay_s: float,
                  recheck_s: float, timeout_s: float):
    """The native group commit's view of a control file (rmq_shared_commit): ``words`` names
    the byte offsets of its fields in ``region``, ``mutex`` the flush mutex's."""
    gc = ffi.new("rmq_shared_commit *")
    for name, at in words.items():
        setattr(gc, name, ffi.cast(ffi.typeof(getattr(gc, name)), region.ptr + at))
    gc.mutex = region.ptr + mutex
    gc.delay_ns, gc.recheck_ns = int(delay_s * 1e9), int(recheck_s * 1e9)
    gc.timeout_ns = int(timeout_s * 1e9)
    return gc


def durable_wait(offset: int, fd: int, seg_start: int, seg_size: int, journal_fd: int,
                 journal_prefix: bytes):
    """One wait of durable_wait_shared: until [0, offset) is durable, syncing fd (the caller's
    last commit-log segment, at seg_start; -1: never) when it holds all that is not, and then
    writing journal_prefix and the length synced to journal_fd (-1: none). The cdata holds
    the prefix."""
    w = ffi.new("rmq_durable_wait *", {"offset": offset, "fd": fd, "seg_start": seg_start,
                                       "seg_size": seg_size, "journal_fd": journal_fd})
    if journal_fd < 0:
        return w
    w.journal_prefix = prefix = ffi.new("char[]", journal_prefix)
    w.journal_len = len(journal_prefix)
    return ffi.gc(w, lambda _: prefix)  # the prefix lives as long as w


durable_wait_shared = lib.rmq_durable_wait_shared  # (shared_commit, durable_wait): DURABLE_*


def wait_for_change(seq, waiters, seen: int, timeout_s: float) -> None:
    """Sleep while the 32-bit word at ``seq`` equals ``seen``, up to timeout_s (GIL
    released), counted in the word at ``waiters``."""
    lib.rmq_wait_for_change(seq, waiters, seen, int(timeout_s * 1e9))


def as_i32(ptr):
    """``ptr`` (from region_address) as the int32_t * the mutex calls take for *died."""
    return ffi.cast("int32_t *", ptr)


def as_i64(ptr):
    return ffi.cast("int64_t *", ptr)


def new_send_path(cluster: str, skip_names: frozenset[str], max_header_bytes: int,
                  answer_pieces: tuple[bytes, ...] = (b"",) * 5) -> _send.SendPath:
    """A _send.SendPath (send_path.c): one per broker, used on its event loop only.
    ``parse(frame)`` gives the reason code (an int, see rmq_native.h) of a request left to the
    Python handler, or the tuple (code, opaque, topic, queue_id, flag, born_ts,
    reconsume_times, wait, properties as stored, UNIQ_KEY or "", KEYS or "", tags_code, body);
    ``answer(opaque, host, phys, queue_id, queue_offset)`` the SUCCESS frame made of
    ``answer_pieces`` (JsonFrameTemplate.pieces)."""
    skip = "".join(f"{name}\n" for name in sorted(skip_names)).encode()
    return _send.SendPath(_address(ffi.addressof(lib, "rmq_send_parse")), cluster.encode(),
                          skip, max_header_bytes, answer_pieces)


# put_sent(log, queue, body, props, tags_code, flag, born_ts, reconsume_times, born_host):
# rmq_put of a broker's common send (sysflag 0, the IPv6 bit for a 20-byte born host, None for
# the log's own) by the Appender's and the queue's addresses, in one C-API call without a
# GIL drop: (queue offset, commit-log offset, store time), or rmq_put's code < 0.
_send.bind(_address(ffi.addressof(lib, "rmq_put")),
           _address(ffi.addressof(lib, "rmq_index_put")))
put_sent = _send.put_sent
# A server connection's data_received in C while its reads are plain sends (send_front.c).
ReadFront = _send.ReadFront
