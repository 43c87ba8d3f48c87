"""Garbage never takes the server down: after any byte stream, a fresh connection gets answers.

The server runs on its own loop thread; hypothesis drives blocking sockets at it. Each example
sends its bytes, half-closes, reads whatever comes back until the server closes (bounded by a
socket timeout), then checks the server with a well-formed request on a new connection.
"""

from __future__ import annotations

import json
import logging
import socket
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rmqstore.protocol import FrameDecoder, RemotingCommand, ResponseCode, encode

from .conftest import ECHO, raw_connect, read_until_closed, sync_call

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def throw(address: tuple[str, int], data: bytes) -> list[RemotingCommand]:
    """Send ``data`` on a new connection, half-close, return the commands the server sent."""
    with raw_connect(address, timeout_s=2) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            return []  # the server already closed on an earlier part of the garbage
        reply = read_until_closed(sock)
    decoder, out = FrameDecoder(), []
    try:
        out.extend(decoder.feed(reply))
    except Exception as exc:  # the server must only ever write well-formed frames
        pytest.fail(f"server wrote a malformed frame: {exc!r}")
    return out


def assert_alive(address: tuple[str, int]) -> None:
    resp = sync_call(address, RemotingCommand(code=ECHO, opaque=77, ext_fields={"ok": "1"}))
    assert (resp.code, resp.opaque, resp.ext_fields) == (0, 77, {"ok": "1"})


def assert_replies_are_responses(replies: list[RemotingCommand]) -> None:
    for r in replies:
        assert r.is_response
        assert r.code in (ResponseCode.SUCCESS, ResponseCode.REQUEST_CODE_NOT_SUPPORTED,
                          ResponseCode.SYSTEM_ERROR, ResponseCode.SYSTEM_BUSY)


@SETTINGS
@given(st.binary(max_size=4096))
def test_random_bytes(threaded_server: tuple[str, int], data: bytes) -> None:
    assert_replies_are_responses(throw(threaded_server, data))
    assert_alive(threaded_server)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (st.lists(inner, max_size=3)
                   | st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=8)
header_keys = st.sampled_from(["code", "opaque", "flag", "language", "version", "remark",
                               "extFields", "serializeTypeCurrentRPC"]) | st.text(max_size=6)


@st.composite
def garbage_frames(draw: st.DrawFn) -> bytes:
    """Frames that are almost right: real structure, wrong details."""
    kind = draw(st.sampled_from(["json", "binary", "random"]))
    if kind == "json":
        obj = draw(st.dictionaries(header_keys, json_values, max_size=6))
        header = json.dumps(obj).encode()
        if draw(st.booleans()):  # truncate or corrupt a byte
            cut = draw(st.integers(0, len(header)))
            header = header[:cut] + draw(st.binary(max_size=3))
        stype = draw(st.sampled_from([0, 0, 1, 2, 255]))
    elif kind == "binary":
        header = draw(st.binary(max_size=64))
        if draw(st.booleans()):  # a plausible fixed part, then noise
            header = struct.pack(">hbhii", draw(st.integers(-(2**15), 2**15 - 1)), 0, 0,
                                 draw(st.integers(0, 2**31 - 1)), 0) + header
        stype = draw(st.sampled_from([1, 1, 0, 3]))
    else:
        header = draw(st.binary(max_size=64))
        stype = draw(st.integers(0, 255))
    body = draw(st.binary(max_size=32))
    header_len = draw(st.sampled_from([len(header)] * 4 + [len(header) + 1, 0xFFFFFF,
                                                             max(0, len(header) - 1)]))
    length = 4 + len(header) + len(body)
    length = draw(st.sampled_from([length] * 4 + [length - 1, length + 1, 0, 3, -5, 2**31 - 1,
                                                   16 * 1024 * 1024]))
    frame = struct.pack(">iI", length, (stype << 24) | (header_len & 0xFFFFFF)) + header + body
    # Sometimes follow with a valid request: it may be answered or lost with the connection.
    if draw(st.booleans()):
        frame += encode(RemotingCommand(code=ECHO, opaque=9))
    return frame


@SETTINGS
@given(garbage_frames())
def test_garbage_frames(threaded_server: tuple[str, int], data: bytes) -> None:
    assert_replies_are_responses(throw(threaded_server, data))
    assert_alive(threaded_server)


def test_garbage_is_logged_and_valid_prefix_answered(threaded_server: tuple[str, int],
                                                     caplog: pytest.LogCaptureFixture) -> None:
    good = encode(RemotingCommand(code=ECHO, opaque=1))
    unknown = encode(RemotingCommand(code=4242, opaque=2))
    with caplog.at_level(logging.WARNING, logger="rmqstore.net"):
        replies = throw(threaded_server, good + unknown + struct.pack(">ii", 8, 4) + b"{bad")
    # The unknown code is answered at once; the echo's handler task may be cancelled by the
    # close that the bad frame causes (a closing connection cancels the tasks serving it).
    assert (2, 3) in [(r.opaque, r.code) for r in replies]
    assert set(r.opaque for r in replies) <= {1, 2}
    assert "malformed input" in caplog.text
    assert_alive(threaded_server)


def test_many_connections_stay_independent(threaded_server: tuple[str, int]) -> None:
    socks = [raw_connect(threaded_server) for _ in range(20)]
    try:
        for i, sock in enumerate(socks):
            if i % 2:
                sock.sendall(b"\xff" * 16)  # garbage on every other connection
        for i, sock in enumerate(socks):
            if i % 2 == 0:
                sock.sendall(encode(RemotingCommand(code=ECHO, opaque=i)))
                (resp,) = FrameDecoder().feed(sock.recv(65536))
                assert resp.opaque == i
    finally:
        for sock in socks:
            sock.close()
