"""HAClient: a replica store's side of replication (HAClient of rocketmq-all-4.9.7): it connects
to its master's HA port, reports where its log ends (at once, whenever it grows, and every
haSendHeartbeatInterval), and appends what the master sends (MessageStore.replica), reported at
once. A plaintext link is received by a native loop on a thread of its own (native_link.py); a
TLS link here, on the event loop (SlaveLink: each read appended in one native call, its
TransferReader stripping the frame headers in place). What the replica reports (and a
SYNC_MASTER's sends wait for) is what it appended and checked; its dispatch to the consume
queues and index follows on a thread of its own (dispatch_thread.py), never holding the report
back.

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

from ..errors import ReplicaDataError, SyncFailedError
from ..net.tls import TlsClientConfig
from ..protocol.ha import HAProtocolError, TransferReader, encode_report
from ..store import MessageStore
from . import sockets
from .config import HAConfig
from .dispatch_thread import DispatchThread, Touched
from .native_link import MAX_PENDING_BYTES, NativeLink

log = logging.getLogger(__name__)

TICK_S = 0.5  # how often a link checks its heartbeat and housekeeping clocks


class HAClient:
    def __init__(self, store: MessageStore, master: str | None = None,
                 config: HAConfig | None = None,
                 on_dispatched: Callable[[Touched], None] | None = None,
                 tls: TlsClientConfig | None = None) -> None:
        """master: the master's HA address (haMasterAddress, or learnt from the NameServer
        later through set_master). on_dispatched(queues): queues that grew (a broker wakes the
        pulls held on them). tls: connect with TLS, checking the master's certificate."""
        self._tls = tls
        self.replica = store.replica  # ReplicaStoreError unless the store is a replica
        self.link_class: type[SlaveLink] = SlaveLink  # controller mode's has a handshake
        self.config = config or HAConfig()
        self._master = master
        self._on_dispatched = on_dispatched
        self._link: SlaveLink | NativeLink | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dispatcher: DispatchThread | None = None

    @property
    def master(self) -> str | None:
        return self._master

    @property
    def connected(self) -> bool:
        return self._link is not None and not self._link.closed

    async def start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        self._dispatcher = DispatchThread(self.replica, loop, self._on_dispatched)
        self._dispatcher.start()
        self.replica.on_sync_failed = self._sync_failed_soon
        self._task = loop.create_task(self._run(), name="ha-client")

    async def close(self) -> None:
        """Stop following; returns once no dispatch runs (the store may be closed then)."""
        self.replica.on_sync_failed = None
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._link is not None:
            self._link.close(None)
            if isinstance(self._link, NativeLink):  # its thread appends no more after this
                await self._link.lost
        if self._dispatcher is not None:  # a slice under way ends first
            await asyncio.get_running_loop().run_in_executor(None, self._dispatcher.stop)
            self._dispatcher = None

    def _sync_failed_soon(self, durable: int) -> None:
        """ReplicaLog.on_sync_failed (the failed sync's thread)."""
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(self._sync_failed)
        except RuntimeError:  # the loop is closed: nothing follows any more
            pass

    def _sync_failed(self) -> None:
        """The replica's sync failed: its link closes now; _run makes no other."""
        if self._link is not None:
            self._link.close("a sync of this replica's commit log failed")
        if self._changed is not None:
            self._changed.set()

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
            if (failed := self.replica.sync_failed_at) is not None:
                log.critical("HA: this replica's commit-log sync failed; it follows no master "
                             "until its store is reopened, which ends its log at offset %d "
                             "(the master sends the rest again)", failed)
                return
            master = self._master
            if master is None:
                await self._changed.wait()
                continue
            try:
                self._link = await self._connect(master)
            except (OSError, TimeoutError, ValueError) as exc:
                log.info("HA: cannot connect to master %s: %s", master, exc)
            else:
                await asyncio.shield(self._link.lost)  # a cancel leaves it to close()
            try:  # a pause before connecting again (or a new master is set)
                async with asyncio.timeout(retry_s):
                    await self._changed.wait()
            except TimeoutError:
                pass

    async def _connect(self, master: str) -> SlaveLink | NativeLink:
        """A link to master: received natively when plaintext in 4.x's frames, by asyncio over
        TLS or with controller mode's handshake."""
        host, port = sockets.split_address(master)
        if self._tls is None and self.link_class is SlaveLink:  # 4.x's frames only
            link = NativeLink(self, await sockets.connect_socket(host, port))
            link.start()
            return link
        _, protocol = await sockets.connect(host, port, lambda: self.link_class(self),
                                            self._tls)
        assert isinstance(protocol, SlaveLink)
        return protocol

    def wake_dispatch(self) -> None:
        """Records were appended and gathered (any thread): the dispatch thread takes them."""
        if self._dispatcher is not None:
            self._dispatcher.wake()

    def dispatch_soon(self) -> None:
        """Records were appended: the dispatch thread takes them."""
        if self._dispatcher is not None:
            self._dispatcher.appended()


class SlaveLink(asyncio.BufferedProtocol):
    """One connection to the master (HAClient's socket, its reads and reports). The master's
    bytes are received straight into the link's TransferReader; each read is appended in one
    call and reported at once, before any dispatch."""

    def __init__(self, client: HAClient) -> None:
        self._client = client
        self._replica = client.replica
        # An empty replica takes the master's first offset (a segment start: the replica
        # checks it); any other must be sent bytes from where its log ends.
        self._reader = TransferReader(self._replica.end or None,
                                      max_pending=MAX_PENDING_BYTES)
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

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._reader.buffer()

    def buffer_updated(self, nbytes: int) -> None:
        self._last_read = self._loop.time()
        error: Exception | None = None
        reader = self._reader
        try:
            reader.received(nbytes)
        except HAProtocolError as exc:  # the frames before the bad one still count
            error = exc
        try:
            if not self.closed:
                self._append()
        except (ReplicaDataError, SyncFailedError) as exc:
            error = exc
        if self._reporting and self._replica.end != self._reported:
            self._report()
        self._client.dispatch_soon()
        if error is not None:
            self.close(str(error))

    def _append(self) -> None:
        """Append the whole records the reader holds."""
        reader = self._reader
        data = reader.log()
        if data:
            reader.consume(self._replica.append(reader.offset, data))

    # What a link of another wire format changes (epoch_client.py).
    _reporting = True  # reports may go out (after a handshake, if there is one)
    _encode_report = staticmethod(encode_report)  # the protocol's report frame

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
        self.closed = True  # what was not appended, the next link is sent again
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
