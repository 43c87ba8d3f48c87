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

The whole wait runs in C (_native/shared_commit.c): Python between a wake-up and the return,
and the syncer's catch-up and bookkeeping before it woke the others, were a third of the time
from one fdatasync to the next. The C syncs the commit-log segment this process mapped last
when that holds everything not yet durable; otherwise (the log rolled into a file not mapped
here) it hands the flush mutex back and the sync runs in Python. With the sync journal on,
the C writes its record of the sync before anyone wakes, as sync_journal's functions do.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import TYPE_CHECKING

from .. import _native, sync_journal
from ..flush import FlushCue
from . import control as c
from .control import Control

if TYPE_CHECKING:
    from ..segment import MappedFile

# A sleeper looks again this often: a flusher that died holding the mutex wakes nobody, and
# the next to look takes the mutex over (EOWNERDEAD) and syncs.
RECHECK_S = 0.02


class SharedGroupCommit(FlushCue):
    """GroupCommit's interface (wait, flushed, cue, advance) over the control file."""

    def __init__(self, ctl: Control, flush_all: Callable[[], int], timeout_s: float,
                 delay_us: int, last_segment: Callable[[], MappedFile | None],
                 synced: Callable[[MappedFile, int, int], None]) -> None:
        """flush_all() catches the commit log up, fdatasyncs it, returns the durable offset;
        delay_us caps the gathering of a sync's waiters; last_segment() is the commit log's
        last file mapped here, which the native wait syncs, then calls synced(segment, store
        time covered, durable offset)."""
        super().__init__()
        self.sleeps = self.tries = 0  # futex sleeps and flush mutex tries of the waits here
        self._ctl = ctl
        self._flush_all = flush_all
        self._last_segment = last_segment
        self._synced = synced
        self._arrivals_at = c.SYNC_ARRIVALS // 4
        self._synced_at, self._want_at = c.SYNCED_ARRIVALS // 4, c.SYNC_WANT // 4
        self._at = c.DURABLE // 8
        self._failed_at = c.SYNC_FAILED // 8
        self._mutex = ctl.address(c.FLUSH_MUTEX)
        self._seq = ctl.address(c.DURABLE_SEQ)
        self._waiters = ctl.address(c.DURABLE_WAITERS)
        self._native = _native.shared_commit(ctl.region, {
            "durable": c.DURABLE, "log_end": c.LOG_END, "last_ts": c.LAST_TS,
            "seq": c.DURABLE_SEQ, "waiters": c.DURABLE_WAITERS, "arrivals": c.SYNC_ARRIVALS,
            "synced": c.SYNCED_ARRIVALS, "want": c.SYNC_WANT, "sync_failed": c.SYNC_FAILED},
            c.FLUSH_MUTEX,
            delay_us / 1e6, RECHECK_S, timeout_s)

    @property
    def flushed(self) -> int:
        return self._ctl.i64[self._at]

    def advance(self, durable: int) -> None:
        """Record that [0, durable) is durable (under the flush mutex, whose release wakes the
        waiters)."""
        if durable > self._ctl.i64[self._at]:
            self._ctl.i64[self._at] = durable

    def wait(self, offset: int) -> bool:
        """Block until [0, offset) is durable; False after the sync flush timeout, or once a
        sync failed here (FlushCue.fail)."""
        if self.failed_at is not None:
            return False
        if self._ctl.i64[self._at] >= offset:
            return True
        seg = self._last_segment()
        if seg is None:
            w = _native.durable_wait(offset, -1, 0, 0, -1, b"")
        else:
            jfd, prefix = sync_journal.native_upto(seg.path) if sync_journal.ON else (-1, b"")
            fd = -1 if sync_journal.ON and jfd < 0 else seg.fd  # unjournaled: in Python
            w = _native.durable_wait(offset, fd, seg.start, seg.size, jfd, prefix)
        try:
            while True:
                rc = _native.durable_wait_shared(self._native, w)
                if rc == _native.DURABLE_DONE:
                    return self.failed_at is None
                if rc == _native.DURABLE_TIMEOUT:
                    return False
                if rc == _native.DURABLE_SYNCED:  # the others are awake already
                    self.syncs += 1
                    self._synced(seg, w.synced_ts, w.synced_upto)
                    if w.synced_upto >= offset:  # always: the put was published before
                        return self.failed_at is None
                elif rc == _native.DURABLE_HOLDING:
                    self._sync_holding(offset)
                elif rc != _native.DURABLE_AGAIN:  # AGAIN: a signal, whose handlers ran
                    raise OSError(-rc, "a sync flush of the shared commit log failed")
        except OSError as exc:
            if not self._native.failed:  # a sync of flush_all's (Python): the C's fail too
                self._native.failed = exc.errno or errno.EIO
            self.fail(exc)
            return False
        finally:
            self.sleeps += w.sleeps
            self.tries += w.tries

    @property
    def failed_elsewhere(self) -> int | None:
        """The durable offset when a sync of any process failed (the control file's
        sync_failed word), or None."""
        failed = self._ctl.i64[self._failed_at]
        return failed - 1 if failed else None

    def publish_failure(self, durable: int) -> None:
        """Tell every process that a sync here failed with the log durable to ``durable``;
        the first failure's offset stands (called under the flush mutex, or after the first
        publish from under it)."""
        if not self._ctl.i64[self._failed_at]:
            self._ctl.i64[self._failed_at] = durable + 1

    def _sync_holding(self, offset: int) -> None:
        """The native wait handed over the flush mutex: the sync needs files not mapped here."""
        try:
            if self._native.failed:  # a sync failed here: see shared_commit.c's sync_segment
                raise OSError(self._native.failed, "a sync flush of the shared commit log failed")
            if self.failed_elsewhere is not None:
                raise OSError(errno.EIO, "a sync flush of the shared commit log failed in "
                              "another process")
            if self._ctl.i64[self._at] < offset:
                try:
                    self._sync(self._ctl.u32)
                except OSError:  # before the mutex goes: no process may sync unaware
                    self.publish_failure(self.flushed)
                    raise
        finally:  # durable_seq bumped atomically before the waiters are counted
            _native.release_and_wake(self._mutex, self._seq, self._waiters)

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
