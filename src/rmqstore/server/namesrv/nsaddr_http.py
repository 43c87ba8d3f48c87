"""The HTTP endpoint clients poll for the name-server address list (RocketMQ's fourth way).

Java clients with no address configured GET ``http://<rocketmq.namesrv.domain>:8080/rocketmq/
<rocketmq.namesrv.domain.subgroup>`` (defaults jmenv.tbsite.net and ``nsaddr``; MixAll.getWSAddr),
with ``-<unitName>?nofix=1`` appended when a unit name is set (TopAddressing.fetchNSAddr). The C++
client GETs the URL given to setNamesrvDomain. Both want status 200 and a body
``host:port;host:port``; they keep what precedes the first CR or LF.

The C++ client 1.2.4 (sync_http_client.cpp) keeps only the body bytes that arrived with the
headers (later reads go to stdout), so the whole response goes out in one write. Every request
gets ``Connection: close``, as both clients ask.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

_MAX_REQUEST_HEAD_BYTES = 8192
_READ_TIMEOUT_S = 5.0


class NsAddrHttpServer:
    """Answers GET /rocketmq/<subgroup>[-<unit>][?query] with ``addresses()``."""

    def __init__(self, addresses: Callable[[], str], *, host: str, port: int,
                 subgroup: str = "nsaddr") -> None:
        self._addresses = addresses
        self._host = host
        self._port = port
        self._path = f"/rocketmq/{subgroup}"
        self._server: asyncio.Server | None = None

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None or not self._server.sockets:
            raise RuntimeError("HTTP server not started")
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self._host, self._port, reuse_address=True,
            limit=_MAX_REQUEST_HEAD_BYTES)
        log.info("name-server address list served at http://%s:%d%s", *self.address, self._path)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            async with asyncio.timeout(_READ_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
            status, body = self._answer(head)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError,
                ConnectionError) as exc:
            log.debug("nsaddr HTTP %s: bad or incomplete request: %r", peer, exc)
            status, body = "400 Bad Request", b"bad request\n"
        try:
            writer.write(b"HTTP/1.0 %s\r\nContent-Type: text/plain; charset=UTF-8\r\n"
                         b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
                         % (status.encode(), len(body), body))
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    def _answer(self, head: bytes) -> tuple[str, bytes]:
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return "400 Bad Request", b"bad request\n"
        method, target = parts[0], parts[1]
        path = target.split("?", 1)[0]
        if path != self._path and not path.startswith(self._path + "-"):  # "-<unit>" form
            return "404 Not Found", b"not found\n"
        if method != "GET":
            return "405 Method Not Allowed", b"method not allowed\n"
        return "200 OK", (self._addresses() + "\n").encode("utf-8")
