"""The per-connection buffer cap: a peer whose requests are being served while it sends more
is read no further once what it makes the server hold passes the cap, and every request it
sent is still answered, in order, once the held ones finish."""

from __future__ import annotations

import asyncio

from rmqstore.net import ConnectionLimits, Dispatcher, RemotingServer, RequestContext, ServerConfig
from rmqstore.protocol import FrameDecoder, RemotingCommand, encode

SLOW = 31001  # the test's own code, outside RequestCode
BODY = 10_000
CAP = 64 * 1024  # room for six requests' bodies
REQUESTS = 200


def test_reading_pauses_over_the_cap_and_buffered_requests_are_served_after() -> None:
    async def main() -> None:
        release = asyncio.Event()
        started: list[int] = []

        async def slow(request: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
            started.append(request.opaque)
            await release.wait()
            return RemotingCommand.response(0, body=request.body[:4])

        dispatcher = Dispatcher()
        dispatcher.register(SLOW, slow)
        limits = ConnectionLimits(max_frame_bytes=16 * 1024, max_buffered_bytes=CAP)
        async with RemotingServer(dispatcher, ServerConfig(limits=limits)) as server:
            reader, writer = await asyncio.open_connection(*server.address)
            frames = [encode(RemotingCommand(code=SLOW, opaque=i, body=b"%04d" % i + bytes(BODY)))
                      for i in range(REQUESTS)]
            writer.write(b"".join(frames))  # 2 MB pipelined; the server must not take it all
            for _ in range(50):
                await asyncio.sleep(0.01)
            (conn,) = server.connections
            assert conn.reading_paused
            # in the handlers: at most the cap plus the frame that crossed it
            assert len(started) * BODY <= CAP + BODY, len(started)
            assert conn.held_bytes <= CAP + BODY + 256 * 1024  # + one read (256 KiB at most)
            release.set()
            decoder, answered = FrameDecoder(), []
            async with asyncio.timeout(10):
                while len(answered) < REQUESTS:
                    answered += [r.opaque for r in decoder.feed(await reader.read(65536))]
            assert sorted(answered) == list(range(REQUESTS))
            assert started == list(range(REQUESTS))  # none lost, none reordered
            writer.close()

    asyncio.run(asyncio.wait_for(main(), 20))
