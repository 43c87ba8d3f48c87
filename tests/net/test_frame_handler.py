"""Dispatcher.frame_handler (the broker's native send path) sees a frame only when nothing else
must see the request first: no request filter (ACL), the connection under its in-flight cap."""

from __future__ import annotations

from rmqstore.net.dispatch import Dispatcher
from rmqstore.protocol import RemotingCommand


class _Channel:
    peer = "127.0.0.1:1"

    def __init__(self, in_flight: int = 0) -> None:
        self.requests_in_flight = in_flight


def _dispatcher(**kw: object) -> tuple[Dispatcher, list[bytes]]:
    taken: list[bytes] = []
    d = Dispatcher(**kw)  # type: ignore[arg-type]
    d.frame_handler = lambda channel, frame, started: taken.append(frame) is None
    return d, taken


def test_the_frame_handler_takes_frames_when_nothing_must_see_them_first() -> None:
    d, taken = _dispatcher()
    assert d.on_frame(_Channel(), b"f1") and taken == [b"f1"]
    assert not Dispatcher().on_frame(_Channel(), b"f2")  # no handler: decoded as usual


def test_a_request_filter_sees_every_request_so_no_frame_skips_it() -> None:
    d, taken = _dispatcher(request_filter=lambda request, peer: RemotingCommand.response(16))
    assert not d.on_frame(_Channel(), b"f1") and taken == []


def test_a_connection_at_its_in_flight_cap_is_answered_by_on_request() -> None:
    d, taken = _dispatcher(max_inflight_per_connection=2)
    assert not d.on_frame(_Channel(in_flight=2), b"f1") and taken == []
    assert d.on_frame(_Channel(in_flight=1), b"f2") and taken == [b"f2"]
