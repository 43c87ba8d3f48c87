"""A slave's plaintext link to its master, received by one native loop (rmq_follow) on a thread
of its own: the frames' headers taken out, the records checked, then appended and the new end
reported to the master, all in C without the GIL. Python runs only when the loop returns: to
give it the next segment (under the store's put lock, with the same checks as
ReplicaLog.append), to wake the dispatch thread for what it gathered, or to close the link.
While the link catches up, the dispatch thread sleeps until the socket drains
(dispatch_thread.py says why and how long at most).
A TLS link keeps the asyncio path (client.SlaveLink), whose rules this loop follows: the same
limits, no partial record appended, a report after every append and every heartbeat interval,
the link dropped after a silent housekeeping interval.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Callable
from typing import Protocol

from .. import _native
from ..errors import ReplicaDataError, SyncFailedError
from ..protocol.ha import MAX_TRANSFER_BODY
from ..replica import ReplicaLog
from .config import HAConfig
from .dispatch_thread import DEFER_BYTES, DEFER_MAX_S, GATHER_BYTES, GATHER_IDLE_S, GATHER_MAX_S

log = logging.getLogger(__name__)

MAX_PENDING_BYTES = 64 << 20  # the start of one record held: no record is larger


def run_loop(loop: Callable[[], str | None], peer: str) -> str | None:
    """Run a native link's loop (its thread's body); why the link ended: the loop's answer,
    or the error that stopped it (a store error ends this link; the next one resumes)."""
    try:
        return loop()
    except Exception as exc:
        log.exception("HA: link to %s failed", peer)
        return str(exc)


class LinkOwner(Protocol):
    """What a link needs of its HAClient."""

    replica: ReplicaLog
    config: HAConfig

    @property
    def master(self) -> str | None: ...
    def wake_dispatch(self) -> None: ...


class NativeLink:
    """One connection to the master (the socket is the link's from now on)."""

    def __init__(self, client: LinkOwner, sock: socket.socket) -> None:
        self._client = client
        self._replica = client.replica
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self.lost: asyncio.Future[None] = self._loop.create_future()
        self.closed = False
        self.master = client.master or "?"
        cfg = client.config
        # An empty replica takes the master's first offset (a segment start: segment_at
        # checks it); any other must be sent bytes from where its log ends.
        self._follower = _native.Follower(
            sock.fileno(), self._replica.end or -1, MAX_TRANSFER_BODY, MAX_PENDING_BYTES,
            cfg.heartbeat_interval_ms, cfg.housekeeping_interval_ms, GATHER_BYTES,
            round(GATHER_IDLE_S * 1000), round(GATHER_MAX_S * 1000), DEFER_BYTES,
            round(DEFER_MAX_S * 1000))
        self._sock_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="rmq-ha-follow", daemon=True)

    def start(self) -> None:
        log.info("HA: connected to master %s; reporting offset %d", self.master,
                 self._replica.end)
        self._thread.start()

    def close(self, reason: str | None) -> None:
        """Ends the loop (the thread closes the socket); ``lost`` resolves once it has."""
        if self.closed:
            return
        if reason:
            log.warning("HA: master %s: %s; connection closed", self.master, reason)
        self.closed = True
        with self._sock_lock:  # never a shutdown of a descriptor the thread closed
            if self._sock.fileno() >= 0:
                try:
                    self._sock.shutdown(socket.SHUT_RDWR)  # wakes the loop's poll
                except OSError:  # the master hung up first
                    pass

    def _run(self) -> None:
        try:
            reason = run_loop(self._follow, f"master {self.master}")
        finally:
            self._follower.release()
        self.close(reason)
        with self._sock_lock:
            self._sock.close()
        log.info("HA: link to master %s closed at offset %d", self.master, self._replica.end)
        try:
            self._loop.call_soon_threadsafe(self._lost)
        except RuntimeError:  # the loop is gone: nobody waits
            pass

    def _follow(self) -> str | None:
        """Run the native loop until the link ends; why it ended (None: hung up or closed)."""
        follower = self._follower
        while not self.closed:
            status = follower.follow()
            appended = follower.take_appended()
            if appended:  # a sync-flush slave's flusher is cued, catching up or not
                self._replica.appended()
            # A catch-up's segment ends leave the dispatch asleep (dispatch_thread.py); any
            # other return wakes it for everything appended.
            if status != _native.FOLLOW_SEGMENT or (appended and not follower.deferring):
                self._client.wake_dispatch()
            if (failed := self._replica.sync_failed_at) is not None:
                return (f"a sync of this replica's commit log failed: it takes no more bytes "
                        f"until it is reopened, which ends its log at offset {failed}")
            if status == _native.FOLLOW_SEGMENT:
                try:
                    follower.set_segment(self._replica.segment_at(follower.offset))
                except (ReplicaDataError, SyncFailedError) as exc:
                    return str(exc)
            elif status != _native.FOLLOW_APPENDED:
                return self._why(status)
        return None

    def _lost(self) -> None:
        if not self.lost.done():
            self.lost.set_result(None)

    def _why(self, status: int) -> str | None:
        """What a closing status means; None for the master hanging up (logged as closed)."""
        f = self._follower
        offset, size = f.bad_header
        if status == _native.FOLLOW_CLOSED:
            return None if not f.errno else f"connection failed (errno {f.errno})"
        if status == _native.FOLLOW_SILENT:
            cfg = self._client.config
            return f"nothing for {cfg.housekeeping_interval_ms / 1000:.0f} s"
        if status == _native.FOLLOW_BAD_HEADER:
            return (f"transfer header (offset {offset}, size {size}) is outside the limits "
                    f"(size <= {MAX_TRANSFER_BODY})")
        if status == _native.FOLLOW_GAP:
            return f"master sent offset {offset}, not where the bytes before it end"
        if status == _native.FOLLOW_TOO_LONG:
            return f"more than {MAX_PENDING_BYTES} bytes without a whole record"
        if status == _native.FOLLOW_BAD_RECORD:
            return f"master's bytes at offset {f.offset} are not a valid record"
        return f"writing the replica failed (errno {f.errno})"
