"""A minimal Redis client for benchmark producers (RESP2 over a blocking socket): commands
encoded once, replies parsed by hand, so that the client's own CPU per send stays near that
of the socket calls and a peer's figure speaks of the server, not of redis-py's Python layers.
Replies understood: simple string, error, integer, bulk string (what XADD and WAIT answer)."""

from __future__ import annotations

import socket


class RespError(Exception):
    """The server answered an error reply, or a reply this client does not read."""


def command(*args: bytes | str | int) -> bytes:
    """One command as a RESP array of bulk strings."""
    parts = [a if isinstance(a, bytes) else str(a).encode() for a in args]
    return b"".join([b"*%d\r\n" % len(parts),
                     *(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)])


def parse(buf: bytes | bytearray, pos: int = 0) -> tuple[bytes | int | None, int] | None:
    """The reply starting at ``pos`` and the position after it, or None while it is not
    whole in ``buf``; an error reply raises RespError."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        return None
    kind, line = buf[pos:pos + 1], bytes(buf[pos + 1:end])
    if kind == b"+":
        return line, end + 2
    if kind == b":":
        return int(line), end + 2
    if kind == b"$":
        size = int(line)
        if size < 0:
            return None, end + 2  # the null bulk string
        if len(buf) < end + 2 + size + 2:
            return None
        return bytes(buf[end + 2:end + 2 + size]), end + 2 + size + 2
    if kind == b"-":
        raise RespError(line.decode(errors="replace"))
    raise RespError(f"a reply of kind {kind!r} this client does not read")


def wait_failures(replies: list) -> int:
    """How many of a pipeline's WAIT answers (every second reply, after its XADD's id) say
    that no replica acknowledged the write in time."""
    return sum(int(n) < 1 for n in replies[1::2])


class Connection:
    """One connection: request() sends pre-encoded commands and returns their ``count``
    replies."""

    def __init__(self, host: str, port: int, timeout_s: float) -> None:
        self._sock = socket.create_connection((host, port), timeout=timeout_s)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = bytearray()

    def request(self, payload: bytes, count: int) -> list[bytes | int | None]:
        self._sock.sendall(payload)
        replies: list[bytes | int | None] = []
        pos = 0
        while len(replies) < count:
            got = parse(self._buf, pos)
            if got is None:
                chunk = self._sock.recv(65536)
                if not chunk:
                    raise RespError("the server closed the connection")
                self._buf += chunk
                continue
            reply, pos = got
            replies.append(reply)
        del self._buf[:pos]
        return replies

    def close(self) -> None:
        self._sock.close()
