"""A master's plaintext link to one slave, fed by one native loop (rmq_feed) on a thread of its
own once the slave's first report was accepted: frames sent with one sendmsg per eight straight
from the segment's mapping, reports taken, all in C without the GIL. Python runs only to give
the loop the next segment and when the link ends. The store's appends wake the loop directly
(wake(), from whatever thread appended); a SYNC_MASTER's waiting sends arm it (arm()), and a
report reaching what they wait for is announced on an eventfd the event loop watches, so the
loop's thread wakes once per report that matters. A SYNC_MASTER's event loop does more while
the native loop sleeps, with its state lent (rmq_feeder_push, rmq_feeder_take_reports): it
sends its own appends (push()) and, while sends wait, reads the reports itself (read_here()),
so one round trip to the slave wakes no thread of this process but the event loop's.
A TLS link keeps the asyncio path (master_link.MasterLink), whose rules this loop follows.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable

from .. import _native
from ..store import MessageStore
from .native_link import run_loop

log = logging.getLogger(__name__)


class NativeFeed:
    def __init__(self, store: MessageStore, fd: int, start: int, batch: int, heartbeat_ms: int,
                 on_ack: Callable[[int], None], on_end: Callable[[str | None], None],
                 peer: str) -> None:
        """fd: the link's connected socket (its transport reads nothing meanwhile). on_ack(
        offset): an armed report came (the loop's thread). on_end(reason): the loop ended,
        reason None when the slave hung up or stop() was called (the loop's thread)."""
        self._store = store
        self._loop = asyncio.get_running_loop()
        self._on_ack = on_ack
        self._on_end = on_end
        self._peer = peer
        self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._ack_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._feeder = _native.Feeder(fd, self._wake_fd, self._ack_fd, start, batch,
                                      heartbeat_ms)
        self.ended: asyncio.Future[None] = self._loop.create_future()  # on_end ran
        self._reading: int | None = None  # a duplicate of fd the loop watches for reports
        self._fd = fd
        self._lock = threading.Lock()  # stop() never shuts down a descriptor closed meanwhile
        self._running = True
        self._loop.add_reader(self._ack_fd, self._acks)
        self._thread = threading.Thread(target=self._run, name="rmq-ha-feed", daemon=True)
        self._thread.start()

    @property
    def acked(self) -> int:
        """The slave's last report (-1: none yet)."""
        return self._feeder.acked

    def silent_s(self) -> float:
        """Seconds since the slave's last report (haHousekeepingInterval's clock)."""
        return time.monotonic() - self._feeder.last_read_ms / 1000

    def wake(self) -> None:
        """Bytes were appended (any thread)."""
        self._feeder.wake()

    def push(self) -> int:
        """Bytes were appended: send them from this thread if the loop sleeps (one thread
        hop fewer before a SYNC_MASTER's sends are acknowledged), else wake it; nonzero when
        frames went."""
        return self._feeder.push()

    def read_here(self) -> None:
        """Sends wait: the event loop takes the slave's reports itself while the feed sleeps
        (one thread woken per acknowledgement, not two), until it finds the feed awake."""
        if self._reading is not None or not self._running:
            return
        # a duplicate: the transport still owns fd in the event loop's eyes
        self._reading = os.dup(self._fd)
        self._feeder.loop_reads(True)
        self._loop.add_reader(self._reading, self._reports)

    def _reports(self) -> None:
        acked = self._feeder.take_reports()
        if acked in (_native.FEED_AWAKE, _native.FEED_ENDING):
            self._stop_reading()  # the feed reads them (announcing them), or it ends
        elif acked >= 0:  # -1: no whole report yet
            self._on_ack(acked)

    def _stop_reading(self) -> None:
        if self._reading is not None:
            self._loop.remove_reader(self._reading)
            os.close(self._reading)
            self._reading = None
            self._feeder.loop_reads(False)

    def arm(self, end: int) -> int:
        """Announce the first report reaching ``end``; returns the last report as it is now."""
        return self._feeder.notify_at(end)

    def stop(self) -> None:
        with self._lock:
            if self._running:
                self._feeder.stop()

    def _run(self) -> None:
        reason = run_loop(self._feed, f"slave {self._peer}")
        with self._lock:
            self._running = False
        self._feeder.release()
        try:
            self._loop.call_soon_threadsafe(self._ended, reason)
        except RuntimeError:  # the loop is gone: nobody waits
            pass

    def _feed(self) -> str | None:
        feeder = self._feeder
        status = _native.FEED_SEGMENT
        while True:
            if status == _native.FEED_SEGMENT:
                offset = feeder.next
                seg = self._store.commitlog.files.find(offset)
                if seg is None and offset != self._store.commitlog.max_offset:
                    return f"this master no longer holds offset {offset} (deleted)"
                feeder.set_segment(seg)  # None: the log ends where the next one starts
            elif status == _native.FEED_BAD_REPORT:
                return (f"reported offset {feeder.bad_report}, past what was sent: a diverged "
                        "log")
            else:
                return f"connection failed (errno {feeder.errno})" if feeder.errno else None
            status = feeder.feed()

    def _acks(self) -> None:
        try:
            os.eventfd_read(self._ack_fd)
        except BlockingIOError:
            return
        self._on_ack(self._feeder.acked)

    def _ended(self, reason: str | None) -> None:
        self._stop_reading()
        self._loop.remove_reader(self._ack_fd)
        os.close(self._ack_fd)
        os.close(self._wake_fd)
        self._on_end(reason)
        self.ended.set_result(None)
