"""Loopback stand-ins for one end of an HA link, and a proxy that cuts it: what a broken
network or a broken peer looks like to the other end."""

from __future__ import annotations

import asyncio
import os

from rmqstore.protocol.ha import REPORT, encode_transfer


class LoopbackServer:
    """A listener on a free loopback port; ``_serve`` takes each connection."""

    server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return "127.0.0.1:%d" % self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _serve(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        raise NotImplementedError


class CuttingProxy(LoopbackServer):
    """Forwards host:port; the first ``cuts`` connections are closed (both ways) once
    ``cut_after`` bytes went from the master to the slave, which is mid-frame unless the
    frames happen to end there."""

    def __init__(self, target: tuple[str, int], cut_after: int, cuts: int = 1) -> None:
        self.target = target
        self.cut_after = cut_after
        self.cuts_left = cuts
        self.connections = 0

    async def _serve(self, sr: asyncio.StreamReader, sw: asyncio.StreamWriter) -> None:
        self.connections += 1
        cut = self.cut_after if self.cuts_left > 0 else None
        self.cuts_left -= 1
        mr, mw = await asyncio.open_connection(*self.target)

        async def pipe(r, w, limit):
            sent = 0
            try:
                while data := await r.read(65536):
                    if limit is not None and sent + len(data) >= limit:
                        w.write(data[:limit - sent])
                        await w.drain()
                        break
                    sent += len(data)
                    w.write(data)
                    await w.drain()
            except (ConnectionError, OSError):
                pass
            for writer in (sw, mw):
                writer.close()

        try:
            await asyncio.gather(pipe(sr, mw, None), pipe(mr, sw, cut))
        except asyncio.CancelledError:  # the proxy closing under a live link
            for writer in (sw, mw):
                writer.close()


class FakeMaster(LoopbackServer):
    """Takes one slave at a time and answers its first report with ``frames(offset)``: a list
    of raw byte strings sent as they are, then stays silent until the slave hangs up."""

    def __init__(self, frames) -> None:
        self.frames = frames
        self.reports: list[int] = []
        self.closed = asyncio.Event()

    async def _serve(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        first = REPORT.unpack(await r.readexactly(8))[0]
        self.reports.append(first)
        for frame in self.frames(first):
            w.write(frame)
        await w.drain()
        try:
            while data := await r.read(65536):
                for i in range(0, len(data) - 7, 8):
                    self.reports.append(REPORT.unpack_from(data, i)[0])
        except (ConnectionError, OSError):
            pass
        w.close()
        self.closed.set()


def garbage_frame(offset: int, size: int = 4096) -> bytes:
    return encode_transfer(offset, os.urandom(size))
