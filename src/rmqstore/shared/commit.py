"""Sync flush across processes: the group commit of a shared store.

GroupCommit (flush.py) serves the threads of one process; here the waiters are in several.
The control file's durable word says how far the commit log is on disk, for everyone. A put
that must be durable past offset X checks it; if not there yet, it tries the flush mutex
(robust: a flusher that dies hands it on). The one that gets it checks durable again (the
previous holder's fdatasync may have covered X), else fdatasyncs everything published so far,
in any process, moves durable and wakes every waiter at once (a futex on durable_seq). The
others sleep on that futex meanwhile, not in the mutex's queue, which would hand the mutex on
one waiter at a time, a context switch each, to waiters whose puts the sync already covered:
so while one process syncs, the puts of all the others gather, and the next holder's single
fdatasync covers them all (group commit across processes).

A waiter does not try to sync at once: it first waits, up to group_commit_delay_us, until as
many waiters have arrived (counted in the control file) since the last sync began as the last
sync covered and saw arrive while it ran; the one whose arrival completes the count syncs,
without waking anyone (PostgreSQL's commit_delay, ended early as the native syncer's is).
Without it, four processes each putting and waiting split into two halves a sync apart: the
first to put after a sync synced alone with whoever had put by then (2.4 puts per fdatasync);
with it, the processes a sync woke are all in the next (3.4-4.0, as the machine's load lets
them wake within the delay). Only the first to arrive since the last sync began wakes when
the delay ends (to sync what gathered); the others sleep through it, to be woken by the end of
the sync that covers them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .. import _native
from ..flush import FlushCue
from . import control as c
from .control import Control

# A sleeper looks again this often: a flusher that died holding the mutex wakes nobody, and
# the next to look takes the mutex over (EOWNERDEAD) and syncs.
RECHECK_S = 0.02


class SharedGroupCommit(FlushCue):
    """GroupCommit's interface (wait, flushed, cue, advance) over the control file."""

    def __init__(self, ctl: Control, flush_all: Callable[[], int], timeout_s: float,
                 delay_us: int) -> None:
        """flush_all() catches the commit log up, fdatasyncs it, returns the durable offset;
        delay_us caps the gathering of a sync's waiters."""
        super().__init__()
        self._ctl = ctl
        self._flush_all = flush_all
        self._timeout_s = timeout_s
        self._delay_s = delay_us / 1e6
        self._arrivals = ctl.address(c.SYNC_ARRIVALS)
        self._arrivals_at = c.SYNC_ARRIVALS // 4
        self._synced_at, self._want_at = c.SYNCED_ARRIVALS // 4, c.SYNC_WANT // 4
        self._at = c.DURABLE // 8
        self._seq_at = c.DURABLE_SEQ // 4
        self._mutex = ctl.address(c.FLUSH_MUTEX)
        self._seq = ctl.address(c.DURABLE_SEQ)
        self._waiters = ctl.address(c.DURABLE_WAITERS)

    @property
    def flushed(self) -> int:
        return self._ctl.i64[self._at]

    def advance(self, durable: int) -> None:
        """Record that [0, durable) is durable (under the flush mutex, whose release wakes the
        waiters)."""
        if durable > self._ctl.i64[self._at]:
            self._ctl.i64[self._at] = durable

    def wait(self, offset: int) -> bool:
        """Block until [0, offset) is durable; False after the sync flush timeout."""
        words, u32 = self._ctl.i64, self._ctl.u32
        if words[self._at] >= offset:
            return True
        mine = _native.sync_arrive(self._arrivals)  # the caller's put is published
        now = time.monotonic()
        deadline, ripe = now + self._timeout_s, now + self._delay_s
        recheck = now + RECHECK_S
        while True:
            seen = u32[self._seq_at]  # before looking: a sync finished after it wakes us
            if words[self._at] >= offset:
                return True
            now = time.monotonic()
            left = deadline - now
            if left <= 0:
                return False
            if not self._gathered(u32):  # the last to arrive syncs
                # The first to arrive since the last sync began keeps the delay (and syncs at
                # its end); the others sleep through theirs: the end of a sync wakes them.
                until = ripe if self._first(u32, mine) else max(ripe, recheck)
                if now < until:
                    _native.wait_for_change(self._seq, self._waiters, seen, min(until - now, left))
                    continue
            recheck = now + RECHECK_S
            if _native.mutex_lock(self._mutex, _native.NULL, 0) is None:  # another syncs
                _native.wait_for_change(self._seq, self._waiters, seen, min(left, RECHECK_S))
                continue
            try:
                if words[self._at] < offset:
                    self._sync(u32)
            finally:  # durable_seq bumped atomically before the waiters are counted
                _native.release_and_wake(self._mutex, self._seq, self._waiters)

    def _first(self, u32, mine: int) -> bool:
        """Whether arrival `mine` is the first since the last sync began: the one that keeps
        the gathering delay. Each waiter used to keep its own, and woke at its end in the
        middle of the sync that covered it, to sleep again: a context switch each (1.9 per
        put from 4 processes; 1.6 now), and a try of the flush mutex."""
        return (mine - u32[self._synced_at]) & 0xFFFFFFFF == 1

    def _gathered(self, u32) -> bool:
        """Whether the waiters the next sync wants arrived since the last sync began."""
        arrived = (u32[self._arrivals_at] - u32[self._synced_at]) & 0xFFFFFFFF
        return arrived >= max(1, u32[self._want_at])

    def _sync(self, u32) -> None:
        """Under the flush mutex: sync everything published (the arrivals counted before
        flush_all: their puts were published before they arrived); the next sync wants as
        many waiters as this one covered and as arrived while it ran (counting only the
        latter would lock the processes into groups a sync apart: 3 of 4 in each)."""
        since, start = u32[self._synced_at], u32[self._arrivals_at]
        u32[self._synced_at] = start
        self.syncs += 1
        self.advance(self._flush_all())
        meanwhile = (u32[self._arrivals_at] - start) & 0xFFFFFFFF
        u32[self._want_at] = ((start - since) + meanwhile) & 0xFFFFFFFF
