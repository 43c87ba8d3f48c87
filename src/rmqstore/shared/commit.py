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

The holder does not sync at once: it first waits, up to group_commit_delay_us, until as many
waiters have arrived since the last sync began as that sync covered (PostgreSQL's commit_delay,
ended early as the native syncer's is). Without it, four processes each putting and waiting
split into two halves a sync apart: the first to put after a sync synced alone with whoever had
put by then (2.4 puts per fdatasync); with it, the processes a sync woke are all in the next.
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
        self._delay_ns = delay_us * 1000
        self._arrivals = ctl.address(c.SYNC_ARRIVALS)
        self._target = ctl.address(c.GATHER_TARGET)
        self._synced_at, self._batch_at = c.SYNCED_ARRIVALS // 4, c.LAST_BATCH // 4
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
        _native.sync_arrive(self._arrivals, self._target)  # the caller's put is published
        deadline = time.monotonic() + self._timeout_s
        while True:
            seen = u32[self._seq_at]  # before looking: a sync finished after it wakes us
            if words[self._at] >= offset:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if _native.mutex_lock(self._mutex, _native.NULL, 0) is None:  # another syncs
                _native.wait_for_change(self._seq, self._waiters, seen, min(left, RECHECK_S))
                continue
            try:
                if words[self._at] < offset:
                    self._gather_and_sync()
            finally:  # durable_seq bumped atomically before the waiters are counted
                _native.release_and_wake(self._mutex, self._seq, self._waiters)

    def _gather_and_sync(self) -> None:
        """Under the flush mutex: wait for this sync's waiters (see the module's docstring),
        then sync everything published."""
        u32 = self._ctl.u32
        since = u32[self._synced_at]
        now = _native.sync_gather(self._arrivals, self._target, since,
                                  max(1, u32[self._batch_at]), self._delay_ns)
        u32[self._synced_at] = now  # read before flush_all: these puts are published
        u32[self._batch_at] = (now - since) & 0xFFFFFFFF
        self.syncs += 1
        self.advance(self._flush_all())
