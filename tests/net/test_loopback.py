"""A real RemotingServer and RemotingClient on 127.0.0.1: calls, deadlines, errors,
back-pressure."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import socket
import struct
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest

from rmqstore.net import (
    ConnectionClosed,
    Dispatcher,
    RemotingClient,
    RemotingConnectError,
    RemotingServer,
    RemotingTimeout,
    RequestContext,
    ServerConfig,
    SystemBusy,
)
from rmqstore.protocol import (
    FrameDecoder,
    RemotingCommand,
    RequestCode,
    ResponseCode,
    SerializeType,
    encode,
)
from rmqstore.protocol.header_codec import decode_header
from rmqstore.protocol.headers import GetRouteInfoRequestHeader

from .conftest import ECHO, echo, read_commands

# The test's own codes, outside RequestCode (1001-1013 are the controller's).
SLOW = 31001  # sleeps for the float in extFields["s"], then answers like ECHO
HANG = 31002  # never answers
FAIL = 31003  # raises
assert not {SLOW, HANG, FAIL} & set(RequestCode)
ROUTE = RequestCode.GET_ROUTEINFO_BY_TOPIC  # decodes a typed header (topic required)


async def slow(request: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
    await asyncio.sleep(float(request.ext_fields.get("s", "0")))
    return RemotingCommand.response(0, ext_fields=request.ext_fields)


async def hang(request: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def fail(request: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
    raise RuntimeError("store exploded")


async def route(request: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
    h = decode_header(GetRouteInfoRequestHeader, request.ext_fields)
    return RemotingCommand.response(0, body=h.topic.encode())


def make_dispatcher(max_inflight: int = 1024) -> Dispatcher:
    d = Dispatcher(max_inflight_per_connection=max_inflight)
    for code, handler in ((ECHO, echo), (SLOW, slow), (HANG, hang), (FAIL, fail), (ROUTE, route)):
        d.register(code, handler)
    return d


def run(test: Callable[..., Coroutine[Any, Any, None]], *args: Any, timeout_s: float = 10) -> None:
    """asyncio.run with an outer bound, so that a hang fails the test instead of the suite."""
    asyncio.run(asyncio.wait_for(test(*args), timeout_s))


async def serving(dispatcher: Dispatcher | None = None) -> tuple[RemotingServer, str]:
    server = RemotingServer(dispatcher or make_dispatcher(), ServerConfig(host="127.0.0.1", port=0))
    await server.start()
    host, port = server.address
    return server, f"{host}:{port}"


def scenario(fn: Callable[[RemotingServer, RemotingClient, str], Awaitable[None]],
             dispatcher: Dispatcher | None = None) -> None:
    async def main() -> None:
        server, addr = await serving(dispatcher)
        try:
            async with RemotingClient() as client:
                await fn(server, client, addr)
        finally:
            await server.close()
    run(main)


def test_invoke_echoes_fields_and_body() -> None:
    async def body(server: RemotingServer, client: RemotingClient, addr: str) -> None:
        req = RemotingCommand.request(ECHO, {"k": "v", "n": "1"}, b"\x00payload")
        resp = await client.invoke(addr, req, 2)
        assert resp.code == ResponseCode.SUCCESS and resp.is_response and not resp.is_oneway
        assert resp.ext_fields == {"k": "v", "n": "1"} and resp.body == b"\x00payload"
        assert resp.serialize_type == SerializeType.JSON and resp.language == "JAVA"
    scenario(body)


def test_binary_request_gets_binary_response() -> None:
    async def body(server: RemotingServer, client: RemotingClient, addr: str) -> None:
        req = RemotingCommand.request(ECHO, {"k": "v"}, b"b")
        req.serialize_type = SerializeType.ROCKETMQ
        resp = await client.invoke(addr, req, 2)
        assert resp.serialize_type == SerializeType.ROCKETMQ
        assert (resp.code, resp.ext_fields, resp.body) == (0, {"k": "v"}, b"b")
    scenario(body)


def test_oneway_runs_the_handler_and_gets_no_response() -> None:
    seen: asyncio.Queue[RemotingCommand] = asyncio.Queue()

    async def record(request: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
        seen.put_nowait(request)
        return RemotingCommand.response(0)

    d = make_dispatcher()
    d.register(RequestCode.UPDATE_CONSUMER_OFFSET, record)

    async def body(server: RemotingServer, client: RemotingClient, addr: str) -> None:
        await client.invoke_oneway(addr, RemotingCommand.request(
            RequestCode.UPDATE_CONSUMER_OFFSET, {"commitOffset": "5"}), 2)
        got = await asyncio.wait_for(seen.get(), 2)
        assert got.is_oneway and got.ext_fields == {"commitOffset": "5"}
    scenario(body, d)


def test_oneway_sends_nothing_back_on_the_wire() -> None:
    seen = asyncio.Event()

    async def record(request: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
        seen.set()
        return RemotingCommand.response(0)

    d = make_dispatcher()
    d.register(RequestCode.UPDATE_CONSUMER_OFFSET, record)

    async def main() -> None:
        server, _addr = await serving(d)
        try:
            reader, writer = await asyncio.open_connection(*server.address)
            oneway = RemotingCommand(code=RequestCode.UPDATE_CONSUMER_OFFSET, opaque=1, flag=2)
            writer.write(encode(oneway) + encode(RemotingCommand(code=ECHO, opaque=2)))
            data = await asyncio.wait_for(reader.read(65536), 2)
            got = list(FrameDecoder().feed(data))  # only the echo's response may arrive
            assert [c.opaque for c in got] == [2] and seen.is_set()
            writer.close()
        finally:
            await server.close()
    run(main)


def test_timeout_then_connection_still_usable() -> None:
    async def body(server: RemotingServer, client: RemotingClient, addr: str) -> None:
        with pytest.raises(RemotingTimeout) as info:
            await client.invoke(addr, RemotingCommand.request(SLOW, {"s": "0.5"}), 0.1)
        assert isinstance(info.value, TimeoutError)
        conn = await client.connection(addr, 1)
        assert conn.calls_pending == 0
        await asyncio.sleep(0.5)  # the late response arrives and is dropped
        resp = await client.invoke(addr, RemotingCommand.request(ECHO, {"x": "1"}), 2)
        assert resp.ext_fields == {"x": "1"}
        assert await client.connection(addr, 1) is conn
    scenario(body)


def test_each_call_expires_at_its_own_deadline() -> None:
    """One timer serves a connection's calls: a shorter call made while a longer one waits
    expires at its own deadline, and the longer one still at its own, not at the first's."""
    async def body(server: RemotingServer, client: RemotingClient, addr: str) -> None:
        loop = asyncio.get_running_loop()
        began = loop.time()

        async def expiry(timeout_s: float) -> float:
            with pytest.raises(RemotingTimeout):
                await client.invoke(addr, RemotingCommand.request(HANG), timeout_s)
            return loop.time() - began

        long_call = asyncio.ensure_future(expiry(1.2))
        await asyncio.sleep(0.05)
        assert 0.3 <= await expiry(0.3) < 0.9  # not held back to the longer call's deadline
        assert 1.2 <= await long_call < 2.5  # nor expired with the shorter one
        conn = await client.connection(addr, 1)
        assert conn.calls_pending == 0
    scenario(body)


