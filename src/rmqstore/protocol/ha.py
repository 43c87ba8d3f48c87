"""RocketMQ 4.x's HA wire format (HAService / HAConnection / HAClient of rocketmq-all-4.9.7):
plain TCP on the master's haListenPort, no framing beyond the two layouts below, big-endian.

Slave -> master, a report: the slave's max commit-log offset, at connect, whenever it grows
and every haSendHeartbeatInterval. The master reads the last complete one (a read of 12 bytes
uses bytes 0-7 and keeps 8-11). The first report is where the master starts sending.

    off  size  field
      0     8  max physical offset          e.g. 00 00 00 00 00 10 00 00  (1,048,576)

Master -> slave, a transfer: a 12-byte header, then body-size bytes of the master's commit
log from that offset (never past a segment's end; BLANK tails included); a body of 0 bytes is
a heartbeat saying where the next bytes will start.

    off  size  field
      0     8  physical offset of the body's first byte
      8     4  body size
     12     n  body: raw commit-log bytes

Example: 32,768 bytes from offset 4096 travel as 00 00 00 00 00 00 10 00 | 00 00 80 00 | ...

Sans-I/O: ReportDecoder and TransferDecoder take bytes as they arrive and return what they
complete; neither holds more than one frame. A body over the decoder's limit is refused
(HAProtocolError), so a garbage header cannot make a slave buffer gigabytes.
"""

from __future__ import annotations

import struct

REPORT = struct.Struct(">q")  # the slave's max physical offset
REPORT_SIZE = REPORT.size  # 8
TRANSFER_HEADER = struct.Struct(">qi")  # physical offset, body size
TRANSFER_HEADER_SIZE = TRANSFER_HEADER.size  # 12
# HAClient.READ_MAX_BUFFER_SIZE: a Java slave cannot take a frame larger than its 4 MiB buffer.
MAX_TRANSFER_BODY = 4 * 1024 * 1024


class HAProtocolError(ValueError):
    """Bytes on an HA connection that do not follow the format: the connection is closed.
    ``frames``: the whole frames the same bytes held before the bad one (to apply first)."""

    def __init__(self, message: str, frames: list | None = None) -> None:
        super().__init__(message)
        self.frames = frames or []


def encode_report(offset: int) -> bytes:
    return REPORT.pack(offset)


def pack_transfer_header(buf: bytearray, offset: int, size: int) -> None:
    """Write the 12-byte header at the start of buf (its body follows it)."""
    TRANSFER_HEADER.pack_into(buf, 0, offset, size)


def encode_transfer(offset: int, body: bytes) -> bytes:
    return TRANSFER_HEADER.pack(offset, len(body)) + body


class ReportDecoder:
    """The master's side: feed() returns the last complete report in what has arrived, or
    None (HAConnection.ReadSocketService.processReadEvent)."""

    def __init__(self) -> None:
        self._partial = b""

    def feed(self, data: bytes) -> int | None:
        data = self._partial + data if self._partial else data
        whole = len(data) - len(data) % REPORT_SIZE
        self._partial = bytes(data[whole:])
        if not whole:
            return None
        offset = REPORT.unpack_from(data, whole - REPORT_SIZE)[0]
        if offset < 0:
            raise HAProtocolError(f"slave reported a negative offset {offset}")
        return offset


class StreamDecoder:
    """What a slave's decoder keeps between feeds: the bytes of a frame not yet complete, and
    the largest body it takes."""

    def __init__(self, max_body: int = MAX_TRANSFER_BODY) -> None:
        self._max_body = max_body
        self._buf = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes held of a frame not yet complete."""
        return len(self._buf)


class TransferDecoder(StreamDecoder):
    """The slave's side: feed() returns the frames the data completes as (offset, body)
    pairs, in order; a frame cut short waits for the rest."""

    def feed(self, data: bytes | bytearray | memoryview) -> list[tuple[int, memoryview]]:
        """Bodies are views that stay valid until the next feed(). A bad header raises
        HAProtocolError with the frames before it."""
        buf = self._buf
        if buf:
            buf += data
            data = buf
        frames: list[tuple[int, memoryview]] = []
        view = memoryview(data)
        pos, end = 0, len(view)
        while end - pos >= TRANSFER_HEADER_SIZE:
            offset, size = TRANSFER_HEADER.unpack_from(view, pos)
            if offset < 0 or not 0 <= size <= self._max_body:
                raise HAProtocolError(f"transfer header (offset {offset}, size {size}) is "
                                      f"outside the limits (size <= {self._max_body})", frames)
            if end - pos - TRANSFER_HEADER_SIZE < size:
                break
            body_at = pos + TRANSFER_HEADER_SIZE
            frames.append((offset, view[body_at:body_at + size]))
            pos = body_at + size
        # the unfinished frame is kept apart: the views above point into data, not into it
        self._buf = bytearray(view[pos:]) if pos < end else bytearray()
        return frames
