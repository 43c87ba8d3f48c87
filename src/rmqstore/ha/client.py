"""HAClient: a replica store's side of replication (HAClient of rocketmq-all-4.9.7): it connects
to its master's HA port, reports where its log ends (at once, whenever it grows, and every
haSendHeartbeatInterval), and appends what the master sends (MessageStore.replica). Its
dispatch to the consume queues and index runs on a thread of its own, a slice at a time, as
Java's ReputMessageService does: what the replica reports (and a SYNC_MASTER's sends wait for)
is what it appended and checked, never held back by dispatch (which halved catch-up when the
two took turns on the loop).

A frame must start where the bytes received so far end (the replica's log end plus the start
of a record a frame boundary cut); anything else, a frame over the size limit, or bytes that are
not whole, valid records close the link with a warning. Nothing partial is ever appended, so the
next link resumes from the replica's own end: no gap, no byte twice. The link is closed when
the master is silent for haHousekeepingInterval; the client connects again after
reconnect_interval_ms (1 s; Java's waits 5 s), to the master it was last told of (set_master).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ..errors import ReplicaDataError
from ..protocol.ha import HAProtocolError, TransferDecoder, encode_report
from ..store import MessageStore
from . import sockets
from .config import HAConfig

log = logging.getLogger(__name__)

MAX_PENDING_BYTES = 64 << 20  # the start of one record held: no record is larger
TICK_S = 0.5  # how often a link checks its heartbeat and housekeeping clocks
# Records per dispatch slice: each holds the store's put lock, which the next append waits for.
DISPATCH_SLICE = 256
# A backlog this small is dispatched on the loop: a thread hop costs more than the work.
INLINE_DISPATCH_BYTES = 16 * 1024


class HAClient:
    def __init__(self, store: MessageStore, master: str | None = None,
                 config: HAConfig | None = None,
                 on_dispatched: Callable[[set[tuple[str, int]]], None] | None = None) -> None:
        """master: the master's HA address (haMasterAddress, or learnt from the NameServer
        later through set_master). on_dispatched(queues): queues that grew (a broker wakes the
        pulls held on them)."""
        self.replica = store.replica  # ReplicaStoreError unless the store is a replica
        self.link_class: type[SlaveLink] = SlaveLink  # controller mode's has a handshake
        self.config = config or HAConfig()
        self._master = master
        self._on_dispatched = on_dispatched
        self._link: SlaveLink | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed: asyncio.Event | None = None
        self._appended: asyncio.Event | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def master(self) -> str | None:
        return self._master

    @property
    def connected(self) -> bool:
        return self._link is not None and not self._link.closed

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        self._appended = asyncio.Event()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="rmq-replica-dispatch")
        self._task = loop.create_task(self._run(), name="ha-client")
        self._dispatcher = loop.create_task(self._dispatch(), name="ha-replica-dispatch")
        if self.replica.pending():
            self._appended.set()

    async def close(self) -> None:
        """Stop following; returns once no dispatch runs (the store may be closed then)."""
        for task in (self._task, self._dispatcher):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._task = self._dispatcher = None
        if self._link is not None:
            self._link.close(None)
        if self._executor is not None:  # a slice under way ends first
            await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown)
            self._executor = None

    def set_master(self, master: str | None) -> None:
        """updateHaMasterAddress: follow another master (the link to the old one closes)."""
        if master == self._master:
            return
        log.info("HA: master address %s -> %s", self._master, master)
        self._master = master
        if self._link is not None:
            self._link.close(None)
        if self._changed is not None:
            self._changed.set()

    async def _run(self) -> None:
        assert self._changed is not None
        retry_s = self.config.reconnect_interval_ms / 1000
        while True:
            self._changed.clear()
            master = self._master
            if master is None:
                await self._changed.wait()
                continue
            try:
                host, port = sockets.split_address(master)
                _, link = await sockets.connect(host, port, lambda: self.link_class(self))
            except (OSError, TimeoutError, ValueError) as exc:
                log.info("HA: cannot connect to master %s: %s", master, exc)
            else:
                assert isinstance(link, SlaveLink)
                self._link = link
                await link.lost
            try:  # a pause before connecting again (or a new master is set)
                async with asyncio.timeout(retry_s):
                    await self._changed.wait()
            except TimeoutError:
                pass

    def dispatch_soon(self) -> None:
        """Records were appended: the dispatch thread takes them."""
        if self._appended is not None:
            self._appended.set()

    async def _dispatch(self) -> None:
        """Dispatch what was appended, a slice at a time on the dispatch thread, until none
        is left; the queues that grew are reported from the loop."""
        assert self._appended is not None and self._executor is not None
        loop = asyncio.get_running_loop()
        replica, executor = self.replica, self._executor
        while True:
            await self._appended.wait()
            self._appended.clear()
            while replica.pending():
                try:
                    if replica.end - replica.dispatched <= INLINE_DISPATCH_BYTES:
                        touched = replica.dispatch(DISPATCH_SLICE)
                    else:
                        touched = await loop.run_in_executor(executor, replica.dispatch,
                                                             DISPATCH_SLICE)
                except Exception:  # a store error must not stop replication; recovery
                    log.exception("HA: dispatch of replicated records failed")  # redoes it
                    break
                if touched and self._on_dispatched is not None:
                    self._on_dispatched(touched)


class SlaveLink(asyncio.Protocol):
    """One connection to the master (HAClient's socket, its reads and reports)."""

    def __init__(self, client: HAClient) -> None:
        self._client = client
        self._replica = client.replica
        self._frames = TransferDecoder()
        self._pending = bytearray()  # the start of a record a frame boundary cut
        # Where the next frame must start; an empty replica takes the master's first offset
        # (a segment start: the replica checks it).
        self._next: int | None = self._replica.end or None
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self.lost: asyncio.Future[None] = self._loop.create_future()
        self._reported = -1
        self._last_report = self._last_read = self._loop.time()
        self._ticker: asyncio.TimerHandle | None = None
        self.closed = False
        self.master = client.master or "?"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment] - uvloop's is no subclass
        log.info("HA: connected to master %s; reporting offset %d", self.master,
                 self._replica.end)
        self._report()  # at once: the master starts sending when it has our offset
        self._ticker = self._loop.call_later(TICK_S, self._tick)

    def data_received(self, data: bytes) -> None:
        self._last_read = self._loop.time()
        error: Exception | None = None
        try:
            messages = self._decode(data)
        except HAProtocolError as exc:  # the frames before the bad one still count
            messages, error = exc.frames, exc
        try:
            for message in messages:
                self._handle(message)
                if self.closed:
                    return
        except (HAProtocolError, ReplicaDataError) as exc:
            error = exc
        if self._reporting and self._replica.end != self._reported:
            self._report()
        self._client.dispatch_soon()
        if error is not None:
            self.close(str(error))

    # What a link of another wire format changes (epoch_client.py).
    _reporting = True  # reports may go out (after a handshake, if there is one)
    _encode_report = staticmethod(encode_report)  # the protocol's report frame

    def _decode(self, data: bytes) -> list:
        return self._frames.feed(data)

    def _handle(self, frame: tuple[int, memoryview]) -> None:
        self._apply(*frame)

    def _apply(self, offset: int, body: memoryview) -> None:
        """HAClient.dispatchReadRequest: append the whole records the frame completes."""
        if self._next is not None and offset != self._next:
            raise HAProtocolError(f"master sent offset {offset}; this replica expects "
                                  f"{self._next}")
        self._next = offset + len(body)
        if not body:
            return  # a heartbeat
        pending = self._pending
        if pending:
            pending += body
            del pending[:self._replica.append(self._next - len(pending), pending)]
        else:
            n = self._replica.append(offset, body)
            if n < len(body):
                pending += body[n:]
        if len(pending) > MAX_PENDING_BYTES:
            raise HAProtocolError(f"{len(pending)} bytes without a whole record")

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._ticker is not None:
            self._ticker.cancel()
        if not self.lost.done():
            self.lost.set_result(None)
        log.info("HA: link to master %s closed at offset %d%s", self.master, self._replica.end,
                 f" ({exc})" if exc else "")

    def close(self, reason: str | None) -> None:
        if self.closed or self._transport is None:
            return
        if reason:
            log.warning("HA: master %s: %s; connection closed", self.master, reason)
        self.closed = True
        self._pending = bytearray()  # never appended: the next link sends them again
        self._transport.close()

    def _report(self) -> None:
        assert self._transport is not None
        self._reported = self._replica.end
        self._transport.write(self._encode_report(self._reported))
        self._last_report = self._loop.time()

    def _tick(self) -> None:
        """The heartbeat report, and housekeeping: a master silent that long is gone."""
        if self.closed:
            return
        now = self._loop.time()
        cfg = self._client.config
        if now - self._last_read > cfg.housekeeping_interval_ms / 1000:
            self.close(f"nothing for {cfg.housekeeping_interval_ms / 1000:.0f} s")
            return
        if now - self._last_report >= cfg.heartbeat_interval_ms / 1000:
            self._report()
        self._ticker = self._loop.call_later(TICK_S, self._tick)
