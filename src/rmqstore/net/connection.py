"""One TCP connection speaking the remoting protocol, for either end (client or server).

asyncio.Protocol: ``data_received`` is the single reader; it feeds the sans-I/O FrameDecoder and
routes each command, responses to the opaque -> Future table, requests to ``on_request``
(a Dispatcher). Calls carry deadlines. When the connection closes, for whatever reason, every
pending call fails with ConnectionClosed whose ``__cause__`` is the original error, and the
tasks serving this connection's requests are cancelled.

A server's reads may go to a native reader first (its Dispatcher's read_front, armed by the
read hook's owner): data_received is then that reader, which hands this one every read it does
not serve whole. A malformed frame closes this connection only (FrameError, logged); nothing
else is affected.
What the frames of one read are answered with at once (the fast handlers, the native send
path) leaves in one write when the read is done, before a close that read caused; the requests
of calls made while others are in flight leave together at the next loop iteration (a lone
call's at once).

What the connection makes us hold is counted (``held_bytes``): the bodies of its requests being
served, the answers a server holds for it (``hold``) and its unsent responses, which drain by
themselves, and what its decoder holds, at most
one read's worth of frames plus a partial frame under the frame limit. With
``max_buffered_bytes`` set (servers), once the bodies pass it, or the unsent responses pass the
transport's high-water mark (pause_writing), no further frame is routed and nothing more is
read until they are back under it. The times of the last byte either way
and of the start of an incomplete frame are kept for the server's sweep (idle and read
timeouts).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import math
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from ..protocol.command import ONEWAY_FLAG, RESPONSE_FLAG, RemotingCommand
from ..protocol.errors import FrameError, FrameTooLarge
from ..protocol.frame import DEFAULT_MAX_FRAME_BYTES, FrameDecoder, decode_frame, encode
from .errors import ConnectionClosed, RemotingTimeout

log = logging.getLogger(__name__)

# What a peer's decoder accepts (Java's frameMaxLength): the bound of everything we send. What we
# accept is each connection's own max_frame_bytes.
PEER_MAX_FRAME_BYTES = DEFAULT_MAX_FRAME_BYTES
CLOCK_SLACK_S = 0.001  # a call due this close is expired (loop timers have ms steps)
TLS_RECORD_HANDSHAKE = 0x16  # the first byte of a TLS ClientHello
TLS_HELLO = bytes([TLS_RECORD_HANDSHAKE])
_monotonic = time.monotonic  # a global name fewer on the hot path

RequestCallback = Callable[["RemotingConnection", RemotingCommand], None]
# Sees each incoming frame (without its length word) before it is decoded: True when it took
# the frame (answered it, or will), False to let it be decoded and routed as usual.
FrameCallback = Callable[["RemotingConnection", bytes], bool]
# Sees a whole read before its frames are split, when nothing is buffered before it and no
# request of the connection is in service, with the connection's frame limit: None, or how
# many bytes from its start it took (whole frames) and their answers' frames, which the
# connection writes before any other; the rest is split and routed as usual.
ReadCallback = Callable[["RemotingConnection", bytes, int], "tuple[int, bytes] | None"]


class ReadHooks(Protocol):
    """Whose ``read_hook`` (a ReadCallback, or None) a connection reads anew for each read;
    ``read_front``, when there is one, makes the connection's data_received (a Dispatcher's)."""

    read_hook: ReadCallback | None


class _Expired(Exception):
    """An invoke's deadline passed (turned into RemotingTimeout by invoke)."""


def _expire(future: asyncio.Future[RemotingCommand]) -> None:
    if not future.done():
        future.set_exception(_Expired())


