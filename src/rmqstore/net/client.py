"""The client side: one connection per address, reused for everything, reopened when lost.

Requests from the peer on these connections (NOTIFY_CONSUMER_IDS_CHANGED, CHECK_TRANSACTION_STATE,
...) go to the client's own Dispatcher; codes it does not serve get REQUEST_CODE_NOT_SUPPORTED.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..protocol.command import RemotingCommand
from ..protocol.frame import DEFAULT_MAX_FRAME_BYTES
from .connection import RemotingConnection
from .dispatch import Dispatcher
from .errors import RemotingConnectError, RemotingTimeout
from .tls import TlsClientConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ClientConfig:
    connect_timeout_s: float = 3.0  # Java's connectTimeoutMillis default
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    tls: TlsClientConfig | None = None  # None: plaintext


def split_address(addr: str) -> tuple[str, int]:
    """``"host:port"`` (RocketMQ's address form) -> (host, port)."""
    host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"not a host:port address: {addr!r}")
    return host.strip("[]"), int(port)


class RemotingClient:
    """Connections keyed by ``"host:port"``. Every call has a deadline that includes connecting.

    ``before_request(request)``, if given, runs on every request this client sends, as a Java
    RPCHook's doBeforeRequest does (a broker signs what it sends to NameServers and brokers).
    """

    def __init__(self, config: ClientConfig = ClientConfig(),
                 dispatcher: Dispatcher | None = None,
                 before_request: Callable[[RemotingCommand], None] | None = None) -> None:
        self.config = config
        self.dispatcher = dispatcher if dispatcher is not None else Dispatcher()
        self._before_request = before_request
        self._connections: dict[str, RemotingConnection] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        # Made once: loading CA files per connect would cost every reconnect.
        self._ssl: ssl.SSLContext | None = config.tls.context() if config.tls else None

    async def invoke(self, addr: str, request: RemotingCommand,
                     timeout_s: float) -> RemotingCommand:
        """Send ``request`` to ``addr`` and return its response within ``timeout_s``."""
        if self._before_request is not None:
            self._before_request(request)
        conn = self._connections.get(addr)
        if conn is not None and not conn.is_closed:  # connected: the common case, kept short
            return await conn.invoke(request, timeout_s)
        deadline = asyncio.get_running_loop().time() + timeout_s
        conn = await self.connection(addr, timeout_s)
        return await conn.invoke(request, self._remaining(deadline))

    def invoke_frame(self, addr: str, code: int, frame_of: Callable[[int], bytes],
                     timeout_s: float) -> Awaitable[RemotingCommand]:
        """invoke() of a frame made by ``frame_of(opaque)`` (RemotingConnection.invoke_frame).
        Refused with a before_request hook, which must see (and may sign) every request.
        Connected, it hands back the connection's own call: no coroutine of ours in between
        (each is resumed again when the answer comes, once per send)."""
        if self._before_request is not None:
            raise ValueError("a pre-made frame cannot pass the before_request hook")
        conn = self._connections.get(addr)
        if conn is not None and not conn.is_closed:
            return conn.invoke_frame(code, frame_of, timeout_s)
        return self._connect_and_invoke_frame(addr, code, frame_of, timeout_s)

    async def _connect_and_invoke_frame(self, addr: str, code: int,
                                        frame_of: Callable[[int], bytes],
                                        timeout_s: float) -> RemotingCommand:
        deadline = asyncio.get_running_loop().time() + timeout_s
        conn = await self.connection(addr, timeout_s)
        return await conn.invoke_frame(code, frame_of, self._remaining(deadline))

    async def invoke_oneway(self, addr: str, request: RemotingCommand, timeout_s: float) -> None:
        """Send ``request`` to ``addr`` with the ONEWAY bit; no response is expected."""
        if self._before_request is not None:
            self._before_request(request)
        deadline = asyncio.get_running_loop().time() + timeout_s
        conn = await self.connection(addr, timeout_s)
        await conn.invoke_oneway(request, self._remaining(deadline))

    async def connection(self, addr: str, timeout_s: float) -> RemotingConnection:
        """The open connection to ``addr``, connecting (again) if there is none."""
        conn = self._connections.get(addr)
        if conn is not None and not conn.is_closed:
            return conn
        lock = self._locks.setdefault(addr, asyncio.Lock())
        async with lock:  # concurrent callers share one connect
            conn = self._connections.get(addr)
            if conn is not None and not conn.is_closed:
                return conn
            conn = await self._connect(addr, min(timeout_s, self.config.connect_timeout_s))
            self._connections[addr] = conn
            return conn

    async def drop(self, addr: str) -> None:
        """Close the connection to ``addr`` (its pending calls fail with ConnectionClosed):
        a peer known to be gone or deposed need not be waited for."""
        conn = self._connections.pop(addr, None)
        if conn is not None:
            conn.close()
            await conn.wait_closed()

    async def close(self) -> None:
        """Close every connection; their pending calls fail with ConnectionClosed."""
        conns, self._connections = list(self._connections.values()), {}
        for conn in conns:
            conn.close()
        for conn in conns:
            await conn.wait_closed()

    async def __aenter__(self) -> RemotingClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _connect(self, addr: str, timeout_s: float) -> RemotingConnection:
        host, port = split_address(addr)
        loop = asyncio.get_running_loop()

        def factory() -> RemotingConnection:
            return RemotingConnection(self.dispatcher.on_request,
                                      max_frame_bytes=self.config.max_frame_bytes)

        tls = {} if self._ssl is None else {"ssl": self._ssl, "server_hostname": host}
        try:
            async with asyncio.timeout(timeout_s):
                _transport, conn = await loop.create_connection(factory, host, port, **tls)
        except TimeoutError:
            raise RemotingTimeout(f"connect to {addr} took over {timeout_s}s") from None
        except ssl.SSLError as exc:  # not an OSError subclass for every failure
            raise RemotingConnectError(f"TLS with {addr} failed: {exc}") from exc
        except OSError as exc:
            raise RemotingConnectError(f"cannot connect to {addr}: {exc}") from exc
        log.debug("connected to %s", addr)
        return conn

    @staticmethod
    def _remaining(deadline: float) -> float:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise RemotingTimeout("deadline passed while connecting")
        return remaining
