"""An independent decoder of RocketMQ 4.x's on-disk store layout, for tests.

Written from ../shared/spec/store-format.md (sections 1.3-1.5, 3.1-3.2, 4.1-4.3, 5.1, 9),
with nothing but the standard library: it deliberately does not import rmqstore, so a mistake
shared by the engine's encoder and its own decoder cannot hide here. Every integer on disk is
big-endian (Java ByteBuffer); longs and ints are signed.
"""

from __future__ import annotations

import json
import os
import re
import socket
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

# -- commit log (CommitLog.java) ------------------------------------------------------------------
MAGIC_V1 = 0xDAA320A7  # MESSAGE_MAGIC_CODE (-626843481 as a Java int)
MAGIC_BLANK = 0xCBD43194  # BLANK_MAGIC_CODE (-875286124)
FIXED_OVERHEAD = 91  # v1 record, IPv4 born and store hosts
END_FILE_MIN_BLANK_LENGTH = 8

SYSFLAG_COMPRESSED = 0x1
SYSFLAG_MULTI_TAGS = 0x2
SYSFLAG_TX_MASK = 0xC
SYSFLAG_BORNHOST_V6 = 0x10
SYSFLAG_STOREHOST_V6 = 0x20

PROP_NAME_SEP = "\x01"
PROP_PAIR_SEP = "\x02"

CQ_UNIT = 20
INDEX_HEADER = 40
INDEX_SLOT = 4
INDEX_ENTRY = 20
CHECKPOINT_BYTES = 4096

FILE_NAME_RE = re.compile(r"^\d{20}$")
INDEX_NAME_RE = re.compile(r"^\d{17}$")


class LayoutError(AssertionError):
    """The bytes do not follow the RocketMQ layout."""