def test_concurrent_requests_matched_by_opaque() -> None:
    async def body(server: RemotingServer, client: RemotingClient, addr: str) -> None:
        rnd = random.Random(4)
        reqs = [RemotingCommand.request(SLOW, {"i": str(i), "s": f"{rnd.uniform(0, 0.05):.3f}"})
                for i in range(200)]
        resps = await asyncio.gather(*(client.invoke(addr, r, 5) for r in reqs))
        assert [r.ext_fields["i"] for r in resps] == [str(i) for i in range(200)]
        assert len({r.opaque for r in resps}) == 200
        assert len(server.connections) == 1  # one connection per address
    scenario(body)


def test_server_close_fails_pending_with_connection_closed() -> None:
    async def main() -> None:
        server, addr = await serving()
        async with RemotingClient() as client:
            calls = [asyncio.ensure_future(client.invoke(addr, RemotingCommand.request(HANG), 5))
                     for _ in range(3)]
            await asyncio.sleep(0.1)
            await server.close()
            for call in calls:
                with pytest.raises(ConnectionClosed) as info:
                    await call
                assert info.value.__cause__ is not None  # why it closed (here: EOF from the peer)
    run(main)


def test_client_close_with_reason_sets_cause() -> None:
    async def body(server: RemotingServer, client: RemotingClient, addr: str) -> None:
        conn = await client.connection(addr, 1)
        call = asyncio.ensure_future(conn.invoke(RemotingCommand.request(HANG), 5))
        await asyncio.sleep(0.05)
        reason = OSError("link down")
        conn.close(reason)
        with pytest.raises(ConnectionClosed) as info:
            await call
        assert info.value.__cause__ is reason
        with pytest.raises(ConnectionClosed):
            await conn.invoke(RemotingCommand.request(ECHO), 1)
    scenario(body)


