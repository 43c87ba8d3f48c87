"""Message bytes on the broker's wire: batch send bodies in, stored records out.

SEND_BATCH_MESSAGE body (MessageDecoder.encodeMessages; C++ BatchMessage.cpp), big-endian,
one entry per message, back to back:

    off  size  field
      0     4  TOTALSIZE      this entry, this field included
      4     4  MAGICCODE      the client writes 0; ignored
      8     4  BODYCRC        the client writes 0; ignored
     12     4  FLAG           user flag
     16     4  BODYLEN, then BODY (never compressed in a batch)
        2 + p  PROPLEN (signed short), PROPERTIES ("k\\x01v\\x02" pairs)

Example: body b"a", properties b"" is the 23-byte entry 00 00 00 17 | 0*8 | FLAG | 00 00 00 01 61 | 00 00.

A PULL body is the stored CommitLog records (rmqstore/record.py) concatenated unchanged;
record_view gives one record's bytes without copying.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ...message import Message

_ENTRY_HEAD = struct.Struct(">iiiii")  # TOTALSIZE, MAGICCODE, BODYCRC, FLAG, BODYLEN
_PROPLEN = struct.Struct(">h")
_BODY_AT = 88  # a record's body follows 88 bytes of fixed fields (IPv4 hosts)


class BatchDecodeError(ValueError):
    """A batch body whose entries do not add up."""


@dataclass(frozen=True, slots=True)
class BatchEntry:
    flag: int
    body: bytes
    properties: bytes


def decode_batch(data: bytes) -> list[BatchEntry]:
    """The entries of a SEND_BATCH_MESSAGE body; raises BatchDecodeError."""
    out: list[BatchEntry] = []
    pos, end = 0, len(data)
    while pos < end:
        if end - pos < _ENTRY_HEAD.size + _PROPLEN.size:
            raise BatchDecodeError(f"truncated batch entry at byte {pos}")
        total, _magic, _crc, flag, body_len = _ENTRY_HEAD.unpack_from(data, pos)
        body_at = pos + _ENTRY_HEAD.size
        props_len_at = body_at + body_len
        if body_len < 0 or props_len_at + _PROPLEN.size > end:
            raise BatchDecodeError(f"batch entry at byte {pos}: body length {body_len} overruns")
        (props_len,) = _PROPLEN.unpack_from(data, props_len_at)
        props_at = props_len_at + _PROPLEN.size
        entry_end = props_at + props_len
        if props_len < 0 or entry_end > end or total != entry_end - pos:
            raise BatchDecodeError(f"batch entry at byte {pos}: sizes do not add up")
        out.append(BatchEntry(flag, data[body_at:props_len_at], data[props_at:entry_end]))
        pos = entry_end
    return out


def encode_batch(entries: list[BatchEntry]) -> bytes:
    """The inverse of decode_batch (what a client sends; used by tests and tools)."""
    parts = []
    for e in entries:
        total = _ENTRY_HEAD.size + len(e.body) + _PROPLEN.size + len(e.properties)
        parts.append(_ENTRY_HEAD.pack(total, 0, 0, e.flag, len(e.body)) + e.body
                     + _PROPLEN.pack(len(e.properties)) + e.properties)
    return b"".join(parts)


def record_view(msg: Message) -> memoryview:
    """The whole stored record of msg (TOTALSIZE bytes), zero-copy, valid while msg lives."""
    return msg.record_view
