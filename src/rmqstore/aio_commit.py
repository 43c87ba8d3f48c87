"""Sync flush driven from an asyncio event loop: the group commit of a server (the broker).

The blocking GroupCommit (flush.py) needs a thread to lead each fdatasync, and every wake-up of
that thread takes the GIL from the event loop: measured, the hand-offs cost a SYNC_FLUSH broker
more CPU per send than the rest of the send path. Here the loop itself leads, in one of two ways:

- While syncs are quick (the last took under INLINE_BELOW_S), the loop calls fdatasync itself
  at the end of the iteration that appended the sends (as Redis does with appendfsync always):
  sends that arrive during the sync wait in their sockets and share the next one. The thread
  hand-off (a condition-variable wake, the eventfd, a second epoll wake-up: ~6 context switches
  per send against 2) cost the broker ~25 us of CPU per lone send, and with four producers
  (sync x4, quiet machine, alternated) the loop's own syncs gave 11.8-12.9k sends/s against
  8.9-9.4k through the thread. With concurrent producers (the last sync answered several) and a
  delay_us, the loop's sync waits up to that delay for as many sends as the last one answered.
- A slow disk goes to a native thread that never takes the GIL (rmq_syncer) and signals its
  completion through an eventfd the loop watches, so that the loop never stalls long on one;
  so does a sync while other work waits on the loop (keep_loop_free: a held pull the send
  woke; blocked behind the sync, its answer took ~0.6 ms longer). While the thread syncs, the
  loop appends the next sends; the next sync covers them all.

Puts in flight (put_async) cue it, from any thread, as they cue the SyncFlusher it replaces,
so a put nobody waits for is made durable soon too; ``when_durable`` and ``future`` are for the
loop's thread only. ``when_durable`` calls back at the completion itself, with no loop
iteration in between (a sync send's answer is written as soon as the disk has it).
Blocking puts still lead their own group commits, and both advance the same durable offset.
A future not covered within the store's sync_flush_timeout resolves False (FLUSH_DISK_TIMEOUT);
after a failed fdatasync every future resolves False, and no sync is tried again (the store
stops taking writes: sync_failure.py).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import os
import threading
import time
from collections.abc import Callable

from . import _native, sync_journal
from .flush import GroupCommit
from .segment import MappedFile
from .segment_queue import MappedFileQueue

log = logging.getLogger(__name__)

INLINE_BELOW_S = 0.002  # the longest sync after which the loop may block on the next one
# Sends per sync up to which the next records are pwritten, not copied into the mapping: each
# sync writes back and write-protects the page being filled, so the first record after it
# takes a fault there, and the sync's write-back costs more (benches/sync_redirty.c, CPU per
# 300-byte record, append + sync: 32.6 us through the mapping against 27.2 pwritten at one
# record per sync, 17.5 / 16.4 at two, 10.3 / 9.7 at four, 5.4 / 5.4 at eight).
PWRITE_UP_TO = 4
# Zeros written ahead of the writer while syncs answer few sends (see _synced), this many
# bytes at a time, once it is within half of it of the last zeros: a posix_fallocate'd block
# is "unwritten" until its first write-back, and the sync that converts it commits the
# journal too (a lone send that began a new page waited ~210 us for its fdatasync, the
# others ~100; one page in 16 at 262-byte records).
ZEROS_AHEAD = 1 << 20


class AsyncGroupCommit:
    def __init__(self, loop: asyncio.AbstractEventLoop, files: MappedFileQueue,
                 commit: GroupCommit, last_ts: Callable[[], int],
                 on_synced: Callable[[int], None], timeout_s: float,
                 delay_us: int = 0,
                 pwrite_singles: Callable[[bool], None] | None = None,
                 put_lock: threading.Lock | None = None) -> None:
        """``on_synced(ts)``: the store's checkpoint learns that records stored up to ``ts``
        are durable. ``last_ts()``: the store time of the last record appended. ``delay_us``:
        how long a sync waits for more sends while producers are concurrent.
        ``pwrite_singles(few)``: told whether syncs answer few sends (PWRITE_UP_TO), so that
        the appender writes the next records with pwrite. ``put_lock``: the store's, held
        while zeros are written ahead of its writer (none: no zeros ahead)."""
        self._loop = loop
        self._files = files
        self._commit = commit
        self._last_ts = last_ts
        self._on_synced = on_synced
        self._timeout_s = timeout_s
        # (record offset, seq, deadline, callback(ok)): covered once durable > offset
        self._heap: list[tuple[int, int, float, Callable[[bool], object]]] = []
        self._seq = itertools.count()
        self._expiry: asyncio.TimerHandle | None = None
        self._job: tuple[MappedFile, int] | None = None  # (segment, store time) in flight
        self._delay_us = delay_us
        self._last_group = 0  # sends the last sync answered
        self._last_sync_s = math.inf  # how long it took (submit to completion)
        self._submitted = 0.0  # when the job in flight was submitted
        self._job_waits = False  # the job in flight waits for more sends (counted in C)
        self._wanted = False  # a sync was asked for while one ran
        self._soon: asyncio.Handle | None = None  # the loop's own sync, scheduled
        self._gathering = False  # that sync waits for more sends (concurrent producers)
        self._loop_busy = False  # keep_loop_free was called since the last sync began
        self._last_source = 0  # whose sends sync_now was last asked for (a connection's id)
        self._pwrite_singles = pwrite_singles
        self._few = False  # what pwrite_singles was last told
        self._put_lock = put_lock
        self._zeroing: asyncio.Handle | None = None  # zeros ahead, after this iteration
        self._efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        try:
            self._syncer: _native.Syncer | None = _native.Syncer(self._efd)
        except BaseException:
            os.close(self._efd)
            raise
        loop.add_reader(self._efd, self._on_done)
        self._loop_thread = threading.get_ident()
        commit.on_cue = self._on_cue  # type: ignore[method-assign]

    def when_durable(self, offset: int, callback: Callable[[bool], object]) -> None:
        """``callback(True)`` once the record at commit-log ``offset`` is durable (at once if
        it is), ``callback(False)`` past the timeout, at close or after a failed sync."""
        if self._commit.flushed > offset or self._syncer is None \
                or self._commit.failed_at is not None:  # durable, closed, or never
            callback(self._commit.flushed > offset)
            return
        heapq.heappush(self._heap, (offset, next(self._seq),
                                    self._loop.time() + self._timeout_s, callback))
        if self._expiry is None:
            self._expiry = self._loop.call_later(self._timeout_s, self._expire)
        if self._job_waits:
            self._syncer.waiting_one_more()  # may be the one the delayed sync waits for
        self.flush_soon()

    def future(self, offset: int) -> asyncio.Future[bool]:
        """when_durable as a future: True once durable, False past the timeout."""
        fut = self._loop.create_future()
        self.when_durable(offset, lambda ok: fut.done() or fut.set_result(ok))
        return fut

    def flush_soon(self) -> None:
        """Make everything appended so far durable, without waiting (WAIT=false sends)."""
        if self._commit.failed_at is not None:
            return
        if self._job is not None:
            self._wanted = True
        elif self._soon is not None:  # the loop's own sync, due soon, covers it
            if self._gathering and len(self._heap) >= self._last_group:
                self._soon.cancel()  # as many sends as the last sync answered: no more wait
                self._gathering = False
                self._soon = self._loop.call_soon(self._sync_here)
        elif self._last_sync_s >= INLINE_BELOW_S or self._loop_busy:
            self._submit()  # a slow disk or other work on the loop: the native thread
        elif self._last_group > 1 and self._delay_us and len(self._heap) < self._last_group:
            self._gathering = True  # concurrent producers: up to the delay for more sends
            self._soon = self._loop.call_later(self._delay_us / 1e6, self._sync_here)
        else:  # at the end of this iteration: no thread hand-off (see the module's docstring)
            self._soon = self._loop.call_soon(self._sync_here)

    def sync_now(self, offset: int, source: int,
                 answer: Callable[[], object] | None = None) -> bool:
        """A lone producer's read of sends (``source``: its connection's id) made durable
        in this call, as the C floor and Redis do, when the loop would sync it at the end of
        this iteration anyway: nothing else waits, no sync runs or gathers, the last was
        quick and answered one read, and the read before came from the same source (with
        concurrent producers the next read may be ready already: those share the loop's
        sync). True once the record at ``offset`` is durable, and ``answer()`` called: as
        soon as the fdatasync returns, before the sync's bookkeeping (the checkpoint's time,
        the durable offset), which the producer would otherwise wait for. False: not synced
        (wait with when_durable). Saves the lone send its callbacks, the heap entry and the
        scheduled sync."""
        lone, self._last_source = source == self._last_source, source
        if not lone or self._heap or self._job is not None \
                or self._gathering or self._loop_busy or self._syncer is None \
                or self._commit.failed_at is not None \
                or self._last_sync_s >= INLINE_BELOW_S or self._last_group > 1:
            return False
        if self._soon is not None:  # the sync the append cued for this iteration: made now
            self._soon.cancel()
        if self._sync_here(reads=1, offset=offset, answer=answer):
            return True
        # the sync failed (the store stops), or covered a segment before the record's
        if self._commit.flushed > offset:  # durable all the same (another path synced it)
            if answer is not None:
                answer()
            return True
        return False

    def keep_loop_free(self) -> None:
        """Other work is due on the loop (a held pull was woken): the next sync, if not begun,
        runs on the native thread rather than block the loop."""
        self._loop_busy = True

    def _sync_here(self, reads: int = 0, offset: int = -1,
                   answer: Callable[[], object] | None = None) -> bool:
        """The loop's own fdatasync, after the requests read this iteration were appended;
        ``reads``: those it answers beside the waiters (sync_now's), ``answer()`` called (and
        True returned) as soon as the record at ``offset`` is durable."""
        self._soon = None
        self._gathering = False
        if self._loop_busy:  # woken since it was scheduled: the thread, after all
            self._submit()
            return False
        self._wanted = False
        self._commit.async_pending = False  # the next put in flight cues again
        seg = self._files.oldest_unflushed()
        if seg is None or self._syncer is None:
            self._commit.advance(self._files.durable())
            self._resolve(self._commit.flushed)
            return False
        ts, upto = self._last_ts(), seg.wrote
        began = time.monotonic()
        self._loop_busy = False
        try:
            sync_journal.fdatasync_upto(seg.fd, seg.path, upto)  # the GIL released
        except OSError as exc:
            self._failed(seg, exc)
            return False
        answered = False
        if answer is not None:  # the producer's answer first: the rest is bookkeeping
            seg.flushed = max(seg.flushed, upto)
            if self._files.durable() > offset:  # no segment before seg left unsynced
                answer()
                answered = True
        self._last_sync_s = time.monotonic() - began
        self._synced(seg, ts, upto, journaled=True, reads=reads)
        if self._heap or self._wanted:
            self.flush_soon()
        return answered

    def _on_cue(self) -> None:
        if threading.get_ident() == self._loop_thread:
            self.flush_soon()
        elif self._syncer is not None:
            self._loop.call_soon_threadsafe(self.flush_soon)

    def close(self) -> None:
        """Stop the native thread (after its sync) and fail every future still waiting."""
        if self._syncer is None:
            return
        self._syncer.close()
        self._syncer = None
        del self._commit.on_cue  # cues go back to the (stopped) SyncFlusher's event
        if threading.get_ident() != self._loop_thread:
            # From another thread (a store closed off the loop): the loop's reader and the
            # futures are the loop's to touch, so only the native thread stops here.
            log.debug("asyncio group commit closed off its loop; its eventfd stays open")
            return
        self._loop.remove_reader(self._efd)
        os.close(self._efd)
        for handle in (self._expiry, self._soon, self._zeroing):
            if handle is not None:
                handle.cancel()
        self._expiry = self._soon = self._zeroing = None
        left, self._heap = self._heap, []
        for *_, callback in left:
            _call(callback, False)

    # -- internals ----------------------------------------------------------------------
    def _submit(self) -> None:
        self._wanted = False
        self._loop_busy = False
        self._commit.async_pending = False  # the next put in flight cues again
        seg = self._files.oldest_unflushed()
        if seg is None or self._syncer is None:  # durable already (another path synced it)
            self._commit.advance(self._files.durable())
            self._resolve(self._commit.flushed)
            return
        # Concurrent producers (the last sync answered several sends): wait up to the delay
        # for as many sends as it answered. A lone producer is synced at once.
        want = self._last_group if self._last_group > 1 and self._delay_us else 0
        waiting = len(self._heap)
        # Timed from before the submit: the thread may finish its sync before this one runs
        # again, and a sync timed from after a preemption here looked quick (the next went to
        # the loop, which must not block on a slow disk).
        submitted = time.monotonic()
        if not self._syncer.submit(seg.fd, seg.cell, self._delay_us if want else 0, want,
                                   waiting):  # cannot be refused: one job at a time
            self._wanted = True
            return
        self._job = (seg, self._last_ts())  # records stored up to then are in the job
        self._submitted = submitted
        self._job_waits = want > waiting

    def _on_done(self) -> None:
        try:
            os.eventfd_read(self._efd)
        except BlockingIOError:
            return
        if self._job is None or self._syncer is None:
            return
        seg, ts = self._job
        self._job = None
        self._job_waits = False
        upto, err = self._syncer.done()
        self._last_sync_s = time.monotonic() - self._submitted
        if err:
            self._failed(seg, OSError(err, os.strerror(err)))
            return
        self._synced(seg, ts, upto)
        if self._heap or self._wanted:
            self.flush_soon()

    def _failed(self, seg: MappedFile, exc: OSError) -> None:
        """A sync of seg failed: the store stops (FlushCue.fail, sync_failure.py), and every
        waiter is answered now, as none will be durable."""
        log.error("sync flush of %s failed: %s", seg.path, exc)
        self._commit.fail(exc)
        left, self._heap = self._heap, []
        for *_, callback in left:
            _call(callback, False)

    def _synced(self, seg: MappedFile, ts: int, upto: int, journaled: bool = False,
                reads: int = 0) -> None:
        """seg is durable up to upto, the records stored up to ts with it: answer their sends."""
        if sync_journal.ON and not journaled:  # before any send it covers is answered
            sync_journal.synced_upto(seg.path, upto)
        seg.flushed = max(seg.flushed, upto)
        self._on_synced(ts)
        self._commit.advance(self._files.durable())
        waiting = len(self._heap)
        self._resolve(self._commit.flushed)
        self._last_group = waiting - len(self._heap) + reads
        if self._few != (0 < self._last_group <= PWRITE_UP_TO):
            self._tell_few()
        if self._few and seg.zeroed < upto + ZEROS_AHEAD // 2 and self._zeroing is None \
                and self._put_lock is not None:  # after the answers, not before them
            self._zeroing = self._loop.call_soon(self._write_zeros, seg)

    def _write_zeros(self, seg: MappedFile) -> None:
        """Zeros ahead of the writer in seg (see ZEROS_AHEAD), unless a put holds the lock:
        then after a later sync."""
        self._zeroing = None
        lock = self._put_lock
        if self._syncer is None or lock is None or not lock.acquire(blocking=False):
            return
        try:
            seg.write_zeros_ahead(ZEROS_AHEAD)
        finally:
            lock.release()

    def _tell_few(self) -> None:
        self._few = not self._few
        if self._pwrite_singles is not None:
            self._pwrite_singles(self._few)

    def _resolve(self, durable: int) -> None:
        heap = self._heap
        while heap and heap[0][0] < durable:
            _call(heapq.heappop(heap)[3], True)

    def _expire(self) -> None:
        now = self._loop.time()
        heap = self._heap
        while heap and heap[0][2] <= now:
            _call(heapq.heappop(heap)[3], False)
        self._expiry = None
        if heap:
            self._expiry = self._loop.call_later(max(0.0, heap[0][2] - now), self._expire)


def _call(callback: Callable[[bool], object], ok: bool) -> None:
    try:
        callback(ok)
    except Exception:  # one waiter's failure must not strand the others
        log.exception("durability callback failed")