def test_handler_task_cancelled_when_its_connection_closes() -> None:
    cancelled = asyncio.Event()

    async def hold(request: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()
        raise AssertionError("unreachable")

    d = make_dispatcher()
    d.register(HANG, hold)

    async def body(server: RemotingServer, client: RemotingClient, addr: str) -> None:
        conn = await client.connection(addr, 1)
        call = asyncio.ensure_future(conn.invoke(RemotingCommand.request(HANG), 5))
        await asyncio.sleep(0.05)
        conn.close()
        await asyncio.wait_for(cancelled.wait(), 2)
        with pytest.raises(ConnectionClosed):
            await call
    scenario(body, d)


def test_unknown_code_is_not_supported(caplog: pytest.LogCaptureFixture) -> None:
    async def body(server: RemotingServer, client: RemotingClient, addr: str) -> None:
        resp = await client.invoke(addr, RemotingCommand.request(999), 2)
        assert resp.code == ResponseCode.REQUEST_CODE_NOT_SUPPORTED
        assert resp.remark == " request type 999 not supported"
    with caplog.at_level(logging.WARNING, logger="rmqstore.net"):
        scenario(body)
    assert "request type 999 not supported" in caplog.text


def test_every_unserved_client_code_is_answered() -> None:
    async def body(server: RemotingServer, client: RemotingClient, addr: str) -> None:
        codes = [c for c in RequestCode if c not in (ROUTE,)]
        resps = await asyncio.gather(*(client.invoke(addr, RemotingCommand.request(c), 2)
                                       for c in codes))
        assert {r.code for r in resps} == {ResponseCode.REQUEST_CODE_NOT_SUPPORTED}
    scenario(body)


def test_inflight_cap_answers_system_busy() -> None:
    async def body(server: RemotingServer, client: RemotingClient, addr: str) -> None:
        reqs = [RemotingCommand.request(SLOW, {"i": str(i), "s": "0.3"}) for i in range(6)]
        resps = await asyncio.gather(*(client.invoke(addr, r, 3) for r in reqs))
        codes = [r.code for r in resps]
        assert codes.count(ResponseCode.SUCCESS) == 2
        assert codes.count(ResponseCode.SYSTEM_BUSY) == 4
        busy = next(r for r in resps if r.code == ResponseCode.SYSTEM_BUSY)
        assert busy.remark is not None and busy.remark.startswith("[OVERLOAD]")
        # Once the slow ones finish, the connection serves again.
        assert (await client.invoke(addr, RemotingCommand.request(ECHO), 2)).code == 0
    scenario(body, make_dispatcher(max_inflight=2))


def test_busy_hook_and_system_busy_from_handler() -> None:
    store_slow = True

    async def shed(request: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
        raise SystemBusy("[PCBUSY_CLEAN_QUEUE]broker busy")

    d = make_dispatcher()
    d.register(RequestCode.SEND_MESSAGE, echo, busy=lambda: store_slow)
    d.register(RequestCode.SEND_MESSAGE_V2, shed)

    async def body(server: RemotingServer, client: RemotingClient, addr: str) -> None:
        nonlocal store_slow
        r = await client.invoke(addr, RemotingCommand.request(RequestCode.SEND_MESSAGE), 2)
        assert r.code == ResponseCode.SYSTEM_BUSY and r.remark.startswith("[REJECTREQUEST]")
        store_slow = False
        r = await client.invoke(addr, RemotingCommand.request(RequestCode.SEND_MESSAGE), 2)
        assert r.code == ResponseCode.SUCCESS
        r = await client.invoke(addr, RemotingCommand.request(RequestCode.SEND_MESSAGE_V2), 2)
        assert (r.code, r.remark) == (ResponseCode.SYSTEM_BUSY, "[PCBUSY_CLEAN_QUEUE]broker busy")
    scenario(body, d)


def test_handler_error_and_missing_field_get_system_error(
        caplog: pytest.LogCaptureFixture) -> None:
    async def body(server: RemotingServer, client: RemotingClient, addr: str) -> None:
        with caplog.at_level(logging.ERROR, logger="rmqstore.net"):
            r = await client.invoke(addr, RemotingCommand.request(FAIL), 2)
        # a short reason and an incident id, never the exception's text; the log has both
        found = re.fullmatch(r"internal error \(incident ([0-9a-f]{8})\)", r.remark or "")
        assert r.code == ResponseCode.SYSTEM_ERROR and found, r.remark
        (record,) = [rec for rec in caplog.records if found[1] in rec.getMessage()]
        assert record.exc_info and "store exploded" in str(record.exc_info[1])
        r = await client.invoke(addr, RemotingCommand.request(ROUTE, {"AccessKey": ""}), 2)
        assert (r.code, r.remark) == (ResponseCode.SYSTEM_ERROR, "the custom field <topic> is null")
        r = await client.invoke(addr, RemotingCommand.request(ROUTE, {"topic": "T1"}), 2)
        assert (r.code, r.body) == (0, b"T1")
    scenario(body)


def test_server_to_client_request() -> None:
    notified: asyncio.Queue[str] = asyncio.Queue()

    async def on_notify(request: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
        notified.put_nowait(request.ext_fields["consumerGroup"])
        return RemotingCommand.response(0)

    async def poke(request: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
        # The broker calls back on the same connection (NOTIFY_CONSUMER_IDS_CHANGED is oneway).
        await ctx.channel.invoke_oneway(RemotingCommand.request(
            RequestCode.NOTIFY_CONSUMER_IDS_CHANGED, {"consumerGroup": "G1"}), 1)
        back = await ctx.channel.invoke(RemotingCommand.request(
            RequestCode.GET_CONSUMER_RUNNING_INFO), 1)
        return RemotingCommand.response(0, remark=str(back.code))

    d = make_dispatcher()
    d.register(2000, poke)
    client_side = Dispatcher()
    client_side.register(RequestCode.NOTIFY_CONSUMER_IDS_CHANGED, on_notify)

    async def main() -> None:
        server, addr = await serving(d)
        try:
            async with RemotingClient(dispatcher=client_side) as client:
                r = await client.invoke(addr, RemotingCommand.request(2000), 2)
                assert r.remark == str(int(ResponseCode.REQUEST_CODE_NOT_SUPPORTED))
                assert await asyncio.wait_for(notified.get(), 1) == "G1"
        finally:
            await server.close()
    run(main)


def test_client_reconnects_after_server_restart() -> None:
    async def main() -> None:
        server, addr = await serving()
        port = server.address[1]
        async with RemotingClient() as client:
            assert (await client.invoke(addr, RemotingCommand.request(ECHO), 2)).code == 0
            await server.close()
            await asyncio.sleep(0.05)
            with pytest.raises((ConnectionClosed, RemotingConnectError)):
                await client.invoke(addr, RemotingCommand.request(ECHO), 1)
            server = RemotingServer(make_dispatcher(), ServerConfig(port=port))
            await server.start()
            try:
                assert (await client.invoke(addr, RemotingCommand.request(ECHO), 2)).code == 0
            finally:
                await server.close()
    run(main)


def test_connect_refused() -> None:
    async def main() -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # bound but not listening: connection refused
            async with RemotingClient() as client:
                with pytest.raises(RemotingConnectError) as info:
                    await client.invoke(f"127.0.0.1:{port}", RemotingCommand.request(ECHO), 1)
                assert isinstance(info.value.__cause__, OSError)
    run(main)


def test_bad_frame_closes_only_its_connection(caplog: pytest.LogCaptureFixture) -> None:
    async def body(server: RemotingServer, client: RemotingClient, addr: str) -> None:
        assert (await client.invoke(addr, RemotingCommand.request(ECHO), 2)).code == 0
        reader, writer = await asyncio.open_connection(*server.address)
        writer.write(struct.pack(">ii", 6, 2) + b"{x")  # bad JSON
        assert await asyncio.wait_for(reader.read(), 2) == b""  # closed by the server
        writer.close()
        reader, writer = await asyncio.open_connection(*server.address)
        writer.write(struct.pack(">i", 0x7FFFFFF0))  # oversized: closed before any body
        assert await asyncio.wait_for(reader.read(), 2) == b""
        writer.close()
        assert (await client.invoke(addr, RemotingCommand.request(ECHO), 2)).code == 0
    with caplog.at_level(logging.WARNING, logger="rmqstore.net"):
        scenario(body)
    assert "bad JSON header" in caplog.text and "outside [4," in caplog.text


def test_cpp_style_request_gets_json_strings_back() -> None:
    async def main() -> None:
        server, _addr = await serving()
        try:
            header = (b'{"code":105,"extFields":{"AccessKey":"","OnsChannel":"ALIYUN",'
                      b'"Signature":"x","topic":"TopicSniff"},"flag":0,"language":"CPP",'
                      b'"opaque":12,"remark":"","version":63}\n')
            reader, writer = await asyncio.open_connection(*server.address)
            writer.write(struct.pack(">ii", 4 + len(header), len(header)) + header)
            prefix = await asyncio.wait_for(reader.readexactly(8), 2)
            length, word = struct.unpack(">ii", prefix)
            assert word >> 24 == 0  # the C++ client never masks the type byte: must be JSON
            rest = await reader.readexactly(length - 4)
            resp = json.loads(rest[:word])
            assert (resp["code"], resp["opaque"], resp["flag"]) == (0, 12, 1)
            assert rest[word:] == b"TopicSniff"
            writer.close()
        finally:
            await server.close()
    run(main)


def test_read_commands_helper_on_raw_socket(threaded_server: tuple[str, int]) -> None:
    with socket.create_connection(threaded_server, timeout=2) as sock:
        sock.sendall(encode(RemotingCommand(code=ECHO, opaque=5, ext_fields={"a": "b"})))
        (resp,) = read_commands(sock, 1)
    assert (resp.code, resp.opaque, resp.ext_fields) == (0, 5, {"a": "b"})


def test_invoke_frame_sends_a_premade_frame_under_a_fresh_opaque() -> None:
    """A frame made from its opaque (a json_template's) is answered like invoke()'s; one the
    peer would refuse fails in the sender and leaves the connection usable."""
    from rmqstore.net.connection import PEER_MAX_FRAME_BYTES
    from rmqstore.protocol import FrameTooLarge

    async def body(server: RemotingServer, client: RemotingClient, addr: str) -> None:
        opaques: list[int] = []

        def frame_of(opaque: int) -> bytes:
            opaques.append(opaque)
            req = RemotingCommand.request(ECHO, {"k": "v"}, b"payload")
            req.opaque = opaque
            return encode(req)

        for _ in range(2):
            resp = await client.invoke_frame(addr, ECHO, frame_of, 2)
            assert (resp.code, resp.ext_fields, resp.body) == (0, {"k": "v"}, b"payload")
            assert resp.opaque == opaques[-1]
        assert opaques[0] != opaques[1]
        with pytest.raises(FrameTooLarge):
            await client.invoke_frame(addr, ECHO, lambda o: bytes(PEER_MAX_FRAME_BYTES + 1), 2)
        conn = await client.connection(addr, 1)
        assert conn.calls_pending == 0 and not conn.is_closed
        assert (await client.invoke_frame(addr, ECHO, frame_of, 2)).body == b"payload"
        signer = RemotingClient(before_request=lambda request: None)
        with pytest.raises(ValueError, match="before_request"):
            await signer.invoke_frame(addr, ECHO, frame_of, 2)
        await signer.close()
    scenario(body)
