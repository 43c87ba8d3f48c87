"""The message record and its parts, as the commit log stores it and the wire carries it.

A stored record (CommitLog.MessageExtEncoder of rocketmq-all-4.9.7) is what the store writes
and what PULL, QUERY_MESSAGE and VIEW_MESSAGE_BY_ID bodies carry back to back, unchanged. All
integers big-endian; offsets for IPv4 born and store hosts (each IPv6 host adds 12 bytes)::

    off  size  field
      0     4  TOTALSIZE                 whole record, this field included
      4     4  MAGICCODE                 0xDAA320A7 (v1); 0xCBD43194 marks the BLANK filler
      8     4  BODYCRC                   CRC32(body) & 0x7FFFFFFF
     12     4  QUEUEID
     16     4  FLAG                      the producer's opaque int
     20     8  QUEUEOFFSET               index in (topic, queue)
     28     8  PHYSICALOFFSET            this record's own commit-log offset
     36     4  SYSFLAG                   0x1 compressed, 0xC transaction type, 0x10/0x20 IPv6 hosts
     40     8  BORNTIMESTAMP             producer's clock, ms
     48     8  BORNHOST                  4-byte address + 4-byte int port
     56     8  STORETIMESTAMP            store's clock, ms, monotone with the offset
     64     8  STOREHOSTADDRESS          4-byte address + 4-byte int port
     72     4  RECONSUMETIMES
     76     8  PREPARED TRANSACTION OFFSET
     84     4  BODYLEN, then BODY
        1 + t  TOPICLEN (signed byte), TOPIC (UTF-8)
        2 + p  PROPLEN (signed short), PROPERTIES: "key\\x01value\\x02" per pair

TOTALSIZE = 91 + body + topic + properties. Example: body b"hi", topic "T", no properties is a
94-byte record starting 00 00 00 5E DA A3 20 A7. A segment's tail that cannot hold the next
record plus 8 bytes gets a BLANK filler: TOTALSIZE = bytes left, MAGICCODE = 0xCBD43194.

A SEND_BATCH_MESSAGE body (MessageDecoder.encodeMessages; C++ BatchMessage.cpp) is, per message,
back to back, big-endian::

    size  field
       4  TOTALSIZE   this entry, the field included
       4  MAGICCODE   the client writes 0; the broker ignores it
       4  BODYCRC     the client writes 0; the broker ignores it
       4  FLAG
       4  BODYLEN, then BODY (never compressed in a batch)
       2  PROPLEN, then PROPERTIES

Example: body b"hi", no properties -> 00 00 00 18 | 00 00 00 00 | 00 00 00 00 | 00 00 00 00 |
00 00 00 02 | 68 69 | 00 00 (24 bytes).

Properties (MessageDecoder.string2messageProperties): "name\\x01value" pairs separated by
\\x02. The store ends every pair with \\x02; Java's clients leave the last one off and C++
ends every pair: readers take both.
"""

from __future__ import annotations

import logging
import socket
import struct
import zlib
from dataclasses import dataclass
from typing import NamedTuple

log = logging.getLogger(__name__)

MAGIC_V1 = 0xDAA320A7
MAGIC_BLANK = 0xCBD43194
FIXED_OVERHEAD = 91  # TOTALSIZE of a record with empty body, topic and properties (IPv4 hosts)
BODY_AT = 88  # BODY follows 88 bytes of fixed fields with IPv4 hosts
MAX_TOPIC_CHARS = 127
MAX_PROPERTIES_BYTES = 32767  # PROPLEN is a signed short

SYSFLAG_COMPRESSED = 0x1
SYSFLAG_TX_MASK = 0xC
SYSFLAG_TX_PREPARED = 0x4
SYSFLAG_TX_COMMIT = 0x8
SYSFLAG_TX_ROLLBACK = 0xC
SYSFLAG_BORNHOST_V6 = 0x10
SYSFLAG_STOREHOST_V6 = 0x20
# RocketMQ 5: the compression type in bits 8-10 (1 LZ4, 2 ZSTD, 3 ZLIB); 0 means zlib (4.x).
COMPRESSION_SHIFT = 8
COMPRESSION_MASK = 0x7 << COMPRESSION_SHIFT
COMPRESSION_LZ4 = 1
COMPRESSION_ZLIB = 3
_COMPRESSION_NAMES = {2: "ZSTD"}  # CompressionType of RocketMQ 5; 4-7 are no type at all
# maxMessageSize's default (MessageStoreConfig and the clients): what an inflated body may be
# unless the caller knows its broker's limit.
DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024

