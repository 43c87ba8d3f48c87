"""The connection's reader: a read is walked frame by frame in place, whatever its split, and
what the frames of one read are answered with at once leaves in one write, after which a
malformed frame may still close the connection. Its caller's side: calls made while others
are in flight leave together and are matched to their answers by opaque, in any order."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from rmqstore.net import ConnectionClosed, Dispatcher, RemotingTimeout, RequestContext
from rmqstore.net.connection import RemotingConnection
from rmqstore.protocol import FrameDecoder, RemotingCommand, decode_frame, encode
from tests.fake_transport import FakeTransport, connected

ECHO = 31002  # the test's own code, outside RequestCode


def _echo(request: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
    return RemotingCommand.response(0, body=request.body)  # answered in the reader


async def _never(request: RemotingCommand, ctx: RequestContext) -> None:
    raise AssertionError("the fast handler answers every request here")


def _connection() -> tuple[RemotingConnection, FakeTransport]:
    dispatcher = Dispatcher()
    dispatcher.register(ECHO, _never, fast=_echo)
    conn = RemotingConnection(dispatcher.on_request, on_frame=dispatcher.on_frame)
    return conn, connected(conn)


def _requests(n: int) -> bytes:
    return b"".join(encode(RemotingCommand(code=ECHO, opaque=i, body=b"m%d" % i * (i * 7)))
                    for i in range(1, n + 1))


def _answers(transport: FakeTransport) -> list[tuple[int, bytes]]:
    cmds = list(FrameDecoder().feed(b"".join(transport.writes)))
    assert all(cmd.is_response for cmd in cmds)
    return [(cmd.opaque, cmd.body) for cmd in cmds]


def _run(test: object) -> None:
    async def main() -> None:
        test()  # type: ignore[operator]
    asyncio.run(main())


def test_a_stream_split_at_every_byte_is_answered_once_in_order() -> None:
    def test() -> None:
        stream = _requests(3)
        want = [(i, b"m%d" % i * (i * 7)) for i in range(1, 4)]
        for cut in range(len(stream) + 1):
            conn, transport = _connection()
            conn.data_received(stream[:cut])
            conn.data_received(stream[cut:])
            assert _answers(transport) == want, cut
            assert conn.held_bytes == 0 and conn.partial_frame_since is None
        conn, transport = _connection()
        for i in range(len(stream)):  # a byte a read
            conn.data_received(stream[i:i + 1])
        assert _answers(transport) == want
    _run(test)


def test_the_answers_to_one_read_leave_in_one_write() -> None:
    def test() -> None:
        conn, transport = _connection()
        conn.data_received(_requests(20))
        assert len(transport.writes) == 1
        assert [opaque for opaque, _ in _answers(transport)] == list(range(1, 21))
        conn.data_received(_requests(1))  # the next read: a write of its own
        assert len(transport.writes) == 2
    _run(test)


def test_whole_frames_a_handler_made_leave_in_the_read_s_one_write_and_not_once_closed(
) -> None:
    def premade(request: RemotingCommand, ctx: RequestContext) -> bytes:
        return encode(RemotingCommand(code=0, opaque=request.opaque, flag=1, body=request.body))

    def test() -> None:
        dispatcher = Dispatcher()
        dispatcher.register(ECHO, _never, fast=premade)
        conn = RemotingConnection(dispatcher.on_request, on_frame=dispatcher.on_frame)
        transport = connected(conn)
        conn.data_received(_requests(5))
        assert len(transport.writes) == 1
        assert [opaque for opaque, _ in _answers(transport)] == [1, 2, 3, 4, 5]
        conn.close()
        with pytest.raises(ConnectionClosed):
            conn.send_frame(encode(RemotingCommand(code=0, opaque=9, flag=1)))
        assert len(transport.writes) == 1
    _run(test)


def test_a_malformed_frame_closes_after_the_answers_before_it() -> None:
    def test() -> None:
        conn, transport = _connection()
        conn.data_received(_requests(2) + b"\x00\x00\x00\x01garbage")
        assert [opaque for opaque, _ in _answers(transport)] == [1, 2]
        assert transport.closed_after == 1 and conn.is_closed
    _run(test)


def test_a_reader_that_stops_early_finds_the_rest_at_the_next_feed() -> None:
    stream = _requests(4)
    decoder = FrameDecoder()
    first = decoder.feed_frames(stream[:-3])  # frames 1-3 whole, frame 4 cut short
    assert decode_frame(next(first)).opaque == 1  # the reader stops here (paused)
    left = len(stream) - 3 - len(encode(RemotingCommand(code=ECHO, opaque=1, body=b"m1" * 7)))
    assert decoder.buffered_bytes == left
    rest = [decode_frame(f).opaque for f in decoder.feed_frames(stream[-3:])]
    assert rest == [2, 3, 4] and decoder.buffered_bytes == 0


# --- the caller's side: pipelined calls -----------------------------------------------------


def _answer(opaque: int, body: bytes) -> bytes:
    return encode(RemotingCommand(code=0, opaque=opaque, flag=1, body=body))


def test_pipelined_calls_leave_together_and_match_answers_in_any_order() -> None:
    async def main() -> None:
        conn = RemotingConnection(lambda c, r: None)
        transport = connected(conn)
        calls = [asyncio.ensure_future(conn.invoke(
            RemotingCommand(code=ECHO, body=b"q%d" % i), 5.0)) for i in range(5)]
        await asyncio.sleep(0)  # the five calls made in one loop iteration
        await asyncio.sleep(0)
        sent = list(FrameDecoder().feed(b"".join(transport.writes)))
        assert [c.body for c in sent] == [b"q%d" % i for i in range(5)]
        assert len(transport.writes) == 2  # the first at once, the four behind it together
        conn.data_received(b"".join(_answer(c.opaque, c.body.replace(b"q", b"a"))
                                    for c in reversed(sent)))
        assert [(await c).body for c in calls] == [b"a%d" % i for i in range(5)]
    asyncio.run(main())


def test_a_call_timing_out_leaves_the_others_answered() -> None:
    async def main() -> None:
        conn = RemotingConnection(lambda c, r: None)
        transport = connected(conn)
        slow = asyncio.ensure_future(conn.invoke(RemotingCommand(code=ECHO, body=b"s"), 0.05))
        fast = asyncio.ensure_future(conn.invoke(RemotingCommand(code=ECHO, body=b"f"), 5.0))
        await asyncio.sleep(0.2)
        with pytest.raises(RemotingTimeout):
            await slow
        (s, f) = FrameDecoder().feed(b"".join(transport.writes))
        conn.data_received(_answer(s.opaque, b"late") + _answer(f.opaque, b"ok"))
        assert (await fast).body == b"ok" and conn.calls_pending == 0
    asyncio.run(main())


def test_what_is_gathered_goes_out_before_a_close() -> None:
    async def main() -> None:
        conn = RemotingConnection(lambda c, r: None)
        transport = connected(conn)
        calls = [asyncio.ensure_future(conn.invoke(RemotingCommand(code=ECHO), 5.0))
                 for _ in range(3)]
        await asyncio.sleep(0)  # made, the last two gathered, not yet written
        conn.close()
        assert len(list(FrameDecoder().feed(b"".join(transport.writes)))) == 3
        assert transport.closed_after == len(transport.writes)
        for call in calls:
            with pytest.raises(ConnectionClosed):
                await call
    asyncio.run(main())


def test_after_the_opaques_wrap_a_call_never_takes_one_still_pending() -> None:
    async def main() -> None:
        conn = RemotingConnection(lambda c, r: None)
        transport = connected(conn)
        conn._opaques = itertools.count(0x7FFFFFFF)  # noqa: SLF001 - the wrap, reached at once
        first = asyncio.ensure_future(conn.invoke(RemotingCommand(code=ECHO, body=b"0"), 5.0))
        await asyncio.sleep(0)
        conn._opaques = itertools.count(0x7FFFFFFF)  # noqa: SLF001 - the same opaque next
        second = asyncio.ensure_future(conn.invoke(RemotingCommand(code=ECHO, body=b"1"), 5.0))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        sent = list(FrameDecoder().feed(b"".join(transport.writes)))
        assert [c.opaque for c in sent] == [0x7FFFFFFF, 0]  # masked to int32, then wrapped
        conn.data_received(b"".join(_answer(c.opaque, c.body) for c in reversed(sent)))
        assert [(await c).body for c in (first, second)] == [b"0", b"1"]
    asyncio.run(main())
