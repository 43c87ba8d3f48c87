"""Handler registry keyed by request code, and the rules that turn a request into a response.

The rules are NettyRemotingAbstract.processRequestCommand's (rocketmq-all-4.9.7):

* no handler for the code: REQUEST_CODE_NOT_SUPPORTED, remark " request type N not supported",
  sent even for a oneway request, as Java does, so that no request is met with silence;
* the handler's ``busy`` hook says so: SYSTEM_BUSY "[REJECTREQUEST]..." (Java's rejectRequest);
* the connection already runs ``max_inflight_per_connection`` handlers: SYSTEM_BUSY
  "[OVERLOAD]..." (Java's full thread pool), not sent for oneway requests;
* the handler raises: SYSTEM_ERROR whose remark is a short reason and an incident id, never the
  exception's text (it may hold paths, values or secrets); the log line with the traceback
  carries the same id. SystemBusy gives SYSTEM_BUSY, RequestRefused its own code and text, a
  HeaderFieldError (the request's own fields are wrong) SYSTEM_ERROR naming the field, as Java's
  checkFields does;
* a oneway request never gets the handler's response.

Before all of that, a ``request_filter`` (the server's ACL check, as Java's RPC hooks run before
the processor) sees every request, served code or not, and may answer it in the handler's stead.
An ``observer``, when set, is told of every request a handler answered and how long it took
(the broker's RPC latency metric, as NettyRemotingAbstract records it).

Handlers are plain ``async def handler(request, ctx) -> RemotingCommand`` and never see a
transport; the dispatcher copies opaque, flag and serialize type onto what they return.
"""

from __future__ import annotations

import errno
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from ..protocol.codes import ResponseCode
from ..protocol.command import ONEWAY_FLAG, RemotingCommand, answer
from ..protocol.errors import FrameTooLarge, HeaderFieldError
from .errors import ConnectionClosed, RequestRefused, SystemBusy

log = logging.getLogger(__name__)

BUSY_OVERLOAD = "[OVERLOAD]system busy, start flow control for a while"
BUSY_REJECT = "[REJECTREQUEST]system busy, start flow control for a while"

# The short reasons a failed request's remark may give, by the OSError's errno.
_OS_REASONS = {
    errno.EMFILE: "the server is out of file descriptors",
    errno.ENFILE: "the server is out of file descriptors",
    errno.ENOSPC: "the server's disk is full",
    errno.EDQUOT: "the server's disk quota is exhausted",
    errno.ENOMEM: "the server is out of memory",
}


