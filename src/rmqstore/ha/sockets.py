"""The HA port's sockets, in one place: the master's listener and the slave's connection (a
transport wrapper such as TLS goes here, for both ends at once)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

BACKLOG = 16  # a master has a handful of slaves
CONNECT_TIMEOUT_S = 3.0  # HAClient.connectMaster's socket connect timeout


async def listen(host: str, port: int, factory: Callable[[], asyncio.BaseProtocol]
                 ) -> asyncio.Server:
    """The master's listener on host:port (0: any free port)."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(factory, host, port, backlog=BACKLOG, reuse_address=True)


def no_delay(transport: asyncio.BaseTransport) -> None:
    """TCP_NODELAY on a link's socket, both ends: a SYNC_MASTER's few bytes and the slave's
    8-byte reports are never held back to be coalesced (asyncio sets it on its own TCP
    transports already; uvloop and a TLS transport's socket may not)."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def connect(host: str, port: int, factory: Callable[[], asyncio.BaseProtocol]
                  ) -> tuple[asyncio.BaseTransport, asyncio.BaseProtocol]:
    """The slave's connection to its master's HA port; OSError or TimeoutError if none."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(CONNECT_TIMEOUT_S):
        transport, protocol = await loop.create_connection(factory, host, port)
    no_delay(transport)
    return transport, protocol


def split_address(addr: str) -> tuple[str, int]:
    """"host:port" (the form haServerAddr and haMasterAddress take) -> (host, port)."""
    host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"HA address {addr!r} is not host:port")
    return host, int(port)
