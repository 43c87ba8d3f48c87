"""A replica's dispatch on a thread of its own (a slave's ReputMessageService): what the link
appended goes to the consume queues and the index here, beside the link's receiving, never in
turns with it; the native dispatch releases the GIL (replica_dispatch.py). The link reports
what it appended and checked without waiting for any of this.

While a slave catches up (ha_follow.c: a receive found a few hundred KiB waiting) it copies
first and dispatches after: the native link does not wake this thread until the socket drains
(or the bound below), because a SYNC_MASTER's sends and an ASYNC_MASTER's loss window wait on
the log's copy, not on the slave's queues, and on 2 vCPUs a third busy thread slows the copy.
A slave whose queues lag answers pulls as before (nothing yet, or the master's suggestion
stands) and the consumer goes back to the master, as RocketMQ's slave does. Steady traffic is
not a catch-up: its receives are short (a stalled slave's one long receive starts one that the
short ones after it end within milliseconds), and it is dispatched as gathered below.

The queues that grew are handed to ``on_dispatched`` on the event loop, gathered: one call for
whatever grew while the loop was busy (a broker wakes the pulls held on them).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable

from ..replica import ReplicaLog

log = logging.getLogger(__name__)

SLICE = 4096  # records per dispatch call; the store's put lock is taken only on its slow path
# The thread is woken for GATHER_BYTES of appended records at once, or once the link was idle
# for GATHER_IDLE_S, or GATHER_MAX_S after the oldest record waiting: every wake-up takes the
# GIL from the link (and a core from it and the master), so under a stream of small sends it
# wakes about once a millisecond, during a catch-up once per 4 MiB, never once per read.
GATHER_BYTES = 4 << 20
GATHER_IDLE_S = 0.001
GATHER_MAX_S = 0.010
# A catch-up holds the dispatch back until DEFER_BYTES are appended (1 GiB: this thread takes
# about 0.13 CPU s/GiB, so the slave's queues are at most ~0.15 s of work behind its log when
# it resumes) or for DEFER_MAX_S (a slow catch-up: a slow disk or a throttled link); after
# either, it runs beside the link for the rest of that catch-up, as it does outside one.
DEFER_BYTES = 1 << 30
DEFER_MAX_S = 2.0
RETRY_S = 1.0  # after a failed dispatch (recovery redoes it at the next open anyway)
# The thread's niceness: where the cores are short (a catch-up on 2 vCPUs), the link's
# receive thread, which an acknowledgement waits for, goes first and the dispatch takes what
# it leaves. benches/ha_catchup.py on a quiet 2-vCPU machine, 5 alternated pairs of 3 turns
# (the link's then two threads): replica / plain copy (median of turns) 57-80 % (median 62)
# against 50-57 % at nice 0, lag p99 no higher; on the one-thread link, 3 pairs at load 5-6:
# 99, 115, 126 % against 111, 77, 72 %. Raising one's own niceness needs no privilege.
NICE = 10

Touched = set[tuple[str, int]]


class DispatchThread:
    def __init__(self, replica: ReplicaLog, loop: asyncio.AbstractEventLoop,
                 on_dispatched: Callable[[Touched], None] | None) -> None:
        self._replica = replica
        self._loop = loop
        self._on_dispatched = on_dispatched
        self._appended = threading.Event()
        self._first_waiting: float | None = None  # when the oldest undispatched append came
        self._idle: asyncio.TimerHandle | None = None
        self._stopping = False
        self._touched: Touched = set()  # grown, not yet handed to the loop
        self._handing = False  # a hand-over is scheduled on the loop
        self._lock = threading.Lock()  # guards the two above
        self._thread = threading.Thread(target=self._run, name="rmq-replica-dispatch",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()
        if self._replica.pending():
            self._appended.set()

    def appended(self) -> None:
        """Records were appended (the loop's thread): the thread takes them now, or gathered
        with the next ones."""
        replica = self._replica
        now = self._loop.time()
        if self._first_waiting is None:
            self._first_waiting = now
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if (replica.end - replica.dispatched >= GATHER_BYTES
                or now - self._first_waiting >= GATHER_MAX_S):
            self._wake()
        else:
            self._idle = self._loop.call_later(GATHER_IDLE_S, self._wake)

    def wake(self) -> None:
        """Records were appended and gathered already (any thread): take them now."""
        self._appended.set()

    def _wake(self) -> None:
        self._first_waiting = self._idle = None
        self._appended.set()

    def stop(self) -> None:
        """Returns once no dispatch runs (the store may be closed then)."""
        self._stopping = True
        if self._idle is not None:
            self._idle.cancel()
        self._appended.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
        except OSError:  # a platform or sandbox without per-thread priorities: runs as is
            log.debug("HA: the dispatch thread's niceness was not set", exc_info=True)
        replica = self._replica
        while True:
            self._appended.wait()
            self._appended.clear()
            while not self._stopping and replica.pending():
                try:
                    touched = replica.dispatch(SLICE)
                except Exception:  # a store error must not stop replication
                    log.exception("HA: dispatch of replicated records failed")
                    self._appended.wait(RETRY_S)
                    break
                if touched and self._on_dispatched is not None:
                    self._hand_over(touched)
            if self._stopping:
                return

    def _hand_over(self, touched: Touched) -> None:
        with self._lock:
            self._touched |= touched
            if self._handing:
                return
            self._handing = True
        try:
            self._loop.call_soon_threadsafe(self._deliver)
        except RuntimeError:  # the loop is closed: nobody waits for these queues any more
            pass

    def _deliver(self) -> None:
        with self._lock:
            touched, self._touched, self._handing = self._touched, set(), False
        assert self._on_dispatched is not None
        self._on_dispatched(touched)
