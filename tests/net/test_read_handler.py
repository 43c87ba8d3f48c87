"""Dispatcher.read_handler (the broker's SendPath.serve) and the connection's reader around it:
it sees a read only when nothing must see its requests first (no request filter, nothing
buffered before it, none of the connection's requests in service); what it takes it answers
first, in one write with the answers of the frames the reader routes after it."""

from __future__ import annotations

import asyncio

from rmqstore.net import Dispatcher, RequestContext
from rmqstore.net.connection import RemotingConnection
from rmqstore.protocol import FrameDecoder, RemotingCommand, encode
from tests.fake_transport import connected

ECHO = 31002  # the test's own code, outside RequestCode
TAKEN = 31003  # what the test's read handler takes: a leading run of such frames


def _echo(request: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
    return RemotingCommand.response(0, body=request.body)


async def _slow(request: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
    await asyncio.sleep(0.01)
    return RemotingCommand.response(0, body=request.body)


def _frame(code: int, opaque: int) -> bytes:
    return encode(RemotingCommand(code=code, opaque=opaque, body=b"b%d" % opaque))


def _take_leading(seen: list[bytes]):
    """A read handler answering the leading TAKEN frames with an empty frame each."""
    def handler(channel, data: bytes, max_frame: int) -> tuple[int, bytes] | None:
        seen.append(data)
        pos, answers = 0, b""
        decoder = FrameDecoder(max_frame)
        for cmd in decoder.feed(data):
            if cmd.code != TAKEN:
                break
            pos += len(encode(cmd))
            answers += encode(RemotingCommand(code=0, opaque=cmd.opaque, flag=1))
        return (pos, answers) if pos else None
    return handler


def _connection(**kw: object) -> tuple[RemotingConnection, Dispatcher, list[bytes], object]:
    dispatcher = Dispatcher(**kw)  # type: ignore[arg-type]
    dispatcher.register(ECHO, _slow, fast=_echo)
    seen: list[bytes] = []
    dispatcher.read_handler = _take_leading(seen)
    conn = RemotingConnection(dispatcher.on_request, on_frame=dispatcher.on_frame,
                              read_hooks=dispatcher)  # as a server's connections read it
    return conn, dispatcher, seen, connected(conn)


def _opaques(writes: list[bytes]) -> list[list[int]]:
    decoder = FrameDecoder()
    return [[cmd.opaque for cmd in decoder.feed(w)] for w in writes]


def test_a_read_s_leading_frames_are_answered_first_in_one_write() -> None:
    asyncio.run(_test_a_read_s_leading_frames_are_answered_first_in_one_write())


async def _test_a_read_s_leading_frames_are_answered_first_in_one_write() -> None:
    conn, _, seen, transport = _connection()
    conn.data_received(_frame(TAKEN, 1) + _frame(TAKEN, 2))  # taken whole
    conn.data_received(_frame(TAKEN, 3) + _frame(ECHO, 4) + _frame(TAKEN, 5))
    assert len(seen) == 2
    assert _opaques(transport.writes) == [[1, 2], [3, 4, 5]]


def test_a_request_filter_sees_every_request_so_no_read_skips_it() -> None:
    asyncio.run(_test_a_request_filter_sees_every_request_so_no_read_skips_it())


async def _test_a_request_filter_sees_every_request_so_no_read_skips_it() -> None:
    conn, dispatcher, seen, transport = _connection(
        request_filter=lambda request, peer: None)
    dispatcher.register(TAKEN, _slow, fast=_echo)
    conn.data_received(_frame(TAKEN, 1))
    assert seen == [] and _opaques(transport.writes) == [[1]]


def test_a_filter_set_or_dropped_later_takes_or_gives_back_the_reads() -> None:
    asyncio.run(_test_a_filter_set_or_dropped_later_takes_or_gives_back_the_reads())


async def _test_a_filter_set_or_dropped_later_takes_or_gives_back_the_reads() -> None:
    conn, dispatcher, seen, transport = _connection()
    dispatcher.register(TAKEN, _slow, fast=_echo)
    conn.data_received(_frame(TAKEN, 1))  # no filter: taken by the read handler
    dispatcher.request_filter = lambda request, peer: None  # ACL switched on
    conn.data_received(_frame(TAKEN, 2))
    dispatcher.request_filter = None  # and off again
    conn.data_received(_frame(TAKEN, 3))
    assert len(seen) == 2 and _opaques(transport.writes) == [[1], [2], [3]]
    assert dispatcher.read_hook is not None  # the reads are the read handler's again


def test_no_read_is_taken_while_a_request_of_the_connection_is_in_service() -> None:
    asyncio.run(_test_no_read_is_taken_while_a_request_of_the_connection_is_in_service())


async def _test_no_read_is_taken_while_a_request_of_the_connection_is_in_service() -> None:
    conn, dispatcher, seen, transport = _connection()
    dispatcher.register(ECHO, _slow)  # no fast handler: a task serves it
    dispatcher.register(TAKEN, _slow, fast=_echo)
    conn.data_received(_frame(ECHO, 1))  # seen, not taken: a task serves it
    conn.data_received(_frame(TAKEN, 2))  # while 1 is in service: routed frame by frame
    assert len(seen) == 1 and conn.requests_in_flight == 1
    await asyncio.sleep(0.05)
    conn.data_received(_frame(TAKEN, 3))
    assert len(seen) == 2 and _opaques(transport.writes) == [[2], [1], [3]]


def test_a_partial_frame_waits_in_the_decoder_until_a_read_completes_it() -> None:
    asyncio.run(_test_a_partial_frame_waits())


async def _test_a_partial_frame_waits() -> None:
    """Until its frame is whole, a read goes to the decoder; then with what it gathered."""
    conn, dispatcher, seen, transport = _connection()
    dispatcher.register(TAKEN, _slow, fast=_echo)
    whole = _frame(TAKEN, 1)
    conn.data_received(whole[:5])  # not a whole frame: nothing taken, gathered
    conn.data_received(whole[5:8])  # still not: the decoder gathers it, the handler waits
    conn.data_received(whole[8:])
    assert seen == [whole[:5], whole] and _opaques(transport.writes) == [[1]]


def test_a_frame_completed_by_a_later_read_is_taken_with_it() -> None:
    asyncio.run(_test_a_frame_completed_by_a_later_read_is_taken_with_it())


async def _test_a_frame_completed_by_a_later_read_is_taken_with_it() -> None:
    """The C++ client writes a request's header and body apart: the read that completes the
    frame goes to the handler joined with what came before it."""
    conn, dispatcher, seen, transport = _connection()
    dispatcher.register(TAKEN, _slow, fast=_echo)
    first, second = _frame(TAKEN, 1), _frame(TAKEN, 2)
    conn.data_received(first[:30])
    conn.data_received(first[30:] + second[:3])
    conn.data_received(second[3:])
    assert seen[-2:] == [first + second[:3], second]
    assert _opaques(transport.writes) == [[1], [2]]
