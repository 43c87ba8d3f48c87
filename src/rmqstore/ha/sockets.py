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


async def connect(host: str, port: int, factory: Callable[[], asyncio.BaseProtocol]
                  ) -> tuple[asyncio.BaseTransport, asyncio.BaseProtocol]:
    """The slave's connection to its master's HA port; OSError or TimeoutError if none."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(CONNECT_TIMEOUT_S):
        transport, protocol = await loop.create_connection(factory, host, port)
    sock = transport.get_extra_info("socket")
    if sock is not None:  # reports are 8 bytes: never held back for coalescing
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return transport, protocol


def split_address(addr: str) -> tuple[str, int]:
    """"host:port" (the form haServerAddr and haMasterAddress take) -> (host, port)."""
    host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"HA address {addr!r} is not host:port")
    return host, int(port)