# Property names (common/.../message/MessageConst.java).
PROP_KEYS = "KEYS"
PROP_TAGS = "TAGS"
PROP_UNIQ_KEY = "UNIQ_KEY"
PROP_WAIT = "WAIT"
PROP_DELAY = "DELAY"
PROP_CLUSTER = "CLUSTER"
PROP_RETRY_TOPIC = "RETRY_TOPIC"
PROP_ORIGIN_MESSAGE_ID = "ORIGIN_MESSAGE_ID"
PROP_RECONSUME_TIME = "RECONSUME_TIME"
PROP_MAX_RECONSUME_TIMES = "MAX_RECONSUME_TIMES"
PROP_MIN_OFFSET = "MIN_OFFSET"
PROP_MAX_OFFSET = "MAX_OFFSET"
PROP_SHARDING_KEY = "__SHARDINGKEY"
PROP_TIMER_DELIVER_MS = "TIMER_DELIVER_MS"  # RocketMQ 5 timer messages
PROP_TIMER_DELAY_MS = "TIMER_DELAY_MS"
PROP_TIMER_DELAY_SEC = "TIMER_DELAY_SEC"

RETRY_GROUP_TOPIC_PREFIX = "%RETRY%"
DLQ_GROUP_TOPIC_PREFIX = "%DLQ%"

NAME_VALUE_SEPARATOR = "\x01"
PROPERTY_SEPARATOR = "\x02"

# TOTALSIZE MAGIC BODYCRC QUEUEID FLAG QUEUEOFFSET PHYSICALOFFSET SYSFLAG BORNTIMESTAMP
_FIXED = struct.Struct(">iiiiiqqiq")
_TAIL = struct.Struct(">iqi")  # RECONSUMETIMES PREPAREDOFFSET BODYLEN
_BATCH_HEAD = struct.Struct(">iiiii")  # TOTALSIZE MAGIC BODYCRC FLAG BODYLEN
_SHORT = struct.Struct(">h")
_PORT = struct.Struct(">i")


class BatchDecodeError(ValueError):
    """A batch body whose entries do not add up."""


class BodyDecodeError(ValueError):
    """A body flagged compressed that does not inflate, or inflates past the limit."""


class PropertyError(ValueError):
    """Properties that cannot be stored: a separator inside a name or value, an empty name,
    or more than MAX_PROPERTIES_BYTES."""


def properties_text(props: dict[str, str]) -> str:
    """The properties string, each pair ended by \\x02; raises PropertyError."""
    text = "".join([f"{name}\x01{value}\x02" for name, value in props.items()])
    # One separator of each kind per pair means no name or value holds one (a single scan
    # instead of two membership tests per string; this runs for every stored message).
    n = len(props)
    if text.count(NAME_VALUE_SEPARATOR) != n or text.count(PROPERTY_SEPARATOR) != n:
        for name, value in props.items():
            for part in (str(name), str(value)):
                if NAME_VALUE_SEPARATOR in part or PROPERTY_SEPARATOR in part:
                    raise PropertyError(f"property {name!r} holds a \\x01 or \\x02 separator")
    if "" in props:
        raise PropertyError("empty property name")
    return text


def encode_properties(props: dict[str, str]) -> bytes:
    """The stored PROPERTIES bytes; raises PropertyError (over MAX_PROPERTIES_BYTES too)."""
    data = properties_text(props).encode()
    if len(data) > MAX_PROPERTIES_BYTES:
        raise PropertyError(f"properties are {len(data)} bytes; the limit is "
                            f"{MAX_PROPERTIES_BYTES}")
    return data


def decode_properties(data: bytes | bytearray | memoryview | str) -> dict[str, str]:
    """Pairs split on \\x02, name and value on \\x01; with or without a final \\x02, and a
    pair without a name or separator is skipped."""
    text = data if isinstance(data, str) else bytes(data).decode("utf-8", "replace")
    props: dict[str, str] = {}
    for pair in text.split(PROPERTY_SEPARATOR):
        name, sep, value = pair.partition(NAME_VALUE_SEPARATOR)
        if sep and name:
            props[name] = value
    return props


