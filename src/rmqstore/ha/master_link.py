"""One slave on the master's HA port (HAConnection of rocketmq-all-4.9.7: its ReadSocketService
and WriteSocketService as one asyncio protocol and one task).

Reading: the slave's reports (protocol/ha.py). The first says where to start: where the slave's
log ends, or, for an empty slave (0), the start of the master's last segment. An offset the
master does not hold (past its end, deleted by retention, or inside a record: a diverged log) is
refused with a warning and the connection closed; it is never re-based. Every report is the
slave's acknowledgement, which SYNC_MASTER's sends wait for.

Writing: frames of at most haTransferBatchSize bytes from where the last one ended, as fast as
the socket takes them (the transport's buffer limits pace it), never past a segment; when
caught up it waits to be woken by an append (or polls every POLL_S) and sends an empty frame
every haSendHeartbeatInterval.
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
from .config import HAConfig

log = logging.getLogger(__name__)

POLL_S = 0.01  # a caught-up writer looks for appends nobody woke it for this often
YIELD_BYTES = 1 << 20  # a writer with much to send lets the loop run after this many bytes


class LinkOwner(Protocol):
    """What a link needs of its HAService."""

    store: MessageStore
    config: HAConfig
    links: set[MasterLink]

    def start_offset(self, requested: int, peer: str) -> int | None: ...
    def on_ack(self, offset: int) -> None: ...


class MasterLink(asyncio.Protocol):
    def __init__(self, service: LinkOwner) -> None:
        self._service = service
        self._reports = ReportDecoder()
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._started: asyncio.Future[int] = self._loop.create_future()
        self._wake = asyncio.Event()
        self._writable: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self.last_read = self._loop.time()
        self.ack_offset = -1  # the slave's last report (slaveAckOffset)
        self.peer = "?"
        self.closed = False

    # -- asyncio.Protocol ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment] - uvloop's is no subclass
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        limit = self._service.config.max_slaves
        if len(self._service.links) >= limit:
            log.warning("HA: %s refused: %d slaves linked already (max_slaves)", self.peer, limit)
            self.closed = True
            transport.close()
            return
        batch = self._service.config.transfer_batch_bytes
        transport.set_write_buffer_limits(high=4 * batch + 4 * TRANSFER_HEADER_SIZE)
        self._service.links.add(self)
        self._task = self._loop.create_task(self._transfer(), name=f"ha-transfer-{self.peer}")
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
        if not self._started.done():
            start = self._service.start_offset(offset, self.peer)
            if start is None:
                self.close(f"refused its start offset {offset}")
                return
            self._started.set_result(start)
        elif offset > self._service.store.commitlog.max_offset:
            self.close(f"reported offset {offset}, past this master's end: a diverged log")
            return
        self.ack_offset = offset
        self._service.on_ack(offset)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._service.links.discard(self)
        if self._task is not None:
            self._task.cancel()
        if not self._started.done():
            self._started.cancel()
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        log.info("HA: slave %s disconnected%s", self.peer, f" ({exc})" if exc else "")

    def pause_writing(self) -> None:
        self._writable = self._loop.create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    # -- the link -----------------------------------------------------------------------
    def wake(self) -> None:
        """Bytes were appended: send them now rather than at the next poll."""
        self._wake.set()

    def close(self, reason: str) -> None:
        if self._transport is not None and not self.closed:
            log.warning("HA: slave %s: %s; connection closed", self.peer, reason)
            self.closed = True
            self._transport.close()

    def _frame(self, offset: int) -> tuple[bytearray | None, int]:
        """The next frame from ``offset``, its header packed, and its data size; (None, 0)
        when this master no longer holds ``offset``."""
        frame = self._service.store.read_log(offset, self._service.config.transfer_batch_bytes,
                                             TRANSFER_HEADER_SIZE)
        if frame is None:
            return None, 0
        size = len(frame) - TRANSFER_HEADER_SIZE
        if size:
            pack_transfer_header(frame, offset, size)
        return frame, size

    def _heartbeat(self, offset: int) -> bytes:
        """An empty frame saying where the next bytes start."""
        return encode_transfer(offset, b"")

    def _idle(self) -> None:
        """The slave has everything (nothing to send)."""

    async def _transfer(self) -> None:
        """WriteSocketService.run: frames from the slave's start offset on."""
        next_offset = await self._started
        service = self._service
        cfg = service.config
        heartbeat_s = cfg.heartbeat_interval_ms / 1000
        transport = self._transport
        assert transport is not None
        last_write = self._loop.time()
        sent = 0
        while not self.closed:
            if self._writable is not None:
                await self._writable
                continue
            self._wake.clear()
            frame, size = self._frame(next_offset)
            if frame is None:
                self.close(f"this master no longer holds offset {next_offset} (deleted)")
                return
            if size:
                transport.write(frame)
                next_offset += size
                last_write = self._loop.time()
                sent += size
                if sent >= YIELD_BYTES:
                    sent = 0
                    await asyncio.sleep(0)
                continue
            self._idle()
            idle_s = heartbeat_s - (self._loop.time() - last_write)
            if idle_s <= 0:
                transport.write(self._heartbeat(next_offset))
                last_write = self._loop.time()
                continue
            try:
                async with asyncio.timeout(min(idle_s, POLL_S)):
                    await self._wake.wait()
            except TimeoutError:
                pass
