"""The CommitLog stored-message record (RocketMQ 4.x, CommitLog.MessageExtEncoder), byte for byte.

All integers big-endian. Offsets for IPv4 born and store hosts (each IPv6 host adds 12 bytes):

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
94-byte record starting 00 00 00 5E DA A3 20 A7.

A segment's tail that cannot hold the next record plus 8 bytes gets a BLANK filler: TOTALSIZE =
bytes left, MAGICCODE = 0xCBD43194; readers jump to the next segment.
"""

from __future__ import annotations

import re
import socket
import struct
from enum import IntEnum

MAGIC_V1 = 0xDAA320A7
MAGIC_BLANK = 0xCBD43194
FIXED_OVERHEAD = 91
END_FILE_MIN_BLANK = 8
MAX_TOPIC_CHARS = 127
MAX_PROPERTIES_BYTES = 32767

SYSFLAG_COMPRESSED = 0x1
SYSFLAG_TX_MASK = 0xC
SYSFLAG_TX_PREPARED = 0x4
SYSFLAG_TX_COMMIT = 0x8
SYSFLAG_TX_ROLLBACK = 0xC
SYSFLAG_BORNHOST_V6 = 0x10
SYSFLAG_STOREHOST_V6 = 0x20
# 5.x: compression type in bits 8-10 (1 LZ4, 2 ZSTD, 3 ZLIB); 0 means zlib (4.x clients).
COMPRESSION_SHIFT = 8
COMPRESSION_MASK = 0x7 << COMPRESSION_SHIFT
COMPRESSION_LZ4 = 1
COMPRESSION_ZLIB = 3

PROP_KEYS = "KEYS"
PROP_TAGS = "TAGS"
PROP_UNIQ_KEY = "UNIQ_KEY"
NAME_VALUE_SEPARATOR = "\x01"
PROPERTY_SEPARATOR = "\x02"

_TOPIC_RE = re.compile(r"^[%|a-zA-Z0-9_-]+$")


class RecordField(IntEnum):
    """Positions in the tuple the native parser returns."""

    SIZE = 0
    QUEUE_ID = 1
    FLAG = 2
    QUEUE_OFFSET = 3
    PHYSICAL_OFFSET = 4
    SYSFLAG = 5
    BORN_TIMESTAMP = 6
    STORE_TIMESTAMP = 7
    RECONSUME_TIMES = 8
    PREPARED_OFFSET = 9
    BODY_POS = 10
    BODY_LEN = 11
    TOPIC_POS = 12
    TOPIC_LEN = 13
    PROPS_POS = 14
    PROPS_LEN = 15


def record_size(body_len: int, topic_len: int, props_len: int, sysflag: int = 0) -> int:
    """CommitLog.calMsgLength."""
    extra = (12 if sysflag & SYSFLAG_BORNHOST_V6 else 0) + (12 if sysflag & SYSFLAG_STOREHOST_V6 else 0)
    return FIXED_OVERHEAD + extra + body_len + topic_len + props_len


def check_topic(topic: str) -> bytes:
    """RocketMQ's topic rule (Validators.checkTopic): [%|a-zA-Z0-9_-]{1,127}. The rule keeps a
    topic from ever naming a path outside the store. Returns the encoded topic."""
    from .errors import InvalidTopicError

    if not isinstance(topic, str) or not topic:
        raise InvalidTopicError("topic must be a non-empty str")
    if len(topic) > MAX_TOPIC_CHARS:
        raise InvalidTopicError(f"topic longer than {MAX_TOPIC_CHARS} characters: {topic[:40]!r}...")
    if not _TOPIC_RE.match(topic):
        raise InvalidTopicError(f"topic {topic!r} has characters outside [%|a-zA-Z0-9_-]")
    return topic.encode("ascii")


def encode_properties(props: dict[str, str]) -> bytes:
    """MessageDecoder.messageProperties2String: each pair ends with \\x02."""
    text = "".join([f"{name}\x01{value}\x02" for name, value in props.items()])
    # One separator of each kind per pair means no name or value holds one (a single scan
    # instead of two membership tests per string; this runs for every stored message).
    n = len(props)
    if text.count(NAME_VALUE_SEPARATOR) != n or text.count(PROPERTY_SEPARATOR) != n:
        _check_pairs(props)
    if "" in props:
        raise _property_error("empty property name")
    data = text.encode()
    if len(data) > MAX_PROPERTIES_BYTES:
        raise _property_error(f"properties are {len(data)} bytes; the limit is {MAX_PROPERTIES_BYTES}")
    return data


def _check_pairs(props: dict[str, str]) -> None:
    for name, value in props.items():
        for text in (str(name), str(value)):
            if NAME_VALUE_SEPARATOR in text or PROPERTY_SEPARATOR in text:
                raise _property_error(f"property {name!r} holds a \\x01 or \\x02 separator")


def _property_error(text: str) -> Exception:
    from .errors import InvalidPropertyError

    return InvalidPropertyError(text)


def decode_properties(data: bytes | memoryview) -> dict[str, str]:
    """MessageDecoder.string2messageProperties (tolerates a missing final \\x02)."""
    text = bytes(data).decode("utf-8", "replace")
    props = {}
    for pair in text.split(PROPERTY_SEPARATOR):
        if not pair:
            continue
        name, sep, value = pair.partition(NAME_VALUE_SEPARATOR)
        if sep:
            props[name] = value
    return props


def encode_host(host: str, port: int) -> bytes:
    """A socket address as RocketMQ writes it: 4 (IPv4) or 16 (IPv6) address bytes + int port."""
    if ":" in host:
        return socket.inet_pton(socket.AF_INET6, host) + struct.pack(">i", port)
    return socket.inet_aton(host) + struct.pack(">i", port)


def decode_host(data: bytes | memoryview) -> tuple[str, int]:
    data = bytes(data)
    if len(data) == 20:
        return socket.inet_ntop(socket.AF_INET6, data[:16]), struct.unpack(">i", data[16:])[0]
    return socket.inet_ntoa(data[:4]), struct.unpack(">i", data[4:8])[0]


def make_msg_id(store_host: bytes, commitlog_offset: int) -> str:
    """RocketMQ's offset message id (MessageDecoder.createMessageId): store host ++ offset, hex."""
    return (store_host + commitlog_offset.to_bytes(8, "big")).hex().upper()


def parse_msg_id(msg_id: str) -> tuple[bytes, int]:
    """(store host bytes, commit-log offset) from an offset message id."""
    raw = bytes.fromhex(msg_id)
    if len(raw) not in (16, 28):
        raise ValueError(f"not an offset message id: {msg_id!r}")
    return raw[:-8], int.from_bytes(raw[-8:], "big")