def encode_host(host: str, port: int) -> bytes:
    """A socket address as RocketMQ writes it: 4 (IPv4) or 16 (IPv6) address bytes + int port."""
    if ":" in host:
        return socket.inet_pton(socket.AF_INET6, host) + _PORT.pack(port)
    return socket.inet_aton(host) + _PORT.pack(port)


def decode_host(data: bytes | memoryview) -> tuple[str, int]:
    """The inverse of encode_host: 8 bytes are IPv4, 20 bytes IPv6."""
    data = bytes(data)
    if len(data) == 20:
        return socket.inet_ntop(socket.AF_INET6, data[:16]), _PORT.unpack(data[16:])[0]
    return socket.inet_ntoa(data[:4]), _PORT.unpack(data[4:8])[0]


def make_msg_id(store_host: bytes, commitlog_offset: int) -> str:
    """RocketMQ's offset message id (MessageDecoder.createMessageId): store host ++ offset, hex."""
    return (store_host + commitlog_offset.to_bytes(8, "big")).hex().upper()


def parse_msg_id(msg_id: str) -> tuple[bytes, int]:
    """(store host bytes, commit-log offset) from an offset message id; raises ValueError."""
    try:
        raw = bytes.fromhex(msg_id)
    except ValueError:
        raw = b""
    if len(raw) not in (16, 28):
        raise ValueError(f"not an offset message id (32 or 56 hex digits): {msg_id!r}")
    return raw[:-8], int.from_bytes(raw[-8:], "big")


