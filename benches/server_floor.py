"""The floor of a SEND on this machine: the least a broker must do for a sync send, measured
with the same clients, loopback and disk as `rmqstore serve` (server_bench.py --floor).

    python benches/server_floor.py --port P --dir D [--flush sync|async]

It splits RocketMQ remoting frames (length, header word, JSON header), appends each request
frame to one file with os.write, and answers SUCCESS with the request's opaque. In sync flush
an answer waits for an fdatasync that covers the frame: one sync at a time on rmqstore's native
sync thread (no Python thread, no GIL hand-off), each covering everything appended before it
started: a group commit with no delay. No topic, no queue, no index, no properties: what it
reaches is what any Python broker could reach here with these clients; the broker's rate over
it says how much of the machine the broker's own work leaves.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import struct

from rmqstore import _native
from rmqstore.net.loop import run

_OPAQUE = re.compile(rb'"opaque":(-?\d+)')
_REPLY_HEADER = (b'{"code":0,"extFields":{},"flag":1,"language":"JAVA","opaque":%d,'
                 b'"serializeTypeCurrentRPC":"JSON","version":0}')


def reply(opaque: int) -> bytes:
    header = _REPLY_HEADER % opaque
    return struct.pack(">iI", 4 + len(header), len(header)) + header


class Log:
    """The append-only file and its group commit."""

    def __init__(self, path: str, sync: bool, loop: asyncio.AbstractEventLoop) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        self.sync = sync
        self.written = 0
        self.cell = _native.new_cell(0)
        self.waiting: list[tuple[int, asyncio.Transport, bytes]] = []  # (end, transport, reply)
        self.busy = False
        if sync:
            self.efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            self.syncer = _native.Syncer(self.efd)
            loop.add_reader(self.efd, self.on_synced)

    def append(self, frame: bytes, transport: asyncio.Transport, answer: bytes) -> None:
        self.written += os.write(self.fd, frame)
        if not self.sync:
            transport.write(answer)
            return
        self.waiting.append((self.written, transport, answer))
        if not self.busy:
            self.start()

    def start(self) -> None:
        self.cell[0] = self.written
        self.busy = self.syncer.submit(self.fd, self.cell)

    def on_synced(self) -> None:
        os.eventfd_read(self.efd)
        upto, err = self.syncer.done()
        if err:
            raise OSError(err, os.strerror(err))
        self.busy = False
        left = []
        for end, transport, answer in self.waiting:
            if end <= upto:
                transport.write(answer)
            else:
                left.append((end, transport, answer))
        self.waiting = left
        if left:
            self.start()


class FloorProtocol(asyncio.Protocol):
    def __init__(self, log: Log) -> None:
        self.log = log
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        pos = 0
        while len(buf) - pos >= 4:
            (length,) = struct.unpack_from(">i", buf, pos)
            end = pos + 4 + length
            if end > len(buf):
                break
            frame = buf[pos:end]
            (word,) = struct.unpack_from(">I", frame, 4)
            match = _OPAQUE.search(frame, 8, 8 + (word & 0xFFFFFF))
            assert self.transport is not None
            self.log.append(frame, self.transport, reply(int(match.group(1)) if match else 0))
            pos = end
        self.buf = buf[pos:]


async def serve(port: int, directory: str, sync: bool) -> None:
    loop = asyncio.get_running_loop()
    log = Log(os.path.join(directory, "floor.log"), sync, loop)
    server = await loop.create_server(lambda: FloorProtocol(log), "127.0.0.1", port)
    print(f"floor listening on 127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--flush", choices=["async", "sync"], default="sync")
    args = ap.parse_args()
    run(serve(args.port, args.dir, args.flush == "sync"))


if __name__ == "__main__":
    main()