class RemotingConnection(asyncio.Protocol):
    """Owns a transport, the pending-call table and the tasks serving incoming requests.

    All methods run on the event loop thread.
    """

    def __init__(self, on_request: RequestCallback, *,
                 max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
                 max_buffered_bytes: int | None = None,
                 on_frame: FrameCallback | None = None,
                 read_hooks: ReadHooks | None = None) -> None:
        self._on_request = on_request
        self._on_frame = on_frame
        # read_hooks.read_hook, read anew for each read: a Dispatcher's, which follows its
        # request_filter, without a call of its own per read
        self._read_hooks = read_hooks
        self._max_frame = max_frame_bytes
        self._decoder = FrameDecoder(max_frame_bytes)
        # sys.maxsize for none: one comparison per frame either way
        self._max_buffered = sys.maxsize if max_buffered_bytes is None else max_buffered_bytes
        self._task_bytes = 0  # bodies of the requests our tasks are serving
        self._read_paused_for: set[str] = set()
        self._fresh = True  # nothing read yet
        # time.monotonic() of the last byte read or written, and of the first byte of a frame
        # not yet complete (None: no partial frame); read by the server's sweep.
        self.last_io_at = _monotonic()
        self.partial_frame_since: float | None = None
        self._transport: asyncio.Transport | None = None
        self._pending: dict[int, asyncio.Future[RemotingCommand]] = {}
        # opaque -> the loop time its call expires; one timer (_sweep, due at _sweep_at) for
        # them all: a timer per call cost a client a loop iteration per call (uvloop closes a
        # cancelled timer's handle in an iteration of its own: an extra epoll_wait per send)
        self._due: dict[int, float] = {}
        self._sweep: asyncio.TimerHandle | None = None
        self._sweep_at = math.inf
        self._tasks: set[asyncio.Task[None]] = set()
        self._opaques = itertools.count(1)
        self._write_resumed: asyncio.Future[None] | None = None
        # Frames gathered to leave in one transport.write (one send syscall, not one per
        # frame): what a read answers at once, written when the read is done; the requests
        # of calls made while others are in flight, written at the next loop iteration.
        self._corked: list[bytes] | None = None
        self._closed = False
        self._close_reason: BaseException | None = None
        # the loop it runs on: asyncio.get_running_loop() costs a getpid() syscall per call
        self._loop = asyncio.get_running_loop()
        self._lost: asyncio.Future[None] = self._loop.create_future()
        self.peer = "?"
        # A server's reader in native code, armed by the read hook's owner while reads are
        # plain, disarmed here whenever this reader's own state moves (_handle, corked
        # writes, pauses, the close). uvloop calls the data_received it finds when the
        # transport is made: the instance's, the front, which hands it the rest.
        make_front = getattr(read_hooks, "read_front", None)
        self.front = None if make_front is None else make_front(
            self, RemotingConnection.data_received.__get__(self), self._handle,
            self._read_failed)
        if self.front is not None:
            self.data_received = self.front  # type: ignore[method-assign]

    # -- public API --------------------------------------------------------------------------

    @property
    def is_closed(self) -> bool:
        return self._closed

    @property
    def requests_in_flight(self) -> int:
        """Incoming requests whose handler has not finished (the dispatcher's cap counts these)."""
        return len(self._tasks)

    @property
    def calls_pending(self) -> int:
        """Outgoing requests still waiting for their response."""
        return len(self._pending)

    @property
    def held_bytes(self) -> int:
        """What this connection makes us hold: what its decoder holds, the bodies of its
        requests being served, its responses not yet written to the socket."""
        return self._decoder.buffered_bytes + self._in_service_bytes()

    @property
    def reading_paused(self) -> bool:
        return bool(self._read_paused_for)

    async def invoke(self, request: RemotingCommand, timeout_s: float) -> RemotingCommand:
        """Send ``request`` with a fresh opaque; return the response with that opaque.

        Raises RemotingTimeout after ``timeout_s``, ConnectionClosed if the connection closes
        first. A response arriving after the deadline is logged and dropped. The request's
        opaque and flag are set in place (callers build one request per call).
        """
        request.flag &= ~(RESPONSE_FLAG | ONEWAY_FLAG)

        def frame_of(opaque: int) -> bytes:
            request.opaque = opaque
            return encode(request, PEER_MAX_FRAME_BYTES)

        return await self.invoke_frame(request.code, frame_of, timeout_s)

    async def invoke_frame(self, code: int, frame_of: Callable[[int], bytes],
                           timeout_s: float) -> RemotingCommand:
        """invoke() of a request whose frame ``frame_of(opaque)`` makes (a json_template's),
        ``code`` its request code (for errors); the frame must be a two-way request. Raises
        FrameTooLarge, as encode() does, for a frame the peer would refuse."""
        if self._closed or self._transport is None:
            self._check_open()
        opaque = next(self._opaques) & 0x7FFFFFFF  # _next_opaque's, without its call
        if opaque in self._pending:
            opaque = self._next_opaque()
        loop = self._loop
        future: asyncio.Future[RemotingCommand] = loop.create_future()
        self._pending[opaque] = future
        # A deadline for the connection's one timer, not asyncio.timeout() nor a timer per
        # call: this runs once per send (see _due).
        due = self._due[opaque] = loop.time() + timeout_s
        if due < self._sweep_at:
            self._arm(loop, due)
        try:
            frame = frame_of(opaque)
            if len(frame) > PEER_MAX_FRAME_BYTES:
                raise FrameTooLarge(f"frame of {len(frame)} bytes exceeds the maximum "
                                    f"{PEER_MAX_FRAME_BYTES}")
            if len(self._pending) == 1:  # the only call: sent now
                self._write(frame)
            else:  # calls pipelined: those made in this loop iteration leave together
                self._write_soon(frame, loop)
            return await future
        except _Expired:
            raise RemotingTimeout(f"no response to code {code} (opaque {opaque}) from "
                                  f"{self.peer} within {timeout_s}s") from None
        finally:
            self._pending.pop(opaque, None)
            self._due.pop(opaque, None)

    async def invoke_oneway(self, request: RemotingCommand, timeout_s: float) -> None:
        """Send ``request`` with the ONEWAY bit; return once the transport has taken it,
        waiting at most ``timeout_s`` for a full write buffer to drain."""
        self._check_open()
        cmd = dataclasses.replace(request, opaque=self._next_opaque(),
                                  flag=(request.flag | ONEWAY_FLAG) & ~RESPONSE_FLAG)
        self._write(encode(cmd, PEER_MAX_FRAME_BYTES))
        try:
            async with asyncio.timeout(timeout_s):
                await self.drain()
        except TimeoutError:
            raise RemotingTimeout(f"oneway code {cmd.code} to {self.peer} not written "
                                  f"within {timeout_s}s") from None

    def send(self, cmd: RemotingCommand) -> None:
        """Write ``cmd`` as is (responses: the caller has set opaque and flag)."""
        self._check_open()
        self._write(encode(cmd, PEER_MAX_FRAME_BYTES))

    def send_frame(self, frame: bytes) -> None:
        """Write a complete frame made elsewhere (json_template): the native send path's
        answers, one per send, so _check_open's and _write's steps are made here."""
        if self._closed or self._transport is None:
            self._check_open()
        self.last_io_at = _monotonic()
        corked = self._corked
        if corked is None:
            self._transport.write(frame)
        else:
            corked.append(frame)

    def hold(self, nbytes: int) -> None:
        """Count ``nbytes`` a server keeps for this connection outside any task (a read's
        answers held for the disk or a slave) against the buffer cap until release(): past
        it, nothing more is read."""
        self._task_bytes += nbytes
        if self._task_bytes > self._max_buffered:
            self._pause_reading("buffered")

    def release(self, nbytes: int) -> None:
        """What hold() counted is no longer kept."""
        self._task_bytes -= nbytes
        self._check_buffered()

    def spawn(self, coro: Awaitable[None], held_bytes: int = 0) -> None:
        """Run a task serving one of this connection's requests; cancelled when it closes.
        ``held_bytes`` (the request's body) counts against the buffer cap until it ends."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        if held_bytes:
            self._task_bytes += held_bytes
            task.add_done_callback(lambda t: self._task_done(t, held_bytes))
        else:
            task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait until the transport's write buffer is below its high-water mark."""
        while self._write_resumed is not None and not self._closed:
            await asyncio.shield(self._write_resumed)
        self._check_open()

    def close(self, reason: BaseException | None = None) -> None:
        """Close now; pending calls fail with ConnectionClosed caused by ``reason``."""
        self._uncork()  # what is gathered (earlier frames' answers) goes out first
        self._shutdown(reason)
        if self._transport is not None:
            self._transport.close()

    def on_lost(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once the transport has gone."""
        self._lost.add_done_callback(lambda _f: callback())

    async def wait_closed(self) -> None:
        """Wait until the transport has really gone (connection_lost ran)."""
        await asyncio.shield(self._lost)

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport; uvloop's is not an asyncio.Transport subclass, so no isinstance.
        self._transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        log.debug("%s: connected", self.peer)

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        self.last_io_at = _monotonic()
        if self._fresh:  # the first read: a TLS hello here deserves its own log line
            self._fresh = False
            self._handle(data, data[:1] == TLS_HELLO)
            return
        hooks = self._read_hooks
        on_read = None if hooks is None else hooks.read_hook
        decoder = self._decoder  # holding nothing: its two attributes, not buffered_bytes' call
        plain = self._corked is None and not decoder.gathered and not decoder.walking
        if hooks is None:  # a client's connection (a server's has its dispatcher's hooks)
            if not (plain and self._on_frame is None and self._response_alone(data)):
                self._handle(data)
            return
        if on_read is None or self._tasks or not plain:
            self._handle(data)
            return
        # A server's common read, taken whole by the read hook and answered in one write,
        # without _handle's frame: the hook's call is most of a small send's Python here.
        try:
            served = on_read(self, data, self._max_frame)
        except Exception as exc:  # a FrameError, as _handle answers one; or a bug in the hook
            self._read_failed(exc)
            return
        if served is not None and served[0] == len(data):
            self.partial_frame_since = None
            self._transport.write(served[1])  # type: ignore[union-attr]
        else:
            self._handle(data, served=served)

    def _response_alone(self, data: bytes) -> bool:
        """A client's common read, one whole response (a sync call's answer) with nothing
        buffered: resolved here, without _handle's corking and frame walk. False, nothing
        done, for anything else (a request is decoded again there: broker pushes are rare)."""
        end = len(data)
        if end < 8 or end > self._max_frame or int.from_bytes(data[:4], "big") + 4 != end:
            return False
        try:
            cmd = decode_frame(data[4:])
        except FrameError as exc:
            self._read_failed(exc)
            return True
        if not cmd.flag & RESPONSE_FLAG:
            return False
        self.partial_frame_since = None
        self._on_response(cmd)
        return True

    def _read_failed(self, exc: BaseException) -> None:
        """The read hook (or the front) failed on a read: malformed input (FrameError) or a
        bug; this connection goes, the server stays."""
        if isinstance(exc, FrameError):
            log.warning("%s: malformed input, closing the connection: %s", self.peer, exc)
        else:
            log.error("%s: error while reading, closing the connection", self.peer,
                      exc_info=exc)
        self.close(exc)

    def _handle(self, data: bytes, tls_hello: bool = False,
                served: tuple[int, bytes] | None | bool = False) -> None:
        """Route every complete command in the decoder (after appending ``data``); stops early,
        leaving the rest buffered, once reading is paused (see _resume_reading). ``served``:
        what the read hook already answered of ``data`` (None: nothing; False: not asked)."""
        decoder = self._decoder
        on_frame = self._on_frame
        if self._corked is None:
            self._corked = []
        try:
            complete = 0
            if served is False:  # not asked yet (data_received asks in the common case)
                served = None
                hooks = self._read_hooks
                on_read = None if hooks is None else hooks.read_hook
                if on_read is not None and data and not self._tasks:
                    if not decoder.buffered_bytes:
                        served = on_read(self, data, self._max_frame)
                    else:  # a frame begun in an earlier read (a header written apart)
                        joined = decoder.completed_by(data)
                        if joined is not None:
                            data = joined
                            served = on_read(self, data, self._max_frame)
            if served is not None:
                taken, answers = served  # type: ignore[misc]
                if taken == len(data) and not self._corked:  # the whole read answered
                    self._corked = None
                    self.partial_frame_since = None
                    self._transport.write(answers)  # type: ignore[union-attr]
                    return
                self._corked.append(answers)  # type: ignore[union-attr]
                complete = 1
                data = data[taken:]
            for frame in decoder.feed_frames(data):
                complete += 1
                if on_frame is None or not on_frame(self, frame):
                    cmd = decode_frame(frame)
                    if cmd.flag & RESPONSE_FLAG:
                        self._on_response(cmd)
                    else:
                        self._on_request(self, cmd)
                if self._closed:
                    return
                # Over a cap, what is left waits in the decoder: a write buffer past its
                # high-water mark (pause_writing) or the bodies in service past ours.
                if self._read_paused_for:
                    break
                if self._task_bytes > self._max_buffered:
                    self._pause_reading("buffered")
                    break
            if not decoder.buffered_bytes:
                self.partial_frame_since = None
            elif complete or self.partial_frame_since is None:  # the remainder began just now
                self.partial_frame_since = self.last_io_at
        except FrameError as exc:
            if tls_hello:
                log.warning("%s: a TLS handshake on a plaintext port, closing the connection",
                            self.peer)
            else:
                log.warning("%s: malformed input, closing the connection: %s", self.peer, exc)
            self.close(exc)
        except Exception as exc:  # a bug in a callback: this connection goes, the server stays
            log.exception("%s: error while reading, closing the connection", self.peer)
            self.close(exc)
        finally:
            if self._corked:
                self._uncork()
            else:  # nothing to write (a client's read of responses): no call to make
                self._corked = None
            if self.front is not None:  # this reader's state moved: the hook arms it anew
                self.front.disarm()

    def eof_received(self) -> bool | None:
        return None  # half-close is not part of the protocol: close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._shutdown(exc if exc is not None else EOFError("connection closed by the peer"))
        log.debug("%s: connection lost (%s)", self.peer, self._close_reason)
        if not self._lost.done():
            self._lost.set_result(None)

    def pause_writing(self) -> None:
        if self._write_resumed is None:
            self._write_resumed = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        waiter, self._write_resumed = self._write_resumed, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._check_buffered()

    def close_for(self, why: str) -> None:
        """Close because of a limit; ``why`` is logged and becomes the close reason."""
        log.warning("%s: %s, closing the connection", self.peer, why)
        self.close(ConnectionClosed(why))

    # -- internals ---------------------------------------------------------------------------

    def _next_opaque(self) -> int:
        # Non-negative int32, as the C++ client masks it; skip any still pending after a wrap.
        while True:
            opaque = next(self._opaques) & 0x7FFFFFFF
            if opaque not in self._pending:
                return opaque

    def _arm(self, loop: asyncio.AbstractEventLoop, at: float) -> None:
        """The sweep timer, due at ``at`` (sooner than it was, or not armed)."""
        if self._sweep is not None:
            self._sweep.cancel()
        self._sweep_at = at
        self._sweep = loop.call_at(at, self._expire_due)

    def _expire_due(self) -> None:
        """Fail the calls whose deadline passed; arm the timer for the next one."""
        self._sweep, self._sweep_at = None, math.inf
        loop = self._loop
        now = loop.time() + CLOCK_SLACK_S  # a timer may fire a hair before its time
        later = math.inf
        for opaque, at in list(self._due.items()):
            if at > now:
                later = min(later, at)
                continue
            del self._due[opaque]
            future = self._pending.get(opaque)
            if future is not None:
                _expire(future)
        if later < math.inf and not self._closed:
            self._arm(loop, later)

    def _write(self, frame: bytes) -> None:
        assert self._transport is not None
        self.last_io_at = _monotonic()
        if self._corked is None:
            self._transport.write(frame)
        else:
            self._corked.append(frame)

    def _write_soon(self, frame: bytes, loop: asyncio.AbstractEventLoop) -> None:
        if self._corked is None:
            self._corked = []
            loop.call_soon(self._uncork)
            if self.front is not None:  # answers may not overtake the corked frames
                self.front.disarm()
        self._corked.append(frame)

    def _uncork(self) -> None:
        corked, self._corked = self._corked, None
        if corked and self._transport is not None and not self._closed:
            self._transport.write(corked[0] if len(corked) == 1 else b"".join(corked))

    def _pause_reading(self, reason: str) -> None:
        if self.front is not None:
            self.front.disarm()
        if not self._read_paused_for and self._transport is not None and not self._closed:
            self._transport.pause_reading()
            log.debug("%s: reading paused (%s)", self.peer, reason)
        self._read_paused_for.add(reason)

    def _resume_reading(self, reason: str) -> None:
        if reason not in self._read_paused_for:
            return
        self._read_paused_for.discard(reason)
        if not self._read_paused_for and self._transport is not None and not self._closed:
            self._transport.resume_reading()
            if self._decoder.buffered_bytes:  # frames left when reading paused: route them
                asyncio.get_running_loop().call_soon(self._handle_buffered)

    def _handle_buffered(self) -> None:
        if not self._closed and not self._read_paused_for:
            self._handle(b"")

    def _in_service_bytes(self) -> int:
        unsent = self._transport.get_write_buffer_size() if self._transport is not None else 0
        return self._task_bytes + unsent

    def _check_buffered(self) -> None:
        if "buffered" in self._read_paused_for \
                and self._in_service_bytes() <= self._max_buffered:
            self._resume_reading("buffered")

    def _task_done(self, task: asyncio.Task[None], held_bytes: int) -> None:
        self._tasks.discard(task)
        self._task_bytes -= held_bytes
        self._check_buffered()

    def _check_open(self) -> None:
        if self._closed or self._transport is None:
            err = ConnectionClosed(f"connection to {self.peer} is closed")
            raise err from self._close_reason

    def _on_response(self, cmd: RemotingCommand) -> None:
        future = self._pending.pop(cmd.opaque, None)
        if future is None or future.done():
            log.info("%s: response code %d for opaque %d matches no pending call (timed out?)",
                     self.peer, cmd.code, cmd.opaque)
            return
        future.set_result(cmd)

    def _shutdown(self, reason: BaseException | None) -> None:
        if self._closed:
            return
        self._closed = True
        self._close_reason = reason
        if self.front is not None:
            self.front.disarm()
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep, self._sweep_at = None, math.inf
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                err = ConnectionClosed(f"connection to {self.peer} closed"
                                       + (f": {reason}" if reason is not None else ""))
                err.__cause__ = reason
                future.set_exception(err)
        for task in list(self._tasks):
            task.cancel()
        self.resume_writing()  # wake drain() so it sees the close
