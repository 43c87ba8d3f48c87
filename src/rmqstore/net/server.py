"""The listener: accepts connections and hands every request to one Dispatcher.

Each accepted socket gets its own ServerConnection; a malformed frame or a failing handler
closes or answers that connection only, and the listener goes on accepting.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from ..protocol.frame import DEFAULT_MAX_FRAME_BYTES
from .connection import RemotingConnection
from .dispatch import Dispatcher

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"  # loopback unless told otherwise
    port: int = 0  # 0 = any free port (tests); NameServer 9876, Broker 10911
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    backlog: int = 1024


class ServerConnection(RemotingConnection):
    """A connection whose peer must read its responses before we read more of its requests."""

    def pause_writing(self) -> None:
        super().pause_writing()
        # Back-pressure: a peer that does not read its responses gets no more requests read.
        if self._transport is not None and not self.is_closed:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._transport is not None and not self.is_closed:
            self._transport.resume_reading()


class RemotingServer:
    """Listener plus connection set. Start with ``start()`` or ``async with``."""

    def __init__(self, dispatcher: Dispatcher, config: ServerConfig = ServerConfig()) -> None:
        self.dispatcher = dispatcher
        self.config = config
        self._server: asyncio.Server | None = None
        self._connections: set[RemotingConnection] = set()

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); the real port when the config asked for 0."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("server not started")
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    @property
    def connections(self) -> frozenset[RemotingConnection]:
        return frozenset(self._connections)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._new_connection, self.config.host, self.config.port,
            backlog=self.config.backlog, reuse_address=True)
        log.info("remoting server listening on %s:%d", *self.address)

    async def close(self) -> None:
        """Stop accepting, close every connection, wait until they are gone."""
        if self._server is not None:
            self._server.close()
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

    def _new_connection(self) -> ServerConnection:
        conn = ServerConnection(self.dispatcher.on_request,
                                max_frame_bytes=self.config.max_frame_bytes)
        self._connections.add(conn)
        conn.on_lost(lambda: self._connections.discard(conn))
        return conn
