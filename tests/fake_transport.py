"""A stand-in for an asyncio transport under a RemotingConnection, without a socket: it records
every write and the close, and may answer each write at once (``on_write``)."""

from __future__ import annotations

from collections.abc import Callable

from rmqstore.net.connection import RemotingConnection


class FakeTransport:
    def __init__(self, on_write: Callable[[bytes], None] | None = None) -> None:
        self.writes: list[bytes] = []
        self.closed_after = -1  # how many writes there were when it closed
        self._on_write = on_write

    def write(self, data: bytes) -> None:
        assert self.closed_after < 0, "written after close"
        self.writes.append(bytes(data))
        if self._on_write is not None:
            self._on_write(bytes(data))

    def close(self) -> None:
        self.closed_after = len(self.writes)

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 10911) if name == "peername" else default

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def connected(conn: RemotingConnection,
              on_write: Callable[[bytes], None] | None = None) -> FakeTransport:
    """``conn`` made on a FakeTransport (run on an event loop); the transport."""
    transport = FakeTransport(on_write)
    conn.connection_made(transport)  # type: ignore[arg-type]
    return transport
