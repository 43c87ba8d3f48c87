"""Message types of the client and the two byte layouts it reads or writes.

Pull (and QUERY/VIEW) response bodies are stored CommitLog records back to back; the layout is
the table at the top of ``rmqstore.record`` (TOTALSIZE, MAGICCODE, ..., BODY, TOPIC, PROPERTIES;
IPv6 born/store hosts add 12 bytes each). ``decode_messages`` walks them.

A batch send body (SEND_BATCH_MESSAGE, MessageDecoder.encodeMessages of rocketmq-all-4.9.7) is,
per message, big-endian::

    size  field
       4  TOTALSIZE   this entry, the field included
       4  MAGICCODE   0 (the broker ignores it)
       4  BODYCRC     0
       4  FLAG
       4  BODYLEN, then BODY (never compressed in a batch)
       2  PROPLEN, then PROPERTIES ("name\\x01value\\x02" pairs)

Example: body b"hi", no properties -> 00 00 00 18 | 00 00 00 00 | 00 00 00 00 | 00 00 00 00 |
00 00 00 02 | 68 69 | 00 00 (24 bytes).
"""

from __future__ import annotations

import socket
import struct
import zlib
from dataclasses import dataclass, field
from typing import NamedTuple

from ..record import (
    COMPRESSION_LZ4,
    COMPRESSION_MASK,
    COMPRESSION_SHIFT,
    SYSFLAG_BORNHOST_V6,
    SYSFLAG_COMPRESSED,
    SYSFLAG_STOREHOST_V6,
    make_msg_id,
)

# MessageConst property names the client reads or writes.
PROPERTY_KEYS = "KEYS"
PROPERTY_TAGS = "TAGS"
PROPERTY_WAIT_STORE_MSG_OK = "WAIT"
PROPERTY_DELAY_TIME_LEVEL = "DELAY"
PROPERTY_TIMER_DELIVER_MS = "TIMER_DELIVER_MS"  # RocketMQ 5 timer messages
PROPERTY_TIMER_DELAY_MS = "TIMER_DELAY_MS"
PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX = "UNIQ_KEY"
PROPERTY_RETRY_TOPIC = "RETRY_TOPIC"
PROPERTY_MIN_OFFSET = "MIN_OFFSET"
PROPERTY_MAX_OFFSET = "MAX_OFFSET"
PROPERTY_SHARDING_KEY = "__SHARDINGKEY"
PROPERTY_RECONSUME_TIME = "RECONSUME_TIME"
PROPERTY_MAX_RECONSUME_TIMES = "MAX_RECONSUME_TIMES"
PROPERTY_ORIGIN_MESSAGE_ID = "ORIGIN_MESSAGE_ID"

RETRY_GROUP_TOPIC_PREFIX = "%RETRY%"
DLQ_GROUP_TOPIC_PREFIX = "%DLQ%"

_FIXED = struct.Struct(">iiiiiqqiq")  # TOTALSIZE MAGIC BODYCRC QUEUEID FLAG QOFF PHYOFF SYSFLAG BORNTS
_BATCH_HEAD = struct.Struct(">iiiii")  # TOTALSIZE MAGIC BODYCRC FLAG BODYLEN


class MessageQueue(NamedTuple):
    """One queue of a topic on one broker. Ordered as Java's MessageQueue.compareTo."""

    topic: str
    broker_name: str
    queue_id: int

    def __str__(self) -> str:
        return f"{self.topic}@{self.broker_name}#{self.queue_id}"


@dataclass(slots=True)
class Message:
    """A message to send. ``properties`` holds user properties and the well-known ones
    (TAGS, KEYS, DELAY ...) as RocketMQ keeps them: one str -> str map."""

    topic: str
    body: bytes
    tags: str | None = None
    keys: str | list[str] | None = None
    flag: int = 0
    properties: dict[str, str] = field(default_factory=dict)
    delay_level: int = 0  # 1..18: 1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h
    wait_store_msg_ok: bool = True
    # Delivery at any time (RocketMQ 5 timer messages; a broker of ours or RocketMQ >= 5):
    # an absolute epoch-ms time (setDeliverTimeMs) or a delay from the broker's receipt
    # (setDelayTimeMs). One of the two; the broker refuses times beyond timerMaxDelaySec.
    deliver_time_ms: int | None = None
    delay_ms: int | None = None

    @property
    def timed(self) -> bool:
        """True when the message asks for a delivery time or delay."""
        return self.deliver_time_ms is not None or self.delay_ms is not None

    def wire_properties(self) -> dict[str, str]:
        """The properties as sent: user ones plus TAGS, KEYS, DELAY, the timer ones and WAIT."""
        props = dict(self.properties)
        if self.tags:
            props[PROPERTY_TAGS] = self.tags
        if self.keys:
            props[PROPERTY_KEYS] = self.keys if isinstance(self.keys, str) else " ".join(self.keys)
        if self.delay_level > 0:
            props[PROPERTY_DELAY_TIME_LEVEL] = str(self.delay_level)
        if self.deliver_time_ms is not None and self.delay_ms is not None:
            raise ValueError("set deliver_time_ms or delay_ms, not both")
        if self.deliver_time_ms is not None:
            props[PROPERTY_TIMER_DELIVER_MS] = str(int(self.deliver_time_ms))
        elif self.delay_ms is not None:
            props[PROPERTY_TIMER_DELAY_MS] = str(int(self.delay_ms))
        props[PROPERTY_WAIT_STORE_MSG_OK] = "true" if self.wait_store_msg_ok else "false"
        return props


