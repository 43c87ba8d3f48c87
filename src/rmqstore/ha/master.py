"""HAService: a master store's side of replication (HAService of rocketmq-all-4.9.7): it listens
on haListenPort, streams its commit log to every slave that connects (master_link.py), and
knows how far the slaves are, for SYNC_MASTER (group_transfer.py).

In a broker it runs on the broker's event loop (``await start()``); an embedded store runs it
on a loop thread of its own (``rmqstore.ha.Background``), and another thread may then call
``wait_replicated``. Everything else runs on the loop's thread.

No link ever polls: the store calls ``wakeup`` after every append (MessageStore.notify_appends,
on whatever thread appended, only while a link is attached), and every link then pushes what is
new, once per loop iteration however many appends there were (after push_delay_ms, when it is
set: an ASYNC_MASTER's). A plaintext link is fed by a native loop (native_feed.py). Without
push_delay_ms, an append on another thread wakes that loop directly, and the loop's own appends
are pushed by the loop's thread once per iteration (NativeFeed.push: sent from here while the
feed sleeps, one thread hop fewer before a SYNC_MASTER's sends hear from a slave); a
SYNC_MASTER's waits arm it (``_arm``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading

from ..net.tls import TlsServerConfig
from ..store import MessageStore
from . import sockets
from .config import HAConfig
from .group_transfer import Callback, GroupTransfer
from .master_link import MasterLink

log = logging.getLogger(__name__)

HOUSEKEEPING_CHECK_S = 1.0
CLOSE_TIMEOUT_S = 5.0  # a fed link's thread ends within a poll once its socket is shut down


class HAService:
    link_class: type[MasterLink] = MasterLink  # controller mode's has the handshake

    def __init__(self, store: MessageStore, host: str = "0.0.0.0", port: int = 10912,
                 config: HAConfig | None = None, tls: TlsServerConfig | None = None) -> None:
        """tls: serve the HA port with TLS (permissive or enforcing, client certificates as
        it says); None: plaintext."""
        self.store = store
        self.config = config or HAConfig()
        self._host = host
        self._port = port
        self._tls = tls
        self.links: set[MasterLink] = set()
        self.native = tls is None  # plaintext links are fed natively (native_feed.py)
        self._server: sockets.Listener | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._transfer: GroupTransfer | None = None
        self._housekeeping: asyncio.Task[None] | None = None
        self._push_due = False  # a push of every link is scheduled
        self._hooked = False  # the store calls wakeup after its appends

    async def start(self) -> None:
        self._loop = loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._transfer = GroupTransfer(loop, self.config.slave_timeout_ms / 1000)
        self._server = await sockets.listen(self._host, self._port, lambda: self.link_class(self),
                                            self._tls, self.config.housekeeping_interval_ms / 1000)
        self._housekeeping = loop.create_task(self._close_silent_links(), name="ha-housekeeping")
        self._hook()
        log.info("HA service listening on %s:%d", *self.address)

    async def close(self) -> None:
        """Stop listening, close every slave's link, fail every send still waiting."""
        if self._server is None:
            return
        self.store.notify_appends(None)
        self._hooked = False
        server, self._server = self._server, None
        await server.close()
        fed = [link.feed.ended for link in self.links if link.feed is not None]
        for link in list(self.links):
            link.close("the master is stopping")
        if fed:  # their threads end, then their sockets close, before the loop may stop
            await asyncio.wait(fed, timeout=CLOSE_TIMEOUT_S)
        if self._housekeeping is not None:
            self._housekeeping.cancel()
        if self._transfer is not None:
            self._transfer.close()

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); the real port when 0 was asked for."""
        if self._server is None:
            raise RuntimeError("HA service not started")
        return self._server.address

    # -- what the send path asks -----------------------------------------------------------
    @property
    def acked(self) -> int:
        """The furthest offset a slave acknowledged (push2SlaveMaxOffset); a fed link's
        reports reach the send path's waiters only when armed, so they are read here too."""
        acked = self._transfer.acked if self._transfer is not None else 0
        for link in list(self.links):
            if link.feed is not None:
                acked = max(acked, link.feed.acked)
        return acked

    def slave_ok(self, put_where: int) -> bool:
        """HAService.isSlaveOK: a slave is connected and at most haSlaveFallbehindMax bytes
        behind put_where; a SYNC_MASTER send waits for slaves only then."""
        if not self.links:
            return False
        limit = self.config.slave_fallbehind_max
        # the waits' offset first: a fed link's reports reach it only while sends wait
        return (self._transfer is not None and put_where - self._transfer.acked < limit
                or put_where - self.acked < limit)

    def attach(self, link: MasterLink) -> None:
        """A slave's link counts from now on (the loop's thread)."""
        self.links.add(link)
        self._hook()

    def detach(self, link: MasterLink) -> None:
        self.links.discard(link)
        self._hook()

    def _hook(self) -> None:
        """The store calls ``wakeup`` after its appends only while a push has work: an
        unlinked master's puts pay nothing for replication."""
        hooked = self._server is not None and self._push_wanted()
        if hooked != self._hooked:
            self._hooked = hooked
            self.store.notify_appends(self.wakeup if hooked else None)

    def wakeup(self) -> None:
        """Bytes were appended (the store calls this after appends, from any thread): every
        link pushes them, once per loop iteration however many appends there were."""
        if self._push_due and threading.get_ident() == self._thread:
            return  # a push is scheduled on this thread, after this append (once per send)
        if self._loop is None or not self._push_wanted():
            return
        elsewhere = threading.get_ident() != self._thread
        if elsewhere and not self.config.push_delay_ms:  # a fed link's loop wakes at once
            fed = 0
            for link in list(self.links):
                if link.feed is not None:
                    link.feed.wake()
                    fed += 1
            if fed == len(self.links) and not self._loop_pushes:
                return
        if self._push_due:
            return
        self._push_due = True
        if elsewhere:
            self._loop.call_soon_threadsafe(self._schedule_push)
        else:
            self._schedule_push()

    # The loop's push does work beyond the links' (controller mode's confirm offset).
    _loop_pushes = False

    def _push_wanted(self) -> bool:
        """A push has work only with a link; one that links later pushes from its start, which
        reads the log after this append."""
        return bool(self.links)

    def _schedule_push(self) -> None:
        assert self._loop is not None
        if self.config.push_delay_ms:
            self._loop.call_later(self.config.push_delay_ms / 1000, self._push_all)
        else:
            self._loop.call_soon(self._push_all)

    def _push_all(self) -> None:
        self._push_due = False  # first: an append after this line schedules another push
        for link in self.links:
            link.push()

    def when_replicated(self, end: int, callback: Callback, ok: object = True,
                        failed: object = False) -> None:
        """callback(ok) once a slave holds every byte below ``end``, callback(failed) after
        slaveTimeout (FLUSH_SLAVE_TIMEOUT). The loop's thread only."""
        transfer = self._transfer
        assert transfer is not None, "HA service not started"
        if transfer.when_replicated(end, callback, ok, failed):  # else armed for the first
            self._arm()

    def wait_replicated(self, end: int, timeout_s: float | None = None) -> bool:
        """when_replicated, blocking, for a thread other than the loop's (embedded use)."""
        assert self._loop is not None, "HA service not started"
        done: concurrent.futures.Future[bool] = concurrent.futures.Future()
        self._loop.call_soon_threadsafe(self.when_replicated, end, done.set_result)
        try:
            return done.result(timeout_s)
        except concurrent.futures.TimeoutError:
            return False

    # -- what the links ask ----------------------------------------------------------------
    def on_ack(self, offset: int) -> None:
        assert self._transfer is not None
        self._transfer.on_ack(offset)
        self._arm()

    def _arm(self) -> None:
        """Fed links announce the first report reaching the oldest waiting send's end (a
        report that came before the arming is taken here); while sends wait, the loop reads
        the reports itself. Plain loops: this runs once per acknowledgement."""
        transfer = self._transfer
        assert transfer is not None
        want = transfer.first_waiting
        read_here = not self.config.push_delay_ms
        while want is not None:
            acked = -1
            for link in self.links:
                feed = link.feed
                if feed is not None:
                    if read_here:
                        feed.read_here()
                    got = feed.arm(want)
                    if got > acked:
                        acked = got
            if acked < want:
                return
            read_here = False
            transfer.on_ack(acked)
            want = transfer.first_waiting

    def start_offset(self, requested: int, peer: str) -> int | None:
        """Where a slave reporting ``requested`` first is sent from, or None (logged) when
        this master cannot serve it."""
        log_ = self.store.commitlog
        end = log_.max_offset
        if requested == 0:
            # HAConnection: an empty slave starts at the start of the master's last segment.
            start = end - end % log_.segment_bytes
            log.info("HA: slave %s is empty: sending from offset %d", peer, start)
            return start
        if requested > end:
            log.warning("HA: slave %s asks for offset %d, past this master's end %d: its log "
                        "diverged from this one (RocketMQ's slaves never truncate)", peer,
                        requested, end)
            return None
        if requested < log_.min_offset:
            log.warning("HA: slave %s asks for offset %d; this master's log starts at %d now "
                        "(retention deleted the rest)", peer, requested, log_.min_offset)
            return None
        if not self.store.holds_boundary(requested):
            log.warning("HA: slave %s asks for offset %d, which is not where a record starts "
                        "here: its log diverged from this one", peer, requested)
            return None
        log.info("HA: slave %s resumes at offset %d (%d bytes behind)", peer, requested,
                 end - requested)
        return requested

    async def _close_silent_links(self) -> None:
        """haHousekeepingInterval: a slave silent that long (it reports every
        haSendHeartbeatInterval) is gone."""
        limit_s = self.config.housekeeping_interval_ms / 1000
        while True:
            await asyncio.sleep(min(HOUSEKEEPING_CHECK_S, limit_s))
            for link in list(self.links):
                if link.silent_s() > limit_s:
                    link.close(f"no report for {limit_s:.0f} s")
