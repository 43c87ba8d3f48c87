"""One slave on the master's HA port (HAConnection of rocketmq-all-4.9.7: its ReadSocketService
and WriteSocketService as one asyncio protocol). Once the slave's first report is accepted, a
plaintext link is handed to a native loop (native_feed.py) that sends and reads from then on;
the transport only closes the socket after it. A TLS link stays here, as below.

Reading: the slave's reports (protocol/ha.py). The first says where to start: where the slave's
log ends, or, for an empty slave (0), the start of the master's last segment. An offset the
master does not hold (past its end, deleted by retention, or inside a record: a diverged log) is
refused with a warning and the connection closed; it is never re-based. Every report is the
slave's acknowledgement, which SYNC_MASTER's sends wait for.

Writing is pushed, never polled: push() sends what the log holds past what was sent, in frames
of at most haTransferBatchSize bytes (never past a segment), several frames to a write, as long
as the transport takes them (its buffer limits pause it; resuming pushes again). The HAService
pushes every link once per loop iteration in which something was appended, so sends stored
together leave together. A link with nothing to send for haSendHeartbeatInterval sends an empty
frame.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from ..protocol.ha import (
    TRANSFER_HEADER_SIZE,
    HAProtocolError,
    ReportDecoder,
    encode_transfer,
    pack_transfer_header,
)
from ..store import MessageStore
from . import sockets
from .config import HAConfig
from .native_feed import NativeFeed

log = logging.getLogger(__name__)

FRAMES_PER_WRITE = 8  # frames of haTransferBatchSize bytes gathered into one write
YIELD_BYTES = 1 << 20  # a push with much to send lets the loop run after this many bytes


class LinkOwner(Protocol):
    """What a link needs of its HAService."""

    store: MessageStore
    config: HAConfig
    links: set[MasterLink]
    native: bool  # plaintext links are fed by a native loop once their start is known

    def start_offset(self, requested: int, peer: str) -> int | None: ...
    def on_ack(self, offset: int) -> None: ...
    def attach(self, link: MasterLink) -> None: ...
    def detach(self, link: MasterLink) -> None: ...



class MasterLink(asyncio.Protocol):
    def __init__(self, service: LinkOwner) -> None:
        self._service = service
        self._reports = ReportDecoder()
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._next: int | None = None  # where the next frame starts (once the slave said)
        self._paused = False
        self._again: asyncio.Handle | None = None  # a push that yielded to the loop
        self._heartbeat: asyncio.TimerHandle | None = None
        self._last_write = self.last_read = self._loop.time()
        self.feed: NativeFeed | None = None  # a plaintext link, once its start is known
        self.ack_offset = -1  # the slave's last report (slaveAckOffset)
        self.peer = "?"
        self.closed = False

    # -- asyncio.Protocol ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment] - uvloop's is no subclass
        sockets.no_delay(transport)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        cfg = self._service.config
        if len(self._service.links) >= cfg.max_slaves:
            log.warning("HA: %s refused: %d slaves linked already (max_slaves)", self.peer,
                        cfg.max_slaves)
            self.closed = True
            transport.close()
            return
        per_write = FRAMES_PER_WRITE * (cfg.transfer_batch_bytes + self.HEADER_SIZE)
        transport.set_write_buffer_limits(high=2 * per_write)
        self._service.attach(self)
        log.info("HA: slave %s connected", self.peer)

    def data_received(self, data: bytes) -> None:
        self.last_read = self._loop.time()
        try:
            offset = self._reports.feed(data)
        except HAProtocolError as exc:
            self.close(f"bad report: {exc}")
            return
        if offset is None:
            return
        if self._next is None:
            start = self._service.start_offset(offset, self.peer)
            if start is None:
                self.close(f"refused its start offset {offset}")
                return
            self._begin(start)
        elif offset > self._service.store.commitlog.max_offset:
            self.close(f"reported offset {offset}, past this master's end: a diverged log")
            return
        self.ack_offset = offset
        self._service.on_ack(offset)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._service.detach(self)
        for handle in (self._again, self._heartbeat):
            if handle is not None:
                handle.cancel()
        log.info("HA: slave %s disconnected%s", self.peer, f" ({exc})" if exc else "")

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self.push()

    # -- the link -----------------------------------------------------------------------
    def close(self, reason: str) -> None:
        if self._transport is not None and not self.closed:
            log.warning("HA: slave %s: %s; connection closed", self.peer, reason)
            self.closed = True
            if self.feed is not None:  # the transport closes once the feed's thread ended
                self.feed.stop()
            else:
                self._transport.close()

    def silent_s(self) -> float:
        """Seconds since the slave's last report."""
        if self.feed is not None:
            return self.feed.silent_s()
        return self._loop.time() - self.last_read

    def _start_feed(self, start: int) -> None:
        """The socket is the native feed's from now on; the transport only closes it after."""
        assert self._transport is not None
        self._transport.pause_reading()
        sock = self._transport.get_extra_info("socket")
        cfg = self._service.config
        self.feed = NativeFeed(self._service.store, sock.fileno(), start,
                               cfg.transfer_batch_bytes, cfg.heartbeat_interval_ms,
                               self._fed_ack, self._feed_ended, self.peer)

    def _fed_ack(self, offset: int) -> None:
        self.ack_offset = offset
        self._service.on_ack(offset)

    def _feed_ended(self, reason: str | None) -> None:
        if reason and not self.closed:
            log.warning("HA: slave %s: %s; connection closed", self.peer, reason)
        self.closed = True
        assert self._transport is not None
        self._transport.close()

    def _begin(self, start: int) -> None:
        """The slave said where it ends: send from ``start`` on (natively, in 4.x's frames)."""
        self._next = start
        if self._service.native and self.FEEDS_NATIVELY:
            self._start_feed(start)
        else:
            self._heartbeat = self._loop.call_later(self._heartbeat_s, self._beat)
            self.push()

    # What a link of another wire format changes (epoch_master.py).
    HEADER_SIZE = TRANSFER_HEADER_SIZE
    FEEDS_NATIVELY = True  # the native feed writes 4.x's frames only

    def _frame_limit(self, offset: int) -> int:
        """The most bytes a frame from ``offset`` may carry."""
        return self._service.config.transfer_batch_bytes

    def _pack_header(self, buf: memoryview, offset: int, size: int, at: int) -> None:
        pack_transfer_header(buf, offset, size, at)

    def _heartbeat_frame(self, offset: int) -> bytes:
        """An empty frame saying where the next bytes start."""
        return encode_transfer(offset, b"")

    def _idle(self) -> None:
        """Everything the log holds was sent."""

    def push(self) -> None:
        """WriteSocketService.run, one round: send what the log holds past what was sent, as
        far as the transport takes it now."""
        self._again = None
        if self.feed is not None:
            if self._service.config.push_delay_ms:
                self.feed.wake()  # an ASYNC_MASTER's gathered appends: its thread sends
            else:
                self.feed.push()  # sent from the loop's thread while the feed sleeps
            return
        if self.closed or self._paused or self._next is None:
            return
        transport = self._transport
        assert transport is not None
        sent = 0
        while not self._paused:
            frames = self._frames()
            if frames is None:
                return
            if not frames:
                self._idle()
                break
            transport.write(frames)
            sent += len(frames)
            if sent >= YIELD_BYTES:  # the loop's other work goes first, then more
                self._again = self._loop.call_soon(self.push)
                break
        if sent:
            self._last_write = self._loop.time()

    def _frames(self) -> memoryview | None:
        """Up to FRAMES_PER_WRITE frames' worth of bytes from self._next on, headers included
        (empty at the log's end), in a buffer of their size (a SYNC_MASTER's push is often one
        small message); None, the link closed, when the log no longer holds self._next."""
        batch = self._service.config.transfer_batch_bytes
        store = self._service.store
        offset = self._next
        assert offset is not None
        head = self.HEADER_SIZE
        want = min(store.commitlog.max_offset - offset, FRAMES_PER_WRITE * batch)
        # one header per frame, and a frame more wherever a segment (or an epoch) ends
        buf = memoryview(bytearray(max(want, 0) + (FRAMES_PER_WRITE + 2) * head))
        at = got = 0
        while got < want and at + head < len(buf):
            body = at + head
            limit = min(self._frame_limit(offset), want - got)
            if limit <= 0:
                break
            n = store.read_log_into(offset, buf[body:body + limit])
            if n is None:
                self.close(f"this master no longer holds offset {offset} (deleted)")
                return None
            if not n:
                break
            self._pack_header(buf, offset, n, at)
            at = body + n
            offset += n
            got += n
        self._next = offset
        return buf[:at]

    @property
    def _heartbeat_s(self) -> float:
        return self._service.config.heartbeat_interval_ms / 1000

    def _beat(self) -> None:
        """An empty frame when nothing was sent for haSendHeartbeatInterval."""
        idle_s = self._loop.time() - self._last_write
        if idle_s >= self._heartbeat_s and not self._paused and not self.closed:
            assert self._transport is not None and self._next is not None
            self._transport.write(self._heartbeat_frame(self._next))
            self._last_write = self._loop.time()
            idle_s = 0
        left_s = self._heartbeat_s - idle_s
        self._heartbeat = self._loop.call_later(left_s if left_s > 0 else self._heartbeat_s,
                                                self._beat)
