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


def encode_batch(entries: list[BatchEntry]) -> bytes:
    """A batch body as a client sends it (used by tests and tools; the store reads it natively,
    MessageStore.put_encoded_batch)."""
    parts = []
    for e in entries:
        total = _ENTRY_HEAD.size + len(e.body) + _PROPLEN.size + len(e.properties)
        parts.append(_ENTRY_HEAD.pack(total, 0, 0, e.flag, len(e.body)) + e.body
                     + _PROPLEN.pack(len(e.properties)) + e.properties)
    return b"".join(parts)


def record_view(msg: Message) -> memoryview:
    """The whole stored record of msg (TOTALSIZE bytes), zero-copy, valid while msg lives."""
    return msg.record_view
