"""A TLS listener (permissive or enforcing mode): accepts, peeks at the first byte, and hands
the socket to asyncio with TLS or without.

asyncio's start_tls cannot take bytes a protocol has already read, so the first byte is looked
at with MSG_PEEK before any transport exists; the socket then goes to
``loop.connect_accepted_socket``, with the SSLContext when the byte opens a TLS handshake
record. Anything that reuses this (an HA port) passes its own protocol factory.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable

from .connection import TLS_RECORD_HANDSHAKE
from .tls import TlsMode, TlsServerConfig

log = logging.getLogger(__name__)

ACCEPT_RETRY_S = 0.5  # after EMFILE and the like, as asyncio's own accept loop waits


class TlsListener:
    """Owns a listening socket and its accept task; ``admit()`` false refuses a socket at once
    (the server's connection cap), ``refused(sock)`` is told about it."""

    def __init__(self, factory: Callable[[], asyncio.Protocol], tls: TlsServerConfig,
                 context: ssl.SSLContext, first_byte_timeout_s: float,
                 admit: Callable[[], bool], refused: Callable[[str], None]) -> None:
        self._factory = factory
        self._mode = tls.mode
        self._context = context
        self._timeout_s = first_byte_timeout_s or None
        self._admit = admit
        self._refused = refused
        self._sock: socket.socket | None = None
        self._accepting: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()

    @property
    def sockets(self) -> list[socket.socket]:
        return [self._sock] if self._sock is not None else []

    @property
    def opening(self) -> int:
        """Accepted sockets not yet connections (waiting for their first byte or handshake)."""
        return len(self._pending)

    async def start(self, host: str, port: int, backlog: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.create_server((host, port), family=family, backlog=backlog)
        sock.setblocking(False)
        self._sock = sock
        self._accepting = asyncio.create_task(self._accept_loop(sock), name="tls-accept")

    async def close(self) -> None:
        tasks = [t for t in (self._accepting, *self._pending) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    async def _accept_loop(self, listening: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, _addr = await loop.sock_accept(listening)
            except OSError as exc:  # EMFILE, ENFILE, ENOBUFS: wait, as asyncio's accept does
                log.error("accept failed (%s); retrying in %.1f s", exc, ACCEPT_RETRY_S)
                await asyncio.sleep(ACCEPT_RETRY_S)
                continue
            if not self._admit():
                self._refused(_peer(sock))
                sock.close()
                continue
            task = asyncio.create_task(self._open(sock))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _open(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        peer = _peer(sock)
        made: list[asyncio.Protocol] = []

        def factory() -> asyncio.Protocol:
            made.append(self._factory())
            return made[-1]
        try:
            first = await self._first_byte(sock)
            if not first:
                sock.close()  # closed before saying anything
                return
            if first[0] != TLS_RECORD_HANDSHAKE:
                if self._mode is TlsMode.ENFORCING:
                    log.warning("%s: plaintext on a TLS-only port (tls.server.mode=enforcing), "
                                "closing the connection", peer)
                    sock.close()
                    return
                await loop.connect_accepted_socket(factory, sock)
                return
            await loop.connect_accepted_socket(factory, sock, ssl=self._context,
                                               ssl_handshake_timeout=self._timeout_s)
        except (TimeoutError, OSError, ssl.SSLError) as exc:  # one connection's business
            if isinstance(exc, TimeoutError):
                log.warning("%s: no first byte or TLS handshake within %s s, closing the "
                            "connection", peer, self._timeout_s)
            else:
                log.warning("%s: TLS handshake failed, closing the connection: %s", peer, exc)
            sock.close()
            # A protocol made for a handshake that failed was never connected, and asyncio
            # does not tell it: whoever counts connections through it must hear it is gone.
            for protocol in made:
                protocol.connection_lost(exc)

    async def _first_byte(self, sock: socket.socket) -> bytes:
        loop = asyncio.get_running_loop()
        readable = loop.create_future()
        fd = sock.fileno()
        loop.add_reader(fd, lambda: readable.done() or readable.set_result(None))
        try:
            async with asyncio.timeout(self._timeout_s):
                await readable
        finally:
            loop.remove_reader(fd)
        try:
            return sock.recv(1, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):  # a spurious wake-up: look again
            return await self._first_byte(sock)


def _peer(sock: socket.socket) -> str:
    try:
        host, port = sock.getpeername()[:2]
    except OSError:
        return "?"
    return f"{host}:{port}"
