"""Helpers for the remoting tests: a server on its own loop thread, and a blocking raw client.

Everything binds 127.0.0.1 on a free port; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from rmqstore.net import Dispatcher, RemotingServer, RequestContext
from rmqstore.protocol import FrameDecoder, RemotingCommand, encode

ECHO = 1000  # a request code of our own: answers SUCCESS with the request's extFields and body


async def echo(request: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
    return RemotingCommand.response(0, ext_fields=request.ext_fields, body=request.body)


def echo_dispatcher() -> Dispatcher:
    dispatcher = Dispatcher()
    dispatcher.register(ECHO, echo)
    return dispatcher


class ThreadedServer:
    """A RemotingServer running on an event loop in a daemon thread."""

    def __init__(self, dispatcher_factory: Callable[[], Dispatcher]) -> None:
        self._factory = dispatcher_factory
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, daemon=True)
        self.server: RemotingServer | None = None

    def start(self) -> tuple[str, int]:
        self._thread.start()
        assert self._ready.wait(5), "server did not start"
        assert self.server is not None
        return self.server.address

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        self.server = RemotingServer(self._factory())
        await self.server.start()
        self._ready.set()
        await self._stop.wait()
        await self.server.close()


@pytest.fixture(scope="module")
def threaded_server() -> Iterator[tuple[str, int]]:
    srv = ThreadedServer(echo_dispatcher)
    address = srv.start()
    yield address
    srv.stop()


def raw_connect(address: tuple[str, int], timeout_s: float = 2.0) -> socket.socket:
    sock = socket.create_connection(address, timeout=timeout_s)
    sock.settimeout(timeout_s)
    return sock


def read_commands(sock: socket.socket, count: int) -> list[RemotingCommand]:
    """Read until ``count`` commands arrived (or EOF / timeout: then fewer)."""
    decoder, out = FrameDecoder(), []
    while len(out) < count:
        try:
            data = sock.recv(65536)
        except (TimeoutError, ConnectionError):
            break
        if not data:
            break
        out.extend(decoder.feed(data))
    return out


def read_until_closed(sock: socket.socket, limit_bytes: int = 1 << 20) -> bytes:
    """Everything the peer sends until it closes (bounded by the socket timeout)."""
    chunks, total = [], 0
    while total < limit_bytes:
        try:
            data = sock.recv(65536)
        except (TimeoutError, ConnectionError):
            break
        if not data:
            break
        chunks.append(data)
        total += len(data)
    return b"".join(chunks)


def sync_call(address: tuple[str, int], cmd: RemotingCommand) -> RemotingCommand:
    """One request on a fresh blocking connection; its single response."""
    with raw_connect(address) as sock:
        sock.sendall(encode(cmd))
        got = read_commands(sock, 1)
    assert got, "no response"
    return got[0]
