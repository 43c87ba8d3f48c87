"""The private bridge to the compiled hot paths. Only this module touches cffi's ffi/lib.

Everything here takes bytes, memoryviews or `Region`s and returns ints, bytes or tuples; no cdata
leaves this module. `Region` wraps one writable mapping (a segment's mmap) and caches the pointer
cffi needs, so hot calls do not re-export the buffer each time.
"""

from __future__ import annotations

import array
import mmap
import struct

from .._version import __version__
from ..errors import NativeModuleError

ABI_VERSION = 11

try:
    from ._rmq import ffi, lib
except ImportError as exc:  # pragma: no cover - exercised only on a broken install
    raise NativeModuleError(
        "rmqstore's compiled module rmqstore._native._rmq is missing; reinstall with "
        "`pip install --force-reinstall .` on a machine with a C compiler"
    ) from exc

if lib.rmq_abi_version() != ABI_VERSION:  # pragma: no cover - stale build
    raise NativeModuleError(
        f"rmqstore {__version__} expects native ABI {ABI_VERSION}, the compiled module has "
        f"{lib.rmq_abi_version()}; rebuild with `pip install --force-reinstall .`"
    )

backend = "cffi"
PARSE_FIELDS = 16


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


class Appender:
    """The commit log's write state (rmq_log): the active segment and the host addresses."""

    __slots__ = ("_empty", "_scratch", "_seg", "_words", "last", "ptr")

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
        self.ptr.stage_min = stage_single_min
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

    @property
    def mapped_bytes(self) -> int:
        """Bytes appended through the mapping so far (single puts; batches not pwritten)."""
        return self.ptr.mapped_bytes

    def put_batch(self, q: QueueWriter, bodies: bytes, lens: array.array, first: int,
                  body_at: int, out_phys: array.array, props: bytes, tags_code: int,
                  flag: int, store_ts: int) -> tuple[int, int]:
        """Append bodies lens[first:] (their bytes from bodies[body_at]); offsets go to
        out_phys[first:]; store_ts 0 stamps them now. Returns (records written, stop code)."""
        status = ffi.new("int32_t[1]")
        src = ffi.from_buffer(bodies)
        n = lib.rmq_put_batch(self.ptr, q.ptr, src + body_at,
                              ffi.from_buffer("int32_t[]", lens) + first, len(lens) - first,
                              props, len(props), tags_code, flag, store_ts,
                              ffi.from_buffer("int64_t[]", out_phys, require_writable=True) + first,
                              status)
        return n, status[0]


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


class QueueWriter:
    """A consume queue's write state (rmq_queue): topic, queue id, active file."""

    __slots__ = ("_empty", "_seg", "_units", "ptr")

    def __init__(self, topic: bytes, queue_id: int) -> None:
        self.ptr = ffi.new("rmq_queue *")
        self.ptr.topic = topic
        self.ptr.topic_len = len(topic)
        self.ptr.queue_id = queue_id
        self._empty = ffi.new("int64_t[1]")
        self.detach()

    def attach(self, seg) -> None:
        self._seg = seg
        p = self.ptr
        p.cq = seg.region.ptr
        p.cq_size = seg.size
        p.cq_start = seg.start
        p.cq_wrote = seg.cell

    def detach(self, next_start: int = 0) -> None:
        """No file to write: every append answers QUEUE_FULL until attach(); the next file
        starts at byte next_start of the unit stream."""
        self._seg = None
        p = self.ptr
        p.cq = ffi.NULL
        p.cq_size = 0
        p.cq_start = next_start
        self._empty[0] = 0
        p.cq_wrote = self._empty

    def share(self, units) -> None:
        """Start every append at the published unit count at ``units`` (the queue's slot in
        a shared store's control file) and publish there."""
        self.ptr.shared_units = ffi.cast("int64_t *", units)
        self._units = units

    @property
    def max_phys(self) -> int:
        return self.ptr.max_phys

    @max_phys.setter
    def max_phys(self, value: int) -> None:
        self.ptr.max_phys = value


def scan(seg: Region | mmap.mmap, seg_start: int, pos: int, check_crc: bool) -> tuple[int, int]:
    """Walk valid records from pos of a segment starting at offset seg_start. Returns (end
    position, status): status 1 = clean BLANK end of segment, 0 = invalid or unwritten bytes,
    2 = reached the segment's end."""
    ptr, size = _ro(seg)
    status = ffi.new("int32_t[1]")
    end = lib.rmq_scan(ptr, size, seg_start, pos, 1 if check_crc else 0, status)
    return end, status[0]


def resync(seg: Region | mmap.mmap, seg_start: int, pos: int, end: int) -> int:
    """The first position in [pos, end) of a segment starting at seg_start where a valid
    record (CRC checked) lies at its own offset; -1 when none does."""
    ptr, size = _ro(seg)
    return lib.rmq_resync(ptr, size, seg_start, pos, end)


