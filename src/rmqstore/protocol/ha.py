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

Sans-I/O: ReportDecoder takes bytes as they arrive and returns the last report; TransferReader
owns the buffer a slave receives into and takes the headers out in place, leaving the bodies
back to back: the master's log bytes, ready to append. A body over the limit, a frame that does
not start where the bytes before it end, or more bytes than a record can span are refused
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
MIN_RECEIVE = 64 * 1024  # TransferReader's buffer always has this much room for the next read


class HAProtocolError(ValueError):
    """Bytes on an HA connection that do not follow the format: the connection is closed.
    ``frames``: the whole frames the same bytes held before the bad one (to apply first)."""

    def __init__(self, message: str, frames: list | None = None) -> None:
        super().__init__(message)
        self.frames = frames or []


def encode_report(offset: int) -> bytes:
    return REPORT.pack(offset)


def pack_transfer_header(buf: bytearray | memoryview, offset: int, size: int,
                         at: int = 0) -> None:
    """Write the 12-byte header at buf[at] (its body follows it)."""
    TRANSFER_HEADER.pack_into(buf, at, offset, size)


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


class TransferReader:
    """The slave's side (HAClient.dispatchReadRequest), without a copy per frame: the
    transport receives into ``buffer()``, ``received(n)`` takes the headers out, and the
    bodies lie back to back in ``log()``, the master's log from ``offset`` on; ``consume(k)``
    drops the first k of them once they are appended (the rest starts a record a frame
    boundary cut, and waits for the bytes that complete it).

    Every frame must start where the bytes before it end; the first one at ``expect`` (None:
    anywhere). ``log()`` is a view into the buffer, valid until the next call of any other
    method. The buffer grows, up to what ``max_pending`` log bytes and one frame need.

    Another transfer layout (ha_epoch.py's) changes HEADER_SIZE and ``_header``."""

    HEADER_SIZE = TRANSFER_HEADER_SIZE

    def __init__(self, expect: int | None, max_body: int = MAX_TRANSFER_BODY,
                 max_pending: int = 64 << 20, capacity: int = 1 << 20) -> None:
        self.offset = expect  # the physical offset of log()'s first byte
        self._max_body = max_body
        self._max_pending = max_pending
        self._buf = bytearray(max(capacity, 2 * MIN_RECEIVE))
        self._log_end = 0  # log bytes: buf[0:log_end]
        self._raw_at = 0  # received, not yet parsed: buf[raw_at:raw_end]
        self._raw_end = 0
        self._body_left = 0  # bytes of the current frame's body still to come

    def buffer(self) -> memoryview:
        """Where the next bytes go (what a BufferedProtocol's get_buffer returns)."""
        if len(self._buf) - self._raw_end < MIN_RECEIVE:
            self._compact(0, len(self._buf))
            if len(self._buf) - self._raw_end < MIN_RECEIVE:
                self._compact(0, 2 * len(self._buf))
        return memoryview(self._buf)[self._raw_end:]

    def received(self, n: int) -> None:
        """n bytes arrived in buffer(): parse what they complete. HAProtocolError on a bad
        header; the log bytes before it stay in log()."""
        buf = self._buf
        view = memoryview(buf)
        self._raw_end += n
        while True:
            if self._body_left:
                k = min(self._body_left, self._raw_end - self._raw_at)
                if not k:
                    break
                if self._log_end != self._raw_at:
                    view[self._log_end:self._log_end + k] = view[self._raw_at:self._raw_at + k]
                self._log_end += k
                self._raw_at += k
                self._body_left -= k
                continue
            if self._raw_end - self._raw_at < self.HEADER_SIZE:
                break
            offset, size = self._header(buf, self._raw_at)
            if offset < 0 or not 0 <= size <= self._max_body:
                raise HAProtocolError(f"transfer header (offset {offset}, size {size}) is "
                                      f"outside the limits (size <= {self._max_body})")
            if self.offset is None:
                self.offset = offset
            elif offset != self.offset + self._log_end:
                raise HAProtocolError(f"master sent offset {offset}; this replica expects "
                                      f"{self.offset + self._log_end}")
            self._raw_at += self.HEADER_SIZE
            self._body_left = size
        if self._log_end > self._max_pending:
            raise HAProtocolError(f"{self._log_end} bytes without a whole record")
        if self._raw_at == self._raw_end:  # nothing half parsed: receive right after the log
            self._raw_at = self._raw_end = self._log_end

    def _header(self, buf: bytearray, at: int) -> tuple[int, int]:
        """The (offset, body size) of the header at buf[at]."""
        return TRANSFER_HEADER.unpack_from(buf, at)

    def log(self) -> memoryview:
        return memoryview(self._buf)[:self._log_end]

    def consume(self, k: int) -> None:
        """The first k log bytes were appended: they go, what follows moves to the front."""
        if k:
            assert self.offset is not None and 0 < k <= self._log_end
            self.offset += k
            self._compact(k, len(self._buf))

    def _compact(self, log_from: int, capacity: int) -> None:
        """Keep log bytes [log_from, log_end) and the unparsed bytes, at the front of a buffer
        of ``capacity`` bytes (this one when it is the same size: exported views of the old
        one stay valid, since a bytearray that grows may move)."""
        capacity = min(capacity, self._max_pending + self._max_body + MIN_RECEIVE)
        keep = self._log_end - log_from
        raw = self._raw_end - self._raw_at
        old = memoryview(self._buf)
        new = old if capacity <= len(self._buf) else memoryview(bytearray(capacity))
        new[:keep] = old[log_from:self._log_end]
        new[keep:keep + raw] = old[self._raw_at:self._raw_end]
        self._buf = new.obj  # type: ignore[assignment]
        self._log_end = keep
        self._raw_at = keep
        self._raw_end = keep + raw
