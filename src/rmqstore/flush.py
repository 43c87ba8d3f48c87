"""When appended bytes become durable: group commit for sync flush, a timer for async flush.

GroupCommit (SYNC_FLUSH, RocketMQ's GroupCommitService without its 10 ms batching sleep): a
writer that has appended up to offset X calls wait(X). The first waiter to find no fdatasync
running becomes the leader: it syncs everything appended so far, GIL released, while later
writers queue behind it; one fdatasync then serves every writer that appended before it began.

flush_queue_files (FlushConsumeQueueService): the consume queues' files made durable.

Housekeeper (FlushRealTimeService + FlushConsumeQueueService + the offset and retention timers):
one background thread that flushes the CommitLog every flush_interval_ms when at least
flush_least_pages pages are dirty (or every flush_thorough_interval_ms regardless), flushes the
consume queues, index and checkpoint, persists consumer offsets, and runs retention.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from . import sync_journal

log = logging.getLogger(__name__)

PAGE = 4096
# From this many consume-queue files to sync, one syncfs of the store's file system replaces
# their fdatasyncs (each of which waits for the disk: 0.3 ms here, 3 s for 10,000 queues).
SYNCFS_FROM_FILES = 64


class FlushCue:
    """How puts in flight (put_async) that nobody waits for ask the SyncFlusher for a sync;
    shared by the group commits of one process and of several (shared/commit.py)."""

    def __init__(self) -> None:
        self.async_pending = False
        self.cued = threading.Event()
        self.syncs = 0  # group commits this process's waiters ran
        # The durable offset when a sync of the commit log failed (sync_failure.py): nothing
        # past it is reported durable again; on_fail(offset) is told once.
        self.failed_at: int | None = None
        self.on_fail: Callable[[int], object] | None = None

    @property
    def flushed(self) -> int:
        raise NotImplementedError

    def fail(self, exc: BaseException, durable: int | None = None) -> None:
        """A sync of the commit log failed with exc: stop here (see sync_failure.py). durable:
        where the log was durable, when syncs this cue did not run made it so (async flush's)."""
        if self._stop(exc, durable):
            self._told()

    def _stop(self, exc: BaseException, durable: int | None) -> bool:
        """failed_at set; True the first time."""
        if self.failed_at is not None:
            return False
        self.failed_at = self.flushed if durable is None else max(self.flushed, durable)
        log.critical("a sync of the commit log failed (%s): from offset %d on nothing is "
                     "acknowledged as durable and writes are refused until the store is "
                     "reopened", exc, self.failed_at)
        return True

    def _told(self) -> None:
        if self.on_fail is not None:
            try:
                self.on_fail(self.failed_at)
            except Exception:
                log.exception("stopping writes after a failed sync failed")

    def cue(self) -> None:
        """A put in flight wants to be made durable (put_async). The event is set only when
        nothing was pending: one wake-up of the flusher per group commit, not per put."""
        if not self.async_pending:
            self.async_pending = True
            self.on_cue()

    def on_cue(self) -> None:
        """What a cue does: wake the SyncFlusher (an asyncio group commit replaces this)."""
        self.cued.set()


class GroupCommit(FlushCue):
    def __init__(self, flush_all: Callable[[], int], flushed: int, timeout_s: float) -> None:
        """flush_all() syncs everything appended so far and returns the durable offset."""
        super().__init__()
        self._flush_all = flush_all
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self._sleepers = 0  # threads in wait() asleep on _cv: advance() notifies only them
        self._flushed = flushed
        self._leader = False
        self._timeout_s = timeout_s

    @property
    def flushed(self) -> int:
        return self._flushed

    def fail(self, exc: BaseException, durable: int | None = None) -> None:
        with self._cv:
            first = self._stop(exc, durable)
            self._cv.notify_all()  # their waits end now: False
        if first:
            self._told()

    def advance(self, durable: int) -> None:
        """Record that [0, durable) was made durable elsewhere (an asyncio group commit)."""
        with self._lock:  # not the Condition's own methods: its Python calls cost a sync
            # send ~2 us when, as mostly, no thread waits
            if durable <= self._flushed or self.failed_at is not None:
                return
            self._flushed = durable
            if self._sleepers:
                self._cv.notify_all()

    def truncated(self, offset: int) -> None:
        """The log was cut at ``offset``: what lies past it is no longer durable."""
        with self._cv:
            self._flushed = min(self._flushed, offset)

    def wait(self, offset: int) -> bool:
        """Block until [0, offset) is durable. False on timeout (FLUSH_DISK_TIMEOUT)."""
        deadline = None
        with self._cv:
            while self._flushed < offset:
                if self.failed_at is not None:
                    return False
                if not self._leader:
                    self._leader = True
                    break
                if deadline is None:
                    deadline = time.monotonic() + self._timeout_s
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._sleepers += 1  # under the lock, as advance() reads it
                try:
                    self._cv.wait(left)
                finally:
                    self._sleepers -= 1
            else:
                return True
        durable = -1
        self.syncs += 1  # under the leader flag: one thread at a time
        try:
            durable = self._flush_all()
        except OSError as exc:
            self.fail(exc)
        finally:
            with self._cv:
                if self.failed_at is None:
                    self._flushed = max(self._flushed, durable)
                self._leader = False
                self._cv.notify_all()
        return durable >= offset and self.failed_at is None or self.wait(offset)


class SyncFlusher(threading.Thread):
    """Sync flush's background leader for puts in flight (put_async): cued by them, it runs
    group commits until none is pending, so they complete without anyone blocking in wait().
    It sleeps on an event between streams: a polling thread takes the GIL from the writer's
    thread at every wake-up. Blocking puts lead their own group commit.

    Once cued, it first lets the stream of puts pause for `quiet_s` (at most 10 x quiet_s in
    all): each sync it runs takes the GIL from the writer several times, and a sync started
    mid-stream covers only part of it. Measured on windows of 1024 put_async calls then
    wait(): 9-11 syncs per window and 317-377k puts/s without the pause, 1.5 and 464-494k/s
    with 200 us. A wait() does not wait for the pause: it leads its own sync."""

    IDLE_S = 1.0  # an idle check of the stop flag; puts wake it through the cue
    RETRY_S = 0.05  # after a failed flush (an I/O error), before the next attempt

    def __init__(self, commit: GroupCommit, appended: Callable[[], int],
                 quiet_s: float = 0.0) -> None:
        super().__init__(name="rmq-sync-flusher", daemon=True)
        self._commit = commit
        self._appended = appended
        self._quiet_s = quiet_s
        self._stopping = False

    def run(self) -> None:
        commit = self._commit
        while not self._stopping:
            commit.cued.wait(self.IDLE_S)
            commit.cued.clear()
            if not commit.async_pending:
                continue
            commit.async_pending = False  # a later put_async cues again
            target = self._appended()  # read after the flag: covers every put that set it
            if self._quiet_s:
                target = self._after_pause(target)
            if target <= commit.flushed:
                continue
            try:
                commit.wait(target)
            except Exception:  # an I/O error: waiters time out; try again on the next cue
                log.exception("sync flush failed")
                time.sleep(self.RETRY_S)

    def _after_pause(self, target: int) -> int:
        """Sleep until no put landed for quiet_s (or 10 x quiet_s went by); the log's end."""
        give_up = time.monotonic() + 10 * self._quiet_s
        while not self._stopping:
            time.sleep(self._quiet_s)
            now = self._appended()
            if now == target or time.monotonic() >= give_up:
                return now
            target = now
        return target

    def stop(self) -> None:
        self._stopping = True
        self._commit.cued.set()
        if self.is_alive():
            self.join()


class Housekeeper(threading.Thread):
    """Runs `tasks` (name, interval_s, callable) on one daemon thread until stop()."""

    def __init__(self, tasks: list[tuple[str, float, Callable[[], None]]]) -> None:
        super().__init__(name="rmq-housekeeper", daemon=True)
        self._tasks = tasks
        self._stopping = threading.Event()

    def run(self) -> None:
        due = {name: time.monotonic() + interval for name, interval, _ in self._tasks}
        while not self._stopping.is_set():
            now = time.monotonic()
            for name, interval, task in self._tasks:
                if now >= due[name]:
                    due[name] = now + interval
                    try:
                        task()
                    except Exception:  # a failing task must not kill the others
                        log.exception("background task %s failed", name)
            wake = min(due.values()) - time.monotonic()
            self._stopping.wait(max(0.001, wake))

    def stop(self) -> None:
        self._stopping.set()
        if self.is_alive():
            self.join()


def dirty_pages(wrote: int, flushed: int) -> int:
    return wrote // PAGE - flushed // PAGE


def flush_queue_files(root: Path, queues: Iterable, least_pages: int) -> None:
    """Sync the queues' files holding units not yet durable that have least_pages dirty pages
    or more, or are full (FlushConsumeQueueService.doFlush's flushConsumeQueueLeastPages; 0:
    every one), each queue's oldest first (recovery takes a queue's units as synced in order).
    A page synced every second made the next unit written to it fault to mark it dirty again:
    a fault per put with 10,000 queues written round robin."""
    files = [f for cq in queues for f in cq.unflushed()
             if not least_pages or f.full or dirty_pages(f.wrote, f.flushed) >= least_pages]
    if len(files) >= SYNCFS_FROM_FILES:
        lengths = [(f, f.wrote) for f in files]
        sync_journal.syncfs_upto(root, [(f.path, n) for f, n in lengths])
        for f, n in lengths:
            f.flushed = max(f.flushed, n)
    else:
        for f in files:
            f.flush()
