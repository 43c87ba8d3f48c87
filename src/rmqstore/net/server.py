"""The listener: accepts connections and hands every request to one Dispatcher.

Each accepted socket gets its own ServerConnection; a malformed frame or a failing handler
closes or answers that connection only, and the listener goes on accepting. The server holds
its connections to ConnectionLimits: beyond the connection cap a new socket is closed at once
(logged, at most every LOG_EVERY_S); a sweep closes connections idle too long and those whose
frame has not completed in time. With TLS (permissive or enforcing) the accepting is
listener.TlsListener's; without, asyncio's own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .connection import RemotingConnection
from .dispatch import Dispatcher
from .limits import ConnectionLimits
from .listener import TlsListener
from .tls import TlsServerConfig

log = logging.getLogger(__name__)

LOG_EVERY_S = 10.0  # refusals of a flood are summed into one log line per this
MAX_SWEEP_INTERVAL_S = 1.0


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"  # loopback unless told otherwise
    port: int = 0  # 0 = any free port (tests); NameServer 9876, Broker 10911
    backlog: int = 1024  # serverSocketBacklog
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    tls: TlsServerConfig | None = None  # None: plaintext only (tls.server.mode=disabled)


class ServerConnection(RemotingConnection):
    """A connection whose peer must read its responses before we read more of its requests."""

    def pause_writing(self) -> None:
        super().pause_writing()
        # Back-pressure: a peer that does not read its responses gets no more requests read.
        self._pause_reading("writing")

    def resume_writing(self) -> None:
        super().resume_writing()
        self._resume_reading("writing")


class _Refused(asyncio.Protocol):
    """What a socket beyond the connection cap gets: closed as soon as it is accepted."""

    def __init__(self, refused: Callable[[str], None]) -> None:
        self._refused = refused

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        transport.close()
        self._refused(f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer))


class _Throttled:
    """Counts events; says when to log them (the first, then at most every LOG_EVERY_S)."""

    def __init__(self) -> None:
        self._last = -LOG_EVERY_S
        self.count = 0

    def due(self) -> bool:
        self.count += 1
        now = time.monotonic()
        if now - self._last < LOG_EVERY_S:
            return False
        self._last = now
        return True

    def take(self) -> int:
        count, self.count = self.count, 0
        return count


class RemotingServer:
    """Listener plus connection set. Start with ``start()`` or ``async with``."""

    def __init__(self, dispatcher: Dispatcher, config: ServerConfig = ServerConfig()) -> None:
        self.dispatcher = dispatcher
        self.config = config
        self._server: asyncio.Server | None = None
        self._tls: TlsListener | None = None
        self._connections: set[RemotingConnection] = set()
        self._cap = config.limits.connection_cap()
        self._refusals = _Throttled()
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); the real port when the config asked for 0."""
        sockets = self._tls.sockets if self._tls is not None else (
            self._server.sockets if self._server is not None else ())
        if not sockets:
            raise RuntimeError("server not started")
        host, port = sockets[0].getsockname()[:2]
        return host, port

    @property
    def connections(self) -> frozenset[RemotingConnection]:
        return frozenset(self._connections)

    @property
    def max_connections(self) -> int:
        return self._cap

    async def start(self) -> None:
        c = self.config
        if c.tls is not None:
            # a socket that says nothing is closed as a silent connection would be
            first_byte_s = c.limits.frame_read_timeout_s or c.limits.max_idle_s
            self._tls = TlsListener(self._new_connection, c.tls, c.tls.context(), first_byte_s,
                                    self._admit, self._refuse)
            await self._tls.start(c.host, c.port, c.backlog)
        else:
            loop = asyncio.get_running_loop()
            self._server = await loop.create_server(
                self._accept, c.host, c.port, backlog=c.backlog, reuse_address=True)
        self._sweeper = asyncio.create_task(self._sweep(), name="remoting-sweep")
        log.info("remoting server listening on %s:%d (%s; at most %d connections, frames of "
                 "%d bytes, %d buffered per connection)", *self.address,
                 f"TLS {c.tls.mode}" if c.tls is not None else "plaintext", self._cap,
                 c.limits.max_frame_bytes, c.limits.max_buffered_bytes)

    async def close(self) -> None:
        """Stop accepting, close every connection, wait until they are gone."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self._server is not None:
            self._server.close()
        if self._tls is not None:
            await self._tls.close()
        conns = list(self._connections)
        for conn in conns:
            conn.close()
        for conn in conns:
            await conn.wait_closed()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> RemotingServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- admission ---------------------------------------------------------------------------
    def _admit(self) -> bool:
        opening = self._tls.opening if self._tls is not None else 0
        return len(self._connections) + opening < self._cap

    def _refuse(self, peer: str) -> None:
        if self._refusals.due():
            log.warning("%d connection(s) refused, the last from %s: %d connections is the "
                        "limit (serverMaxConnections)", self._refusals.take(), peer, self._cap)

    def _accept(self) -> asyncio.Protocol:
        if not self._admit():
            return _Refused(self._refuse)
        return self._new_connection()

    def _new_connection(self) -> ServerConnection:
        limits = self.config.limits
        conn = ServerConnection(self.dispatcher.on_request,
                                max_frame_bytes=limits.max_frame_bytes,
                                max_buffered_bytes=limits.max_buffered_bytes,
                                on_frame=self.dispatcher.on_frame,
                                read_hooks=self.dispatcher)
        self._connections.add(conn)
        conn.on_lost(lambda: self._connections.discard(conn))
        return conn

    # -- timeouts ----------------------------------------------------------------------------
    async def _sweep(self) -> None:
        limits = self.config.limits
        timeouts = [t for t in (limits.frame_read_timeout_s, limits.max_idle_s) if t > 0]
        if not timeouts:
            return
        interval = min(MAX_SWEEP_INTERVAL_S, min(timeouts) / 4)
        while True:
            await asyncio.sleep(interval)
            self.close_expired(time.monotonic())

    def close_expired(self, now: float) -> None:
        """Close the connections past a timeout at ``now`` (time.monotonic())."""
        limits = self.config.limits
        read_s, idle_s = limits.frame_read_timeout_s, limits.max_idle_s
        for conn in list(self._connections):
            started = conn.partial_frame_since
            # a connection we stopped reading ourselves is not the one that is slow
            if read_s and started is not None and not conn.reading_paused \
                    and now - started > read_s:
                conn.close_for(f"a frame begun {now - started:.1f} s ago is still incomplete "
                               f"(frame read timeout {read_s:g} s)")
            elif idle_s and now - conn.last_io_at > idle_s and not conn.requests_in_flight \
                    and not conn.calls_pending:
                conn.close_for(f"idle for {now - conn.last_io_at:.1f} s "
                               f"(serverChannelMaxIdleTimeSeconds {idle_s:g})")