class Channel(Protocol):
    """What the dispatcher needs of a connection (connection.RemotingConnection has it)."""

    @property
    def peer(self) -> str: ...

    @property
    def requests_in_flight(self) -> int: ...

    def send(self, cmd: RemotingCommand) -> None: ...

    def send_frame(self, frame: bytes) -> None: ...

    def spawn(self, coro: Awaitable[None], held_bytes: int = 0) -> None: ...

    def hold(self, nbytes: int) -> None: ...

    def release(self, nbytes: int) -> None: ...

    async def invoke(self, request: RemotingCommand, timeout_s: float) -> RemotingCommand: ...

    async def invoke_oneway(self, request: RemotingCommand, timeout_s: float) -> None: ...


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Given to handlers: who asked, and a way to call back (e.g. NOTIFY_CONSUMER_IDS_CHANGED)."""

    peer: str
    channel: Channel


# A handler answers a command, or a whole pre-made response frame (bytes) it built itself
# (the send path's templates), or None for nothing.
Handler = Callable[[RemotingCommand, RequestContext],
                   Awaitable["RemotingCommand | bytes | None"]]


FastHandler = Callable[[RemotingCommand, RequestContext],
                       "RemotingCommand | bytes | Deferred | None"]


# Takes a request frame (without its length word) before it is decoded, on the connection's
# reader: True once it has answered it (through respond), or will; False *before doing
# anything* to leave it to the decoder and the handlers.
FrameHandler = Callable[[Channel, bytes, float], bool]


# Takes a whole read (the bytes a connection received, nothing buffered before them, none of
# its requests in service) before its frames are split, with the connection's frame limit:
# None, or how many bytes from its start it answered (whole frames) and the answers' frames,
# in order, for the connection to write (b"" when it holds them, to write them itself later
# through the channel: sends that wait for the disk or a slave).
ReadHandler = Callable[[Channel, bytes, int], "tuple[int, bytes] | None"]

# Makes a server connection's reader in native code (see Dispatcher.read_front): given the
# connection, its Python data_received, its _handle and its _read_failed.
ReadFrontFactory = Callable[[Channel, Callable[[bytes], None], Callable[..., None],
                             Callable[[BaseException], None]], Callable[[bytes], object]]


# Sees every request before its handler: returns None to let it through, or the response that
# refuses it. Runs in the connection's reader, so it must not block; ``peer`` is "host:port".
RequestFilter = Callable[[RemotingCommand, str], "RemotingCommand | None"]

# Told of each request a handler answered: the request, the response code (SUCCESS for a
# pre-made frame, None for a oneway request) and the seconds from its arrival to its answer.
# Runs on the loop, once per request: it must be cheap.
RequestObserver = Callable[[RemotingCommand, "int | None", float], None]


class Deferred:
    """A response decided later, handed to its consumer the moment it is: unlike an asyncio
    future, whose callbacks wait for the next loop iteration (two of them, between a sync
    send's durability and its answer)."""

    __slots__ = ("_callback", "_value")

    def __init__(self) -> None:
        self._callback: Callable[[RemotingCommand | bytes], None] | None = None
        self._value: RemotingCommand | bytes | None = None

    def resolve(self, value: RemotingCommand | bytes) -> None:
        callback, self._callback = self._callback, None
        if callback is None:
            self._value = value
        else:
            callback(value)

    def then(self, callback: Callable[[RemotingCommand | bytes], None]) -> None:
        if self._value is None:
            self._callback = callback
        else:
            callback(self._value)


@dataclass(frozen=True, slots=True)
class _Entry:
    handler: Handler
    busy: Callable[[], bool] | None
    fast: FastHandler | None = None


class Dispatcher:
    """Routes each incoming request of every connection to its handler, one task per request."""

    def __init__(self, max_inflight_per_connection: int = 1024,
                 request_filter: RequestFilter | None = None) -> None:
        if max_inflight_per_connection < 1:
            raise ValueError("max_inflight_per_connection must be at least 1")
        self._handlers: dict[int, _Entry] = {}
        self._max_inflight = max_inflight_per_connection
        self._request_filter = request_filter
        self.observer: RequestObserver | None = None
        # Tried before a frame is decoded, while no request_filter is set (the broker's native
        # send path); it is given the frame's arrival time for the observer.
        self.frame_handler: FrameHandler | None = None
        # Likewise for a whole read, before the frame_handler sees its frames.
        self._read_handler: ReadHandler | None = None
        # What a connection's reader calls with a whole read (its read_hooks): the
        # read_handler while no request_filter is set, else None; kept by the two setters.
        self.read_hook: ReadHandler | None = None
        # What makes a server connection's data_received (its ReadFront) when it is made:
        # (connection, its Python data_received, its _handle, its _read_failed) -> the
        # callable uvloop calls with each read; None: the Python one. The read_handler's
        # owner sets it (the broker's native send path) and arms each connection's.
        self.read_front: ReadFrontFactory | None = None

    @property
    def request_filter(self) -> RequestFilter | None:
        """Sees every request first (a server sets it once its rules are loaded, before it
        listens); while set, no read_handler or frame_handler takes a request."""
        return self._request_filter

    @request_filter.setter
    def request_filter(self, request_filter: RequestFilter | None) -> None:
        self._request_filter = request_filter
        self.read_hook = self._read_handler if request_filter is None else None

    @property
    def read_handler(self) -> ReadHandler | None:
        return self._read_handler

    @read_handler.setter
    def read_handler(self, handler: ReadHandler | None) -> None:
        self._read_handler = handler
        self.read_hook = handler if self._request_filter is None else None

    def register(self, code: int, handler: Handler, *,
                 busy: Callable[[], bool] | None = None, fast: FastHandler | None = None) -> None:
        """Serve ``code`` with ``handler``; ``busy()`` true makes requests get SYSTEM_BUSY.

        ``fast(request, ctx)``, if given, is tried first, synchronously in the reader: it
        returns the response (a command, or a whole frame already bound to the request: see
        json_template), a Deferred one (answered when it resolves), or None *before doing
        anything* to leave the request to ``handler``. It spares a task and a loop
        iteration per request (the send path)."""
        self._handlers[int(code)] = _Entry(handler, busy, fast)

    def codes(self) -> frozenset[int]:
        return frozenset(self._handlers)

    def on_request(self, channel: Channel, request: RemotingCommand) -> None:
        """Called by the connection's reader for each request; must not block."""
        if self._request_filter is not None and self._refused(channel, request):
            return
        entry = self._handlers.get(request.code)
        if entry is None:
            text = f" request type {request.code} not supported"
            log.warning("%s:%s", channel.peer, text)
            self._reply(channel, request, ResponseCode.REQUEST_CODE_NOT_SUPPORTED, text)
            return
        if entry.busy is not None and entry.busy():
            log.info("%s: code %d rejected, handler busy", channel.peer, request.code)
            self._reply(channel, request, ResponseCode.SYSTEM_BUSY, BUSY_REJECT)
            return
        started = time.perf_counter() if self.observer is not None else 0.0
        if channel.requests_in_flight >= self._max_inflight:
            log.warning("%s: %d requests in flight, code %d answered SYSTEM_BUSY",
                        channel.peer, channel.requests_in_flight, request.code)
            if not request.is_oneway:
                self._reply(channel, request, ResponseCode.SYSTEM_BUSY, BUSY_OVERLOAD)
            return
        if entry.fast is not None:
            try:
                response = entry.fast(request, RequestContext(channel.peer, channel))
            except Exception as exc:  # noqa: BLE001 - mapped as the async path maps it
                response = self._failure(channel, request.code, exc)
            if type(response) is RemotingCommand or type(response) is bytes:
                self.respond(channel, request, response, started)
                return
            if response is not None:  # Deferred: answered when it resolves
                response.then(lambda r: self.respond(channel, request, r, started))
                return
        channel.spawn(self._run(entry.handler, channel, request, started), len(request.body))

    def on_frame(self, channel: Channel, frame: bytes) -> bool:
        """Called by the connection's reader for each frame before it is decoded: whether the
        frame_handler took it. Never while a request_filter must see every request, nor past
        the connection's in-flight cap (on_request answers those)."""
        handler = self.frame_handler
        if handler is None or self._request_filter is not None \
                or channel.requests_in_flight >= self._max_inflight:
            return False
        return handler(channel, frame, time.perf_counter() if self.observer is not None else 0.0)

    def _refused(self, channel: Channel, request: RemotingCommand) -> bool:
        assert self._request_filter is not None
        try:
            refusal = self._request_filter(request, channel.peer)
        except Exception as exc:  # noqa: BLE001 - a filter that fails refuses (fails closed)
            refusal = self._failure(channel, request.code, exc)
        if refusal is None:
            return False
        self.respond(channel, request, refusal)
        return True

    async def _run(self, handler: Handler, channel: Channel, request: RemotingCommand,
                   started: float = 0.0) -> None:
        response = await self._call(handler, channel, request)
        self.respond(channel, request, response, started)

    def respond(self, channel: Channel, request: RemotingCommand,
                response: RemotingCommand | bytes, started: float = 0.0) -> None:
        """Send a handler's answer to ``request``: observed, bound to the request (a whole
        frame as it is), none for a oneway request. Also for a request a frame_handler took;
        ``request`` then stands for it: its code, opaque and flag."""
        oneway = request.flag & ONEWAY_FLAG
        observer = self.observer
        if observer is not None and started:
            code = None if oneway else (
                ResponseCode.SUCCESS if type(response) is bytes else response.code)
            observer(request, code, time.perf_counter() - started)
        if oneway:
            return
        try:
            if type(response) is bytes:
                channel.send_frame(response)
            else:
                channel.send(answer(request, response))
        except FrameTooLarge as exc:
            incident = new_incident_id()
            log.error("%s: response to code %d too large (incident %s): %s", channel.peer,
                      request.code, incident, exc)
            self._reply(channel, request, ResponseCode.SYSTEM_ERROR,
                        f"response too large (incident {incident})")
        except ConnectionClosed:
            log.debug("%s: closed before the response to code %d", channel.peer, request.code)

    async def _call(self, handler: Handler, channel: Channel,
                    request: RemotingCommand) -> RemotingCommand | bytes:
        code = request.code
        try:
            response = await handler(request, RequestContext(channel.peer, channel))
        except Exception as exc:  # a handler bug must cost one request, not the connection
            return self._failure(channel, code, exc)
        if response is None:
            if not request.is_oneway:
                log.error("%s: handler for code %d returned no response", channel.peer, code)
            return RemotingCommand.response(ResponseCode.SYSTEM_ERROR,
                                            "handler returned no response")
        return response

    @staticmethod
    def _failure(channel: Channel, code: int, exc: Exception) -> RemotingCommand:
        """The response to a handler that raised."""
        if isinstance(exc, HeaderFieldError):
            log.warning("%s: code %d: %s", channel.peer, code, exc)
            return RemotingCommand.response(ResponseCode.SYSTEM_ERROR, str(exc))
        if isinstance(exc, SystemBusy):
            return RemotingCommand.response(ResponseCode.SYSTEM_BUSY, str(exc) or BUSY_OVERLOAD)
        if isinstance(exc, RequestRefused):
            log.warning("%s: code %d refused: %s", channel.peer, code, exc)
            return RemotingCommand.response(exc.code, str(exc))
        incident = new_incident_id()
        reason = failure_reason(exc)
        log.error("%s: handler for code %d failed (incident %s): %s", channel.peer, code,
                  incident, reason, exc_info=exc)
        return RemotingCommand.response(ResponseCode.SYSTEM_ERROR,
                                        f"{reason} (incident {incident})")

    @staticmethod
    def _reply(channel: Channel, request: RemotingCommand, code: int, remark: str) -> None:
        try:
            channel.send(answer(request, RemotingCommand.response(code, remark)))
        except ConnectionClosed:
            pass


def new_incident_id() -> str:
    """A short id that ties a client's error remark to the server's log line."""
    return secrets.token_hex(4)


def failure_reason(exc: BaseException) -> str:
    """A short reason for a request that failed with ``exc``, without its text."""
    if isinstance(exc, OSError) and exc.errno in _OS_REASONS:
        return _OS_REASONS[exc.errno]
    if isinstance(exc, MemoryError):
        return _OS_REASONS[errno.ENOMEM]
    return "internal error"