def zero_range(fd: int, start: int, length: int) -> bool:
    """Zero a file range by punching a hole and allocating it again; False where the file
    system cannot."""
    return lib.rmq_zero_range(fd, start, length) == 0


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
               max_out: int) -> tuple[array.array, int, int, int, int]:
    """Messages behind CQ units [from_pos, to_pos): (fields, count, units scanned, units whose
    record is gone, units whose record is corrupt). fields holds MSG_FIELDS int64 per message."""
    out = array.array("q", bytes(8 * MSG_FIELDS * max_out))
    scanned = ffi.new("int64_t[1]")
    skipped = ffi.new("int32_t[2]")
    if codes is None:
        filt, cs, nc = 0, _NULL, 0
    else:
        filt, cs, nc = 1, ffi.new("int32_t[]", list(codes)), len(codes)
    n = lib.rmq_read_queue(cq.ptr, from_pos, to_pos, filt, cs, nc, table.ptr,
                           1 if check_crc else 0,
                           ffi.from_buffer("int64_t[]", out, require_writable=True), max_out,
                           scanned, skipped)
    return out, n, scanned[0], skipped[0], skipped[1]


def gather_bodies(table: SegmentTable, fields: array.array,
                  n: int) -> tuple[list[bytes], int]:
    """The stored bodies of n messages parsed by read_queue, each its own bytes object (one
    native copy into a single buffer, then slices), and how many are compressed."""
    src = ffi.from_buffer("int64_t[]", fields)
    compressed = ffi.new("int32_t[1]")
    total = lib.rmq_gather_bodies(table.ptr, src, n, _NULL, _NULL, compressed)
    data = bytearray(total)
    ends = array.array("q", bytes(8 * n))
    lib.rmq_gather_bodies(table.ptr, src, n, ffi.from_buffer(data),
                          ffi.from_buffer("int64_t[]", ends, require_writable=True), compressed)
    whole = bytes(data)
    starts = [0, *ends]
    return [whole[a:b] for a, b in zip(starts, ends, strict=False)], compressed[0]


def read_bodies(cq: Region, from_pos: int, to_pos: int, table: SegmentTable, max_out: int,
                capacity: int) -> tuple[bytearray, array.array, int]:
    """Stored bodies behind CQ units, copied back to back into a buffer sized by a counting
    pass: (data, body ends, units scanned)."""
    scanned = ffi.new("int64_t[1]")
    ends = array.array("q", bytes(8 * max_out))
    ends_ptr = ffi.from_buffer("int64_t[]", ends, require_writable=True)
    n = lib.rmq_read_bodies(cq.ptr, from_pos, to_pos, table.ptr, _NULL, capacity, ends_ptr,
                            max_out, scanned)
    data = bytearray(ends[n - 1] if n else 0)
    n = lib.rmq_read_bodies(cq.ptr, from_pos, to_pos, table.ptr, ffi.from_buffer(data),
                            len(data), ends_ptr, n, scanned)
    ffi.release(ends_ptr)
    del ends[n:]
    return data, ends, scanned[0]


def index_put(idx: Region, slot_num: int, index_num: int, key: bytes, phys: int,
              store_ts: int) -> bool:
    """Insert key into the index file; False when the file is full."""
    return lib.rmq_index_put(idx.ptr, slot_num, index_num, key, len(key), phys, store_ts) == 1


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
                              ffi.from_buffer("int64_t[]", out, require_writable=True), max_out,
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
    released); False where the kernel lacks MADV_POPULATE_WRITE."""
    if seg.ptr is None:
        return False
    return lib.rmq_populate(seg.ptr, start, min(length, seg.size - start)) == 0


def _ro(buf: Region | mmap.mmap):
    if isinstance(buf, Region):
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
# (mutex, died, seq, waiters, log, queue, body, len): a plain put under the write mutex
put_simple_shared = lib.rmq_put_simple_shared
mutex_unlock = lib.rmq_mutex_unlock
release_and_wake = lib.rmq_release_and_wake  # (mutex, seq, waiters) pointers
futex_wake = lib.rmq_futex_wake


def wait_for_change(seq, waiters, seen: int, timeout_s: float) -> None:
    """Sleep while the 32-bit word at ``seq`` equals ``seen``, up to timeout_s (GIL
    released), counted in the word at ``waiters``."""
    lib.rmq_wait_for_change(seq, waiters, seen, int(timeout_s * 1e9))


def as_i32(ptr):
    """``ptr`` (from region_address) as the int32_t * the mutex calls take for *died."""
    return ffi.cast("int32_t *", ptr)


def as_i64(ptr):
    return ffi.cast("int64_t *", ptr)
