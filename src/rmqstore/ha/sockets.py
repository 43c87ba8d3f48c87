"""The HA port's sockets, in one place: the master's listener and the slave's connection.

With TLS (the broker's tls.* settings, net/tls.py) the master's HA port is served as its
remoting port is: permissive (TLS or plaintext, told apart by the first byte) or enforcing
(plaintext refused), client certificates checked when tls.server.need.client.auth asks; that
is how the HA port authenticates its slaves. The slave speaks TLS when its broker's own
connections do (tls.enable, tls.client.*), verifying the master's certificate.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

from ..net.listener import TlsListener
from ..net.tls import TlsClientConfig, TlsServerConfig

log = logging.getLogger(__name__)

BACKLOG = 16  # a master has a handful of slaves
CONNECT_TIMEOUT_S = 3.0  # HAClient.connectMaster's socket connect timeout


class Listener:
    """The master's listening socket, plaintext (asyncio's server) or TLS (TlsListener)."""

    def __init__(self, server: asyncio.Server | None, tls: TlsListener | None) -> None:
        self._server = server
        self._tls = tls

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); the real port when 0 was asked for."""
        socks = self._tls.sockets if self._tls is not None else (
            self._server.sockets if self._server is not None else [])
        if not socks:
            raise RuntimeError("HA listener closed")
        host, port = socks[0].getsockname()[:2]
        return host, port

    async def close(self) -> None:
        if self._tls is not None:
            await self._tls.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def listen(host: str, port: int, factory: Callable[[], asyncio.Protocol],
                 tls: TlsServerConfig | None = None, handshake_timeout_s: float = 10.0
                 ) -> Listener:
    """The master's listener on host:port (0: any free port). ``handshake_timeout_s``: how long
    a TLS port waits for an accepted socket's first byte and handshake."""
    if tls is None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(factory, host, port, backlog=BACKLOG,
                                          reuse_address=True)
        return Listener(server, None)
    listener = TlsListener(factory, tls, tls.context(), handshake_timeout_s,
                           admit=lambda: True, refused=lambda peer: None)
    await listener.start(host, port, BACKLOG)
    return Listener(None, listener)


def no_delay(transport: asyncio.BaseTransport) -> None:
    """TCP_NODELAY on a link's socket, both ends: a SYNC_MASTER's few bytes and the slave's
    8-byte reports are never held back to be coalesced (asyncio sets it on its own TCP
    transports already; uvloop and a TLS transport's socket may not)."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def connect(host: str, port: int, factory: Callable[[], asyncio.BaseProtocol],
                  tls: TlsClientConfig | None = None
                  ) -> tuple[asyncio.BaseTransport, asyncio.BaseProtocol]:
    """The slave's connection to its master's HA port (TLS when ``tls`` is given, the
    master's certificate checked); OSError (ssl.SSLError among them) or TimeoutError if
    none."""
    loop = asyncio.get_running_loop()
    ssl_args = {} if tls is None else {"ssl": tls.context(), "server_hostname": host}
    async with asyncio.timeout(CONNECT_TIMEOUT_S):
        transport, protocol = await loop.create_connection(factory, host, port, **ssl_args)
    no_delay(transport)
    return transport, protocol


def split_address(addr: str) -> tuple[str, int]:
    """"host:port" (the form haServerAddr and haMasterAddress take) -> (host, port)."""
    host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"HA address {addr!r} is not host:port")
    return host, int(port)
