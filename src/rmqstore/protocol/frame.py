"""Sans-I/O frame codec for the RocketMQ 4.x remoting protocol: bytes <-> RemotingCommand.

Frame (every integer big-endian; RemotingCommand.encode / NettyDecoder in rocketmq-all-4.9.7)::

    offset  size       field        meaning
    0       4          length       int32: 4 + headerLen + bodyLen; excludes itself
    4       4          headerWord   (serializeType << 24) | headerLen; type 0 JSON, 1 ROCKETMQ
    8       headerLen  header       JSON object, or the binary layout below
    8+hl    bodyLen    body         opaque bytes, bodyLen = length - 4 - headerLen (may be 0)

ROCKETMQ binary header (RocketMQSerializable.java)::

    offset  size       field        meaning
    0       2          code         int16 request or response code
    2       1          language     int8 LanguageCode (JAVA 0, CPP 1, ... PYTHON 3)
    3       2          version      int16 sender's MQVersion ordinal
    5       4          opaque       int32 request id, echoed by the response
    9       4          flag         int32 bit0 RESPONSE, bit1 ONEWAY
    13      4          remarkLen    int32, 0 = no remark
    17      remarkLen  remark       UTF-8
    17+rl   4          extLen       int32 byte length of the entries that follow, 0 = none
    21+rl   extLen     entries      repeated: keyLen int16, key UTF-8, valLen int32, value UTF-8

Worked example, a ROCKETMQ request GET_ROUTEINFO_BY_TOPIC (105), JAVA, version 403, opaque 7,
extFields {"topic": "T1"} (header 34 bytes, frame 42 bytes)::

    00000026 01000022 | 0069 00 0193 00000007 00000000 | 00000000 | 0000000d
    0005 "topic" 00000002 "T1"

The same request as JSON: ``00000080 0000007c`` then the 124-byte header
``{"code":105,"extFields":{"topic":"T1"},"flag":0,"language":"JAVA","opaque":7,
"serializeTypeCurrentRPC":"JSON","version":403}``.

Limits, as NettyDecoder's LengthFieldBasedFrameDecoder applies them: the whole frame *including*
the 4-byte length word must be <= max_frame_bytes; the length must leave room for the header
word; the header length is 24 bits (<= 2^24-1) and must fit in the frame. Any violation is a
FrameError: the stream has lost sync and the connection must close (NettyDecoder closes the
channel too).

Two limits, because what we accept and what a peer accepts differ. What we *send* stays under
DEFAULT_MAX_FRAME_BYTES, 16 MiB, the Java default of ``com.rocketmq.remoting.frameMaxLength``
that every RocketMQ peer decodes with. What a server *reads* is ``frame_limit(maxMessageSize)``:
the largest request a client needs to send (a message body, or a batch's, at most
maxMessageSize, under a header of at most FRAME_HEADROOM_BYTES), so that a connection holding a
partial frame holds about a message, not 16 MiB.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

from . import _codec
from .binary_header import decode_binary_header, encode_binary_header
from .codes import SerializeType
from .command import RemotingCommand
from .errors import FrameTooLarge, HeaderDecodeError
from .json_header import decode_json_header, encode_json_header

DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024  # NettyDecoder FRAME_MAX_LENGTH default 16777216
DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # MessageStoreConfig.maxMessageSize default
# Room for a request's header beside its body: properties are at most 32767 bytes
# (MessageDecoder's short length), and their \x01 \x02 separators take 6 bytes each as JSON
# escapes (196,602), plus the other fields.
FRAME_HEADROOM_BYTES = 256 * 1024
MAX_HEADER_BYTES = 0xFFFFFF  # 24 bits of the header word

_PREFIX = struct.Struct(">iI")  # length (signed, as Java reads it), header word
_LENGTH = struct.Struct(">i")


def frame_limit(max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> int:
    """The largest frame (length word included) a server reads, for a maxMessageSize."""
    return 4 + 4 + max_message_bytes + FRAME_HEADROOM_BYTES


def encode(cmd: RemotingCommand, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> bytes:
    """One complete frame, in the header encoding named by ``cmd.serialize_type``.

    Raises FrameTooLarge when the header or the frame exceeds the limits, so that an oversized
    response fails in the sender instead of breaking the peer's stream.
    """
    if cmd.serialize_type == SerializeType.ROCKETMQ:
        header = encode_binary_header(cmd)
    else:
        header = encode_json_header(cmd)
    if len(header) > MAX_HEADER_BYTES:
        raise FrameTooLarge(f"header of {len(header)} bytes exceeds 2^24-1")
    length = 4 + len(header) + len(cmd.body)
    if length + 4 > max_frame_bytes:
        raise FrameTooLarge(f"frame of {length + 4} bytes exceeds the maximum {max_frame_bytes}")
    word = (int(cmd.serialize_type) << 24) | len(header)
    return b"".join((_PREFIX.pack(length, word), header, cmd.body))


_codec.bind(RemotingCommand, SerializeType.JSON)
_decode_native = _codec.decode_json_frame


def decode_frame(frame: bytes) -> RemotingCommand:
    """Decode one frame *without* its 4-byte length word (what NettyDecoder hands on).

    The JSON header every peer sends is decoded in one native call (_codec.c); any other
    frame, malformed ones included, by decode_frame_reference."""
    cmd = _decode_native(frame)
    return decode_frame_reference(frame) if cmd is None else cmd


def decode_frame_reference(frame: bytes) -> RemotingCommand:
    """decode_frame in Python: every header form, and the errors for malformed ones."""
    if len(frame) < 4:
        raise FrameTooLarge(f"frame of {len(frame)} bytes has no header word")
    (word,) = struct.unpack_from(">I", frame, 0)
    header_len = word & MAX_HEADER_BYTES
    if header_len > len(frame) - 4:
        raise HeaderDecodeError(f"header length {header_len} exceeds the frame's "
                                f"{len(frame) - 4} bytes")
    header = frame[4:4 + header_len]
    body = frame[4 + header_len:]
    kind = word >> 24
    if kind == SerializeType.JSON:
        return decode_json_header(header, body)
    if kind == SerializeType.ROCKETMQ:
        return decode_binary_header(header, body)
    raise HeaderDecodeError(f"unknown serialize type {kind}")


class FrameDecoder:
    """Incremental decoder: feed it whatever the socket read, iterate the complete commands.

    A read that starts on a frame boundary (the common case) is walked in place: each frame is
    one slice of it, and only an incomplete tail is copied into the buffer. A frame that spans
    reads is gathered in the buffer. Not thread-safe; owned by one connection's reader. After a
    FrameError it must be discarded.
    """

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        # What it holds, read only outside (a reader that checks it on every read without a
        # call): the start of a frame gathered across reads, and the read being walked in
        # place with where its next frame starts, what a reader that stopped early (paused)
        # left of it, taken up by the next feed. Both empty: nothing buffered.
        self.gathered = bytearray()
        self._max = max_frame_bytes
        self.walking = b""
        self._read_at = 0

    @property
    def buffered_bytes(self) -> int:
        return len(self.gathered) + len(self.walking) - self._read_at

    def feed(self, data: bytes) -> Iterator[RemotingCommand]:
        """Append ``data``; the returned iterator yields each complete command and must be
        exhausted. A FrameError raised while iterating leaves earlier commands delivered."""
        return map(decode_frame, self.feed_frames(data))

    def completed_by(self, data: bytes) -> bytes | None:
        """The buffered start of a frame joined with ``data`` when ``data`` completes that
        frame, the buffer emptied (for a reader that walks whole reads itself, then feeds
        back what it did not take); None, nothing changed, otherwise. A client that writes a
        request's header and body apart (the C++ client) sends such reads."""
        buf = self.gathered
        if self.walking or not buf or len(buf) + len(data) < 4:
            return None
        head = bytes(buf[:4]) if len(buf) >= 4 else bytes(buf) + data[:4 - len(buf)]
        (length,) = _LENGTH.unpack_from(head, 0)
        if len(buf) + len(data) < length + 4:  # not yet: gathered as usual, copied once
            return None
        joined = bytes(buf) + data
        buf.clear()
        return joined

    def feed_frames(self, data: bytes) -> Iterable[bytes]:
        """feed() yielding each complete frame undecoded, without its length word (for
        decode_frame, or a reader of its own). A reader may stop early: what it did not take
        stays buffered, ahead of the next feed's data."""
        if not self.gathered and not self.walking:
            # The common read, one whole request (a sync call's), nothing before it: its frame
            # at once, without a generator.
            end = len(data)
            if end >= 4:
                (length,) = _LENGTH.unpack_from(data, 0)
                if length + 4 == end and 4 <= length and end <= self._max:
                    return (data[4:],)
            return self._walk(data)
        if self._read_at < len(self.walking):
            self.gathered += memoryview(self.walking)[self._read_at:]
        self.walking, self._read_at = b"", 0
        if self.gathered:
            self.gathered += data
            return self._drain()
        return self._walk(data)

    def _walk(self, data: bytes) -> Iterator[bytes]:
        pos, end, limit = 0, len(data), self._max
        self.walking = data
        while end - pos >= 4:
            (length,) = _LENGTH.unpack_from(data, pos)
            if length < 4 or length + 4 > limit:
                raise FrameTooLarge(f"frame length {length} outside [4, {limit - 4}]")
            start, pos = pos + 4, pos + 4 + length
            if pos > end:
                pos = start - 4
                break
            self._read_at = pos
            yield data[start:pos]
        self.walking, self._read_at = b"", 0
        if pos < end:  # an incomplete frame: gathered from here on
            self.gathered += memoryview(data)[pos:]

    def _drain(self) -> Iterator[bytes]:
        buf = self.gathered
        while len(buf) >= 4:
            (length,) = _LENGTH.unpack_from(buf, 0)
            # Checked before the frame is complete, so a huge length fails fast.
            if length < 4 or length + 4 > self._max:
                raise FrameTooLarge(f"frame length {length} outside [4, {self._max - 4}]")
            if len(buf) < 4 + length:
                return
            frame = bytes(buf[4:4 + length])
            del buf[:4 + length]  # bytearray trims its front without copying the rest
            yield frame
