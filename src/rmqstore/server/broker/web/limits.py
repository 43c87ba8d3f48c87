"""The HTTP port's limits (our keys; RocketMQ's exporter has none): at most httpMaxConnections
open at once, a connection past that answered 503 and closed (logged once while the port is
full, not once per connection), and a connection closed once it has held no request in
progress for httpHeaderTimeoutMillis: one that sends nothing, dribbles a request's headers
(slowloris) or sits idle between requests. Bodies are bounded by the application's
client_max_size, header lines and fields by aiohttp's parser (8190 bytes each).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger(__name__)

REFUSAL = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
           b"Content-Length: 29\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
           b"too many connections: retry\r\n")
MIN_SWEEP_S = 0.05


class HttpLimits:
    """Counts and times the connections of one listener; ``factory`` wraps aiohttp's protocol
    factory, ``middleware`` marks a request in progress, ``sweep`` (a task) closes the idle."""

    def __init__(self, max_connections: int, header_timeout_s: float) -> None:
        self.max_connections = max_connections
        self.header_timeout_s = header_timeout_s
        self.refused = 0  # connections turned away since start
        self._episode = 0  # refused since the port was last below its cap
        self._since: dict[RequestHandler, float] = {}  # idle since; absent while busy
        self._server: web.Server | None = None

    def factory(self, server: web.Server) -> Callable[[], asyncio.Protocol]:
        self._server = server

        def make() -> asyncio.Protocol:
            if len(server.connections) >= self.max_connections:
                return self._refuse()
            if self._episode:
                log.warning("HTTP port below httpMaxConnections=%d again: %d connection(s) "
                            "were refused", self.max_connections, self._episode)
                self._episode = 0
            handler = server()
            self._since[handler] = time.monotonic()
            return handler
        return make

    @web.middleware
    async def middleware(self, request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                         ) -> web.StreamResponse:
        protocol = request.protocol
        self._since.pop(protocol, None)  # busy: its headers have come
        try:
            return await handler(request)
        finally:
            self._since[protocol] = time.monotonic()

    async def sweep(self) -> None:
        """Close every connection idle past header_timeout_s; runs until cancelled."""
        while True:
            await asyncio.sleep(max(MIN_SWEEP_S, self.header_timeout_s / 4))
            self.close_idle(time.monotonic())

    def close_idle(self, now: float) -> None:
        live = set(self._server.connections) if self._server is not None else set()
        for handler, since in list(self._since.items()):
            if now - since <= self.header_timeout_s:
                continue
            del self._since[handler]
            if handler in live and handler.transport is not None:
                handler.transport.close()

    def _refuse(self) -> asyncio.Protocol:
        self.refused += 1
        self._episode += 1
        if self._episode == 1:
            log.warning("HTTP port at httpMaxConnections=%d: refusing connections (logged once "
                        "until it is below again)", self.max_connections)
        return _Refused()


class _Refused(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(REFUSAL)  # type: ignore[attr-defined]  # a TCP transport (uvloop's too)
        transport.close()


class LimitedSite(web.TCPSite):
    """aiohttp's TCPSite whose connections go through HttpLimits' factory first."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int,
                 limits: HttpLimits) -> None:
        super().__init__(runner, host, port, reuse_address=True)
        self._limits = limits

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registered with the runner (TCPSite.start, aiohttp 3)
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            self._limits.factory(server), self._host, self._port, reuse_address=True)