def java_string_hash(s: str) -> int:
    """Java String.hashCode(): h = 31*h + c over UTF-16 code units, 32-bit signed wrap."""
    units = s.encode("utf-16-be")
    h = 0
    for i in range(0, len(units), 2):
        h = (31 * h + ((units[i] << 8) | units[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def java_abs(i: int) -> int:
    """Math.abs on a Java int: abs(Integer.MIN_VALUE) stays MIN_VALUE (negative)."""
    return i if i == -(1 << 31) else abs(i)


def masked_crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0x7FFFFFFF


def file_name(offset: int) -> str:
    return "%020d" % offset


def encode_ipv4_host(ip: str, port: int) -> bytes:
    """BORNHOST/STOREHOST for IPv4: 4 address bytes + a 4-byte int port."""
    return socket.inet_aton(ip) + struct.pack(">i", port)


def offset_msg_id(store_host: bytes, phys: int) -> str:
    """offsetMsgId: STOREHOST bytes ++ phyOffset (8), hex upper case."""
    return (store_host + struct.pack(">q", phys)).hex().upper()


def parse_properties(raw: bytes) -> dict[str, str]:
    """PROPERTIES: UTF-8 `key\\x01value\\x02` pairs, every pair terminated by \\x02."""
    text = raw.decode("utf-8")
    if not text:
        return {}
    if not text.endswith(PROP_PAIR_SEP):
        raise LayoutError(f"properties not terminated by \\x02: {text!r}")
    out: dict[str, str] = {}
    for pair in text[:-1].split(PROP_PAIR_SEP):
        name, sep, value = pair.partition(PROP_NAME_SEP)
        if not sep or not name:
            raise LayoutError(f"malformed property pair {pair!r} in {text!r}")
        out[name] = value
    return out


@dataclass
class Record:
    """One v1 stored message record (CommitLog.MessageExtEncoder), IPv4 or IPv6 hosts."""

    position: int  # absolute physical offset where it was found
    total_size: int
    magic: int
    body_crc: int
    queue_id: int
    flag: int
    queue_offset: int
    physical_offset: int
    sysflag: int
    born_timestamp: int
    born_host: bytes
    store_timestamp: int
    store_host: bytes
    reconsume_times: int
    prepared_tx_offset: int
    body: bytes  # as stored (possibly compressed)
    topic: str
    properties_raw: bytes

    @property
    def properties(self) -> dict[str, str]:
        return parse_properties(self.properties_raw)

    @property
    def tags(self) -> str | None:
        return self.properties.get("TAGS")

    @property
    def keys(self) -> list[str]:
        return [k for k in self.properties.get("KEYS", "").split(" ") if k]

    @property
    def msg_id(self) -> str:
        return offset_msg_id(self.store_host, self.physical_offset)

    def plain_body(self) -> bytes:
        """The body, decompressed with zlib when SYSFLAG's compressed bit is set (4.x)."""
        if self.sysflag & SYSFLAG_COMPRESSED:
            return zlib.decompress(self.body)
        return self.body


@dataclass
class Blank:
    """The 8-byte end-of-segment filler (CommitLog.doAppend): TOTALSIZE = bytes left, BLANK
    magic."""

    position: int
    total_size: int


def decode_record(buf: bytes, pos: int, base: int = 0) -> Record | Blank | None:
    """Decode the record at buf[pos:]. base is the segment's start offset. Returns None at the
    end of written data (zero fill); raises LayoutError on anything malformed."""
    if pos + 8 > len(buf):
        raise LayoutError(f"fewer than 8 bytes left at {base + pos}")
    total, magic = struct.unpack_from(">iI", buf, pos)
    if magic == MAGIC_BLANK:
        return Blank(base + pos, total)
    if total == 0 and magic == 0:
        return None
    if magic != MAGIC_V1:
        raise LayoutError(f"bad magic {magic:#x} at {base + pos}")
    if total < FIXED_OVERHEAD or pos + total > len(buf):
        raise LayoutError(f"bad TOTALSIZE {total} at {base + pos}")
    (body_crc, queue_id, flag, queue_offset, physical_offset, sysflag,
     born_ts) = struct.unpack_from(">iiiqqiq", buf, pos + 8)
    p = pos + 48
    born_len = 20 if sysflag & SYSFLAG_BORNHOST_V6 else 8
    born_host = bytes(buf[p:p + born_len])
    p += born_len
    (store_ts,) = struct.unpack_from(">q", buf, p)
    p += 8
    store_len = 20 if sysflag & SYSFLAG_STOREHOST_V6 else 8
    store_host = bytes(buf[p:p + store_len])
    p += store_len
    reconsume, prepared = struct.unpack_from(">iq", buf, p)
    p += 12
    (body_len,) = struct.unpack_from(">i", buf, p)
    p += 4
    body = bytes(buf[p:p + body_len])
    p += body_len
    (topic_len,) = struct.unpack_from(">b", buf, p)  # v1: a signed byte
    p += 1
    topic = bytes(buf[p:p + topic_len]).decode("utf-8")
    p += topic_len
    (props_len,) = struct.unpack_from(">h", buf, p)  # signed short
    p += 2
    props = bytes(buf[p:p + props_len])
    p += props_len
    if p - pos != total:
        raise LayoutError(f"fields add up to {p - pos} bytes, TOTALSIZE says {total} "
                          f"at {base + pos}")
    return Record(base + pos, total, magic, body_crc, queue_id, flag, queue_offset,
                  physical_offset, sysflag, born_ts, born_host, store_ts, store_host,
                  reconsume, prepared, body, topic, props)


def commitlog_segments(root: Path) -> list[Path]:
    d = Path(root) / "commitlog"
    return sorted(p for p in d.iterdir()) if d.is_dir() else []


@dataclass
class Segment:
    path: Path
    start: int
    records: list[Record]
    blank: Blank | None
    end: int  # absolute offset just past the last record (or the blank)


def walk_commitlog(root: Path, segment_bytes: int) -> list[Segment]:
    """Decode every segment, checking the segment-level rules (MappedFileQueue, CommitLog): 20-digit
    names that are the start offset, exact size, contiguity, no record crossing a boundary,
    PHYSICALOFFSET equal to the record's position, >= 8 bytes left after every record."""
    segs: list[Segment] = []
    expect_start = None
    for path in commitlog_segments(root):
        if not FILE_NAME_RE.match(path.name):
            raise LayoutError(f"segment name {path.name!r} is not 20 digits")
        start = int(path.name)
        if start % segment_bytes:
            raise LayoutError(f"segment {path.name} does not start on a segment boundary")
        if expect_start is not None and start != expect_start:
            raise LayoutError(f"segment {path.name} is not contiguous (expected "
                              f"{file_name(expect_start)})")
        expect_start = start + segment_bytes
        size = path.stat().st_size
        if size != segment_bytes:
            raise LayoutError(f"segment {path.name} is {size} bytes, not {segment_bytes}")
        buf = path.read_bytes()
        pos = 0
        records: list[Record] = []
        blank = None
        while pos < segment_bytes:
            item = decode_record(buf, pos, start)
            if item is None:
                break
            if isinstance(item, Blank):
                if item.total_size != segment_bytes - pos:
                    raise LayoutError(f"BLANK at {start + pos} says {item.total_size} bytes, "
                                      f"{segment_bytes - pos} are left")
                blank = item
                pos = segment_bytes
                break
            if item.physical_offset != start + pos:
                raise LayoutError(f"PHYSICALOFFSET {item.physical_offset} stored at "
                                  f"{start + pos}")
            pos += item.total_size
            if segment_bytes - pos < END_FILE_MIN_BLANK_LENGTH:
                raise LayoutError(f"only {segment_bytes - pos} bytes left after the record "
                                  f"at {item.physical_offset}")
            records.append(item)
        if blank is None and pos < segment_bytes and any(buf[pos:]):
            raise LayoutError(f"garbage after the last record of {path.name} at {start + pos}")
        segs.append(Segment(path, start, records, blank, start + pos))
    return segs


def all_records(root: Path, segment_bytes: int) -> list[Record]:
    return [r for s in walk_commitlog(root, segment_bytes) for r in s.records]


# -- consume queue (ConsumeQueue.java) ------------------------------------------------------------
@dataclass(frozen=True)
class CQUnit:
    phys: int
    size: int
    tags_code: int


def read_consume_queue(root: Path, topic: str, queue_id: int, units_per_file: int
                       ) -> list[CQUnit]:
    """All units of one queue, in queue-offset order (unit n at byte n*20 of the virtual
    stream). Checks file names (20-digit byte offsets), sizes and contiguity; stops at the
    first all-zero unit."""
    d = Path(root) / "consumequeue" / topic / str(queue_id)
    file_bytes = units_per_file * CQ_UNIT
    units: list[CQUnit] = []
    expect = None
    for path in sorted(d.iterdir()):
        if not FILE_NAME_RE.match(path.name):
            raise LayoutError(f"consume-queue file name {path.name!r} is not 20 digits")
        start = int(path.name)
        if start % file_bytes:
            raise LayoutError(f"consume-queue file {path.name} not on a file boundary")
        if expect is not None and start != expect:
            raise LayoutError(f"consume-queue file {path.name} not contiguous")
        if expect is None and start != 0:
            units.extend([None] * (start // CQ_UNIT))  # type: ignore[list-item]
        expect = start + file_bytes
        if path.stat().st_size != file_bytes:
            raise LayoutError(f"consume-queue file {path.name} is {path.stat().st_size} "
                              f"bytes, not {file_bytes}")
        buf = path.read_bytes()
        for i in range(units_per_file):
            phys, size, tags_code = struct.unpack_from(">qiq", buf, i * CQ_UNIT)
            if phys == 0 and size == 0:
                if any(buf[i * CQ_UNIT:]):
                    raise LayoutError(f"data after the end unit in {path}")
                return units
            units.append(CQUnit(phys, size, tags_code))
    return units


# -- index file (IndexFile.java) ------------------------------------------------------------------
@dataclass
class IndexHeader:
    begin_timestamp: int
    end_timestamp: int
    begin_phy_offset: int
    end_phy_offset: int
    hash_slot_count: int
    index_count: int


@dataclass(frozen=True)
class IndexEntry:
    number: int
    key_hash: int
    phy_offset: int
    time_diff: int
    prev_index: int


class IndexFile:
    def __init__(self, path: Path, slots: int, entries: int) -> None:
        self.path = Path(path)
        self.slots = slots
        self.entries = entries
        self.data = self.path.read_bytes()
        expected = INDEX_HEADER + slots * INDEX_SLOT + entries * INDEX_ENTRY
        if len(self.data) != expected:
            raise LayoutError(f"index file {path} is {len(self.data)} bytes, not {expected}")
        self.header = IndexHeader(*struct.unpack_from(">qqqqii", self.data, 0))

    @staticmethod
    def key_hash(key: str) -> int:
        h = java_abs(java_string_hash(key))
        return 0 if h < 0 else h

    def slot_of(self, key: str) -> int:
        return self.key_hash(key) % self.slots

    def slot_value(self, slot: int) -> int:
        return struct.unpack_from(">i", self.data, INDEX_HEADER + slot * INDEX_SLOT)[0]

    def entry(self, n: int) -> IndexEntry:
        pos = INDEX_HEADER + self.slots * INDEX_SLOT + n * INDEX_ENTRY
        return IndexEntry(n, *struct.unpack_from(">iqii", self.data, pos))

    def chain(self, slot: int) -> list[IndexEntry]:
        """Entries of a bucket, newest first, following prevIndex to 0."""
        out: list[IndexEntry] = []
        n = self.slot_value(slot)
        seen = set()
        while 0 < n < self.header.index_count:
            if n in seen:
                raise LayoutError(f"index chain loops at entry {n}")
            seen.add(n)
            e = self.entry(n)
            out.append(e)
            n = e.prev_index
        return out

    def lookup(self, topic: str, key: str) -> list[IndexEntry]:
        """Entries whose stored keyHash matches "<topic>#<key>", newest first."""
        k = f"{topic}#{key}"
        h = self.key_hash(k)
        return [e for e in self.chain(self.slot_of(k)) if e.key_hash == h]

    def used_slots(self) -> int:
        return sum(1 for s in range(self.slots) if self.slot_value(s) != 0)


def index_files(root: Path) -> list[Path]:
    d = Path(root) / "index"
    return sorted(d.iterdir()) if d.is_dir() else []


# -- checkpoint (StoreCheckpoint) -----------------------------------------------------------------
@dataclass
class Checkpoint:
    physic_msg_timestamp: int
    logics_msg_timestamp: int
    index_msg_timestamp: int
    raw: bytes


def read_checkpoint(root: Path) -> Checkpoint:
    raw = (Path(root) / "checkpoint").read_bytes()
    if len(raw) != CHECKPOINT_BYTES:
        raise LayoutError(f"checkpoint is {len(raw)} bytes, not {CHECKPOINT_BYTES}")
    return Checkpoint(*struct.unpack_from(">qqq", raw, 0), raw)


# -- JSON metadata (ConfigManager) ----------------------------------------------------------------
_BARE_INT_KEY = re.compile(r'([{,]\s*)(-?\d+)(\s*:)')


def fastjson_loads(text: str):
    """Parse fastjson output, which writes integer map keys unquoted ({0:12}). Bare keys are
    quoted outside string literals only; quoted keys are accepted as they are."""
    out = []
    i = 0
    for m in re.finditer(r'"(?:[^"\\]|\\.)*"', text):  # split off string literals
        out.append(_BARE_INT_KEY.sub(r'\1"\2"\3', text[i:m.start()]))
        out.append(m.group(0))
        i = m.end()
    out.append(_BARE_INT_KEY.sub(r'\1"\2"\3', text[i:]))
    return json.loads("".join(out))


def read_config_json(root: Path, name: str):
    return fastjson_loads((Path(root) / "config" / name).read_text("utf-8"))


def list_files(d: Path) -> list[str]:
    return sorted(os.listdir(d)) if Path(d).is_dir() else []