def decode_body(stored: bytes | memoryview, sysflag: int,
                max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> bytes:
    """A body as the producer sent it: inflated when SYSFLAG says it is compressed (zlib, or
    LZ4 in RocketMQ 5's compression-type bits). Inflation stops past max_bytes, so a small
    body that inflates to gigabytes (a zlib bomb) costs at most max_bytes of memory; raises
    BodyDecodeError for that, for bytes that are not a complete stream, and for a compression
    type this package cannot read (ZSTD)."""
    if not sysflag & SYSFLAG_COMPRESSED:
        return bytes(stored)
    kind = (sysflag & COMPRESSION_MASK) >> COMPRESSION_SHIFT
    if kind in (0, COMPRESSION_ZLIB):
        inflater = zlib.decompressobj()
        try:
            out = inflater.decompress(stored, max_bytes + 1)
        except zlib.error as exc:
            raise BodyDecodeError(f"body flagged zlib-compressed is not zlib: {exc}") from None
    elif kind == COMPRESSION_LZ4:
        import lz4.frame  # only LZ4 bodies need it

        inflater = lz4.frame.LZ4FrameDecompressor()
        try:
            out = inflater.decompress(stored, max_bytes + 1)
        except RuntimeError as exc:  # python-lz4 reports a bad frame as RuntimeError
            raise BodyDecodeError(f"body flagged LZ4-compressed is not LZ4: {exc}") from None
    else:
        raise BodyDecodeError(f"compression type {_COMPRESSION_NAMES.get(kind, kind)} in "
                              f"sysFlag {sysflag:#x} is not supported")
    if len(out) > max_bytes:
        raise BodyDecodeError(f"compressed body inflates past {max_bytes} bytes")
    if not inflater.eof:
        raise BodyDecodeError("compressed body ends before its stream does")
    return out


class MessageQueue(NamedTuple):
    """One queue of a topic on one broker. Ordered as Java's MessageQueue.compareTo."""

    topic: str
    broker_name: str
    queue_id: int

    def __str__(self) -> str:
        return f"{self.topic}@{self.broker_name}#{self.queue_id}"


@dataclass(slots=True)
class MessageExt:
    """A stored record as a client receives it (Java's MessageExt).

    ``msg_id`` is the producer's UNIQ_KEY when present, else the offset message id, as in Java's
    MessageClientExt; ``offset_msg_id`` locates the record (store host + commit-log offset).
    """

    topic: str
    body: bytes
    properties: dict[str, str]
    queue_id: int
    queue_offset: int
    commitlog_offset: int
    sys_flag: int
    flag: int
    born_timestamp: int
    born_host: tuple[str, int]
    store_timestamp: int
    store_host: tuple[str, int]
    reconsume_times: int
    prepared_transaction_offset: int
    body_crc: int
    offset_msg_id: str
    broker_name: str = ""

    @property
    def msg_id(self) -> str:
        return self.properties.get(PROP_UNIQ_KEY) or self.offset_msg_id

    @property
    def tags(self) -> str | None:
        return self.properties.get(PROP_TAGS)

    @property
    def keys(self) -> str | None:
        return self.properties.get(PROP_KEYS)

    @property
    def store_size(self) -> int:
        return len(self.body) + 200  # what flow control counts; the exact record size is not kept

    @property
    def queue(self) -> MessageQueue:
        return MessageQueue(self.topic, self.broker_name, self.queue_id)

    @property
    def store_addr(self) -> str:
        return f"{self.store_host[0]}:{self.store_host[1]}"


def decode_messages(data: bytes, broker_name: str = "", *, decompress: bool = True,
                    max_body_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> list[MessageExt]:
    """The stored records of a pull or query body, in order; a truncated tail raises
    ValueError. Compressed bodies are inflated up to max_body_bytes each; one that does not
    inflate is kept as stored, its sys_flag still saying compressed, and logged: the other
    messages of the body are not lost with it. ``decompress=False`` keeps every compressed
    body as stored."""
    out: list[MessageExt] = []
    pos, end = 0, len(data)
    while pos < end:
        if end - pos < _FIXED.size:
            raise ValueError(f"truncated record header at {pos}")
        (total, _magic, body_crc, queue_id, flag, queue_offset, phys, sys_flag,
         born_ts) = _FIXED.unpack_from(data, pos)
        if total <= 0 or pos + total > end:
            raise ValueError(f"record at {pos} claims {total} bytes, {end - pos} left")
        p = pos + _FIXED.size
        born_host, _raw, p = _host_at(data, p, bool(sys_flag & SYSFLAG_BORNHOST_V6))
        store_ts = int.from_bytes(data[p:p + 8], "big", signed=True)
        store_host, store_raw, p = _host_at(data, p + 8, bool(sys_flag & SYSFLAG_STOREHOST_V6))
        reconsume, prepared, body_len = _TAIL.unpack_from(data, p)
        p += _TAIL.size
        body = data[p:p + body_len]
        p += body_len
        topic_len = data[p]
        topic = data[p + 1:p + 1 + topic_len].decode()
        p += 1 + topic_len
        (props_len,) = _SHORT.unpack_from(data, p)
        props = decode_properties(data[p + 2:p + 2 + props_len])
        if decompress and sys_flag & SYSFLAG_COMPRESSED:
            try:
                body = decode_body(body, sys_flag, max_body_bytes)
            except BodyDecodeError as exc:
                log.warning("message at commit-log offset %d of %s: %s; kept as stored",
                            phys, topic, exc)
        out.append(MessageExt(
            topic=topic, body=body, properties=props, queue_id=queue_id,
            queue_offset=queue_offset, commitlog_offset=phys, sys_flag=sys_flag, flag=flag,
            born_timestamp=born_ts, born_host=born_host, store_timestamp=store_ts,
            store_host=store_host, reconsume_times=reconsume,
            prepared_transaction_offset=prepared, body_crc=body_crc,
            offset_msg_id=make_msg_id(store_raw, phys), broker_name=broker_name))
        pos += total
    return out


def _host_at(data: bytes, pos: int, v6: bool) -> tuple[tuple[str, int], bytes, int]:
    """(address, raw bytes, position after) of the host field at pos."""
    end = pos + (20 if v6 else 8)
    raw = data[pos:end]
    return decode_host(raw), raw, end


def encode_batch(entries: list[tuple[bytes, int, bytes | str]]) -> bytes:
    """A SEND_BATCH_MESSAGE body from (body, flag, properties) entries (layout above)."""
    parts = []
    for body, flag, props in entries:
        prop_bytes = props.encode() if isinstance(props, str) else props
        total = _BATCH_HEAD.size + len(body) + _SHORT.size + len(prop_bytes)
        parts.append(_BATCH_HEAD.pack(total, 0, 0, flag, len(body)))
        parts.append(body)
        parts.append(_SHORT.pack(len(prop_bytes)))
        parts.append(prop_bytes)
    return b"".join(parts)