@dataclass(slots=True)
class MessageExt:
    """A message as stored by a broker and delivered to a consumer.

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
        return self.properties.get(PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX) or self.offset_msg_id

    @property
    def tags(self) -> str | None:
        return self.properties.get(PROPERTY_TAGS)

    @property
    def keys(self) -> str | None:
        return self.properties.get(PROPERTY_KEYS)

    @property
    def store_size(self) -> int:
        return len(self.body) + 200  # what flow control counts; the exact record size is not kept

    @property
    def queue(self) -> MessageQueue:
        return MessageQueue(self.topic, self.broker_name, self.queue_id)

    @property
    def store_addr(self) -> str:
        return f"{self.store_host[0]}:{self.store_host[1]}"


def encode_properties(props: dict[str, str]) -> str:
    """MessageDecoder.messageProperties2String (Java: no trailing separator)."""
    for name, value in props.items():
        for text in (name, value):
            if "\x01" in text or "\x02" in text:
                raise ValueError(f"property {name!r} holds a \\x01 or \\x02 separator")
    return "\x02".join(f"{k}\x01{v}" for k, v in props.items())


def decode_properties(text: str) -> dict[str, str]:
    """MessageDecoder.string2messageProperties: pairs split on \\x02, name and value on \\x01."""
    props: dict[str, str] = {}
    for pair in text.split("\x02"):
        name, sep, value = pair.partition("\x01")
        if sep and name:
            props[name] = value
    return props


def _host(data: bytes, pos: int, v6: bool) -> tuple[tuple[str, int], bytes, int]:
    n = 16 if v6 else 4
    raw = data[pos:pos + n + 4]
    fam = socket.AF_INET6 if v6 else socket.AF_INET
    return (socket.inet_ntop(fam, raw[:n]), int.from_bytes(raw[n:], "big", signed=True)), raw, pos + n + 4


def uncompress_body(body: bytes, sys_flag: int) -> bytes:
    """Inflate a body whose sysFlag has COMPRESSED set: bits 8-10 name the codec, 0 = zlib."""
    if not sys_flag & SYSFLAG_COMPRESSED:
        return body
    codec = (sys_flag & COMPRESSION_MASK) >> COMPRESSION_SHIFT
    if codec == COMPRESSION_LZ4:
        import lz4.frame

        return lz4.frame.decompress(body)
    return zlib.decompress(body)


def decode_messages(data: bytes, broker_name: str = "", *, decompress: bool = True) -> list[MessageExt]:
    """The stored records of a pull/query body, in order. A truncated tail raises ValueError."""
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
        born_host, _raw, p = _host(data, p, bool(sys_flag & SYSFLAG_BORNHOST_V6))
        store_ts = int.from_bytes(data[p:p + 8], "big", signed=True)
        store_host, store_raw, p = _host(data, p + 8, bool(sys_flag & SYSFLAG_STOREHOST_V6))
        reconsume, prepared, body_len = struct.unpack_from(">iqi", data, p)
        p += 16
        body = data[p:p + body_len]
        p += body_len
        topic_len = data[p]
        topic = data[p + 1:p + 1 + topic_len].decode()
        p += 1 + topic_len
        (props_len,) = struct.unpack_from(">h", data, p)
        props = decode_properties(data[p + 2:p + 2 + props_len].decode("utf-8", "replace"))
        if decompress:
            body = uncompress_body(body, sys_flag)
        out.append(MessageExt(
            topic=topic, body=body, properties=props, queue_id=queue_id,
            queue_offset=queue_offset, commitlog_offset=phys, sys_flag=sys_flag, flag=flag,
            born_timestamp=born_ts, born_host=born_host, store_timestamp=store_ts,
            store_host=store_host, reconsume_times=reconsume,
            prepared_transaction_offset=prepared, body_crc=body_crc,
            offset_msg_id=make_msg_id(store_raw, phys), broker_name=broker_name))
        pos += total
    return out


def encode_batch(messages: list[tuple[bytes, int, str]]) -> bytes:
    """SEND_BATCH_MESSAGE body from (body, flag, properties string) triples (layout above)."""
    parts = []
    for body, flag, props in messages:
        prop_bytes = props.encode()
        total = _BATCH_HEAD.size + len(body) + 2 + len(prop_bytes)
        parts.append(_BATCH_HEAD.pack(total, 0, 0, flag, len(body)))
        parts.append(body)
        parts.append(struct.pack(">h", len(prop_bytes)))
        parts.append(prop_bytes)
    return b"".join(parts)
