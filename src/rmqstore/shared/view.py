"""One process's view of a shared store, kept up with what the others publish.

Every process maps the same files; what it must learn from the others is how far they wrote.
The control file says it (control.py): the commit log's published end, each queue's published
unit count. A process catches up by mapping the files up to there and moving its write
positions (cells) to there, never past: bytes past a published end may be a record in the
making, or the remains of a writer that died. It catches up

- for reading: whenever a read looks a queue up (SharedQueueTable.get) and finds the queue's
  published count past its own, then the commit log likewise;
- for writing: under the write mutex, when the native append answers RMQ_STALE (another
  process rolled the active file);
- for the index, retention and topics: when their generation word moved.

The write mutex (WriteLock) stands in for the store's put lock: a thread lock for this
process's threads, then the control file's robust mutex for the processes. When its holder
died, the next one repairs what the dead one may have left past the published ends (the rest
of the torn record's segment and the torn unit's file are zeroed, files it made past them are
deleted), then goes on: size-written-last made the torn record invisible, this makes it gone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from .. import _native, filenames
from ..commitlog import CommitLog
from ..consumequeue import UNIT, UNIT_SIZE, ConsumeQueue
from ..filenames import list_offset_files
from ..index import IndexFile, IndexService
from ..queue_table import ConsumeQueueTable
from ..segment import MappedFile
from . import control as c
from .control import Control

log = logging.getLogger(__name__)


class SharedView:
    """Catches this process's CommitLog, consume queues and index up with the control file.
    Structural changes (mapping files, re-pointing the native writers) happen under
    ``local``, the thread lock every write of this process holds too."""

    def __init__(self, ctl: Control, commitlog: CommitLog, queues: SharedQueueTable,
                 index: IndexService | None, retire: Callable[[MappedFile], None]) -> None:
        self.ctl = ctl
        self.commitlog = commitlog
        self.queues = queues
        self.index = index
        self.local = threading.Lock()
        self._retire = retire
        self._index_gen = ctl.u32_word(c.INDEX_GEN)
        self._retention_gen = ctl.u32_word(c.RETENTION_GEN)
        self._log_end_at = c.LOG_END // 8
        queues.view = self
        queues.use_lock(self.local)  # mapping queue files is this process's own business
        queues.clock.others_write = True  # units past this view's end may be another's
        commitlog.on_stale = self._on_stale
        commitlog.appender.share(ctl.address(c.LOG_END))

    def _on_stale(self, cq: ConsumeQueue) -> None:
        """The native append answered RMQ_STALE (under the write mutex): catch up the long
        way, which re-attaches the native writers. The quick way moves only Python's write
        position, and the writer said it cannot go there as it is: not on that file, or
        another process wrote past its reserved end (then every retry was STALE again)."""
        self._follow_retention()
        self._catch_up_queue_files(cq, self.ctl.i64[cq.slot_word] * UNIT_SIZE)
        self._catch_up_log_files(self.ctl.i64[self._log_end_at])

    # -- the commit log ---------------------------------------------------------------------
    def catch_up_log(self) -> None:
        """Map the commit log up to its published end (any thread, no lock held)."""
        if self.ctl.i64[self._log_end_at] != self.commitlog.max_offset \
                or self.ctl.u32_word(c.RETENTION_GEN) != self._retention_gen:
            with self.local:
                self.catch_up_log_locked()

    def catch_up_log_locked(self) -> None:
        """catch_up_log for a caller holding ``local``."""
        self._follow_retention()
        end = self.ctl.i64[self._log_end_at]
        if _moved_within_last(self.commitlog.files.files, end, self.commitlog.segment_bytes):
            return  # the appender is on that file already; its own sync reads the end
        self._catch_up_log_files(end)

    def _catch_up_log_files(self, end: int) -> None:
        """Map the commit log's files up to end and attach the appender to the last."""
        files = self.commitlog.files
        size = self.commitlog.segment_bytes
        segs = list(files.files)
        next_start = segs[-1].start + size if segs else None
        if next_start is None or end > next_start:
            durable = self.ctl.word(c.DURABLE)
            low = next_start if next_start is not None else self.ctl.word(c.LOG_MIN)
            for start, path in list_offset_files(files.directory):
                if low <= start < end:
                    seg = MappedFile.open(path, start, size, files.advice)
                    seg.flushed = max(0, min(size, durable - start))
                    segs.append(seg)
        for seg in segs[:-1]:
            seg.wrote = size  # closed by a BLANK (or its last record) in another process
        if segs:
            segs[-1].wrote = max(0, min(size, end - segs[-1].start))
        if len(segs) != len(files.files):
            files.files = segs
        self.commitlog.attach_last()

    def _follow_retention(self) -> None:
        """When another process's retention deleted files: let go of them here too."""
        gen = self.ctl.u32_word(c.RETENTION_GEN)
        if gen == self._retention_gen:
            return
        self._retention_gen = gen
        files = self.commitlog.files
        low = self.ctl.word(c.LOG_MIN)
        keep = [s for s in files.files if s.start + files.file_size > low]
        for seg in files.files[:len(files.files) - len(keep)]:
            self._retire(seg)
        if len(keep) != len(files.files):
            files.files = keep
        for cq in self.queues:
            first = cq.files.files
            while len(first) > 1 and not first[0].path.exists():
                self._retire(first[0])
                first = first[1:]
            cq.files.files = first
            cq.correct_min_offset(low)
        if self.index is not None:
            with self.index._lock:
                while len(self.index.files) > 1 and not self.index.files[0].seg.path.exists():
                    self._retire(self.index.files.pop(0).seg)

    # -- consume queues ---------------------------------------------------------------------
    def catch_up_queue(self, cq: ConsumeQueue) -> None:
        """Map cq up to its published unit count, then the commit log (no lock held)."""
        if self.ctl.i64[cq.slot_word] * UNIT_SIZE != cq.files.max_offset:
            with self.local:
                self.catch_up_queue_locked(cq)
        self.catch_up_log()  # after the queue: its units point below the end read here

    def catch_up_queue_locked(self, cq: ConsumeQueue) -> None:
        end = self.ctl.i64[cq.slot_word] * UNIT_SIZE
        files = cq.files
        if _moved_within_last(files.files, end, files.file_size):
            last = files.files[-1]
            phys, size, _ = UNIT.unpack_from(last.mapped().view, last.wrote - UNIT_SIZE)
            cq.max_phys = phys + size  # the writer's own sync leaves it when wrote is there
            return
        self._catch_up_queue_files(cq, end)

    def _catch_up_queue_files(self, cq: ConsumeQueue, end: int) -> None:
        """Map cq's files up to byte end of its units and attach its writer to the last."""
        files = cq.files
        segs = list(files.files)
        next_start = segs[-1].start + files.file_size if segs else 0
        if end > next_start:
            for start, path in list_offset_files(files.directory):
                if next_start <= start < end:
                    seg = files.kind.open(path, start, files.file_size, files.advice)
                    seg.flushed = 0  # written by others: the leader's flush syncs it
                    segs.append(seg)
        for seg in segs[:-1]:
            seg.wrote = files.file_size
        if segs:
            segs[-1].wrote = max(0, min(files.file_size, end - segs[-1].start))
        if len(segs) != len(files.files):
            first_load = not files.files
            files.files = segs
            if first_load:
                cq.min_logic = segs[0].start if segs else 0
                cq.correct_min_offset(self.ctl.word(c.LOG_MIN))
        if segs and segs[-1].wrote >= UNIT_SIZE:
            phys, size, _ = UNIT.unpack_from(segs[-1].mapped().view, segs[-1].wrote - UNIT_SIZE)
            cq.max_phys = phys + size
        cq.attach_last()

    def bind(self, cq: ConsumeQueue, slot: int) -> None:
        """Give cq its slot: its native writer publishes there, reads catch up from there."""
        cq.slot_word = slot // 8
        cq.writer.share(self.ctl.address(slot))

    # -- the index --------------------------------------------------------------------------
    def catch_up_index(self) -> None:
        """Map index files another process added (called under the write mutex, and by
        queries)."""
        index = self.index
        gen = self.ctl.u32_word(c.INDEX_GEN)
        if index is None or gen == self._index_gen:
            return
        self._index_gen = gen
        with index._lock:
            known = {f.name for f in index.files}
            for path in sorted(p for p in index.directory.iterdir()
                               if filenames.is_index_name(p.name) and p.name not in known):
                seg = MappedFile.open(path, 0, index.file_size)
                index.files.append(IndexFile(seg, index.slots, index.entries))
            index.files.sort(key=lambda f: f.name)

    def index_added(self) -> None:
        """This process added an index file (under the write mutex): tell the others."""
        self.ctl.bump(c.INDEX_GEN)
        self._index_gen = self.ctl.u32_word(c.INDEX_GEN)

    # -- repair after a writer's death ---------------------------------------------------------
    def repair(self) -> None:
        """Under the write mutex, after its holder died: zero what it may have written past
        the published ends of the commit log and of the queue it was appending to."""
        end = self.ctl.word(c.LOG_END)
        writing = self.ctl.word(c.WRITING)
        log.warning("a process died while appending to %s; clearing past offset %d",
                    self.commitlog.files.directory.parent, end)
        self.catch_up_log_locked()
        log_files = self.commitlog.files
        _zero_past(log_files.directory, log_files.file_size, end, log_files.files,
                   log_files.kind, log_files.advice)
        if writing:
            slot = c.LOG_END + writing
            found = [(t, q) for t, q, at in self.ctl.queues() if at == slot]
            if found:
                cq = self.queues.for_write(*found[0])
                self.catch_up_queue_locked(cq)
                _zero_past(cq.files.directory, cq.files.file_size,
                           self.ctl.word(slot) * UNIT_SIZE, cq.files.files, cq.files.kind,
                           cq.files.advice)
        self.ctl.set_word(c.WRITING, 0)
        self.ctl.u32[c.WRITE_REPAIR // 4] = 0


def _moved_within_last(segs: list, end: int, file_size: int) -> bool:
    """The common catch-up, made the quick way: the published end moved forward inside the
    last mapped file (not to its end, where the writer detaches), so only its write position
    moves. The native writer is on that file already, or answers RMQ_STALE and is caught up
    the long way (append.c, shared_sync)."""
    if not segs:
        return False
    last = segs[-1]
    pos = end - last.start
    if not last.wrote <= pos < file_size or pos < UNIT_SIZE:
        return False
    last.wrote = pos
    return True


def _zero_past(directory: Path, file_size: int, end: int, mapped: list, kind,
               advice: str) -> None:
    """Zero [end, end of its file) and delete the files after it: nothing published lies
    there. ``mapped`` are this process's segments, which end at or before ``end``; ``kind``
    opens the others (MappedFile, or a queue's QueueFiles)."""
    by_start = {seg.start: seg for seg in mapped}
    for start, path in list_offset_files(directory):
        if start + file_size <= end:
            continue
        if start <= end:
            seg = by_start.get(start)
            if seg is None:
                seg = kind.open(path, start, file_size, advice)
                seg.zero_from(end - start)
                seg.close()
            else:
                seg.zero_from(end - start)
        else:
            path.unlink(missing_ok=True)


class SharedQueueTable(ConsumeQueueTable):
    """The consume queues of a shared store: a queue another process made is opened on first
    use, from its slot in the control file; a lookup catches the queue up first. Until the
    view is wired (the first opener's recovery), a plain ConsumeQueueTable."""

    REMEMBERS_ABSENT = False  # another process may make a queue found absent

    def __init__(self, root: Path, units_per_file: int, ctl: Control, first: bool,
                 mapped_files_max: int) -> None:
        """The first opener's recovery loads queues as a single process's would (under a lock
        of the table's own until the view's takes its place); a later opener loads none:
        they open on first use."""
        super().__init__(root, units_per_file, threading.Lock(), mapped_files_max, clean=True)
        self._ctl = ctl
        self._first = first
        self.view: SharedView | None = None

    def prepare(self, topic: str, queue_id: int) -> None:
        """Nothing ahead of the write mutex: another process may be making the same queue."""

    def publish_all(self) -> None:
        """The first opener, after recovery: a slot for every queue, with its unit count."""
        for cq in self.by_key.values():
            slot = self._ctl.find_queue(cq.topic, cq.queue_id, create=True)
            self._ctl.set_word(slot, cq.max_offset)
            self.view.bind(cq, slot)

    def get(self, topic: str, queue_id: int) -> ConsumeQueue | None:
        if self.view is None:
            return super().get(topic, queue_id)
        cq = self.by_key.get((topic, queue_id))
        if cq is None:
            slot = self._ctl.find_queue(topic, queue_id)
            if slot is None:
                return None
            with self.view.local:
                cq = self._open(topic, queue_id, slot)
        self.view.catch_up_queue(cq)
        return cq

    def for_write(self, topic: str, queue_id: int) -> ConsumeQueue:
        """Under the write mutex: the queue, with a slot (made if none)."""
        if self.view is None:
            return super().for_write(topic, queue_id)
        cq = self.by_key.get((topic, queue_id))
        if cq is None:
            slot = self._ctl.find_queue(topic, queue_id, create=True)
            cq = self._open(topic, queue_id, slot)
        return cq

    def open_all(self) -> None:
        """Every queue any process made (the leader flushes them all)."""
        for topic, queue_id, slot in self._ctl.queues():
            if (topic, queue_id) not in self.by_key:
                with self.view.local:
                    self._open(topic, queue_id, slot)

    def _open(self, topic: str, queue_id: int, slot: int) -> ConsumeQueue:
        """Open the queue (under ``local``); another thread may have done it first."""
        cq = self.by_key.get((topic, queue_id))
        if cq is not None:
            return cq
        cq = ConsumeQueue(filenames.consumequeue_dir(self._root, topic, queue_id), topic,
                          queue_id, self._units_per_file, self.clock)
        cq.files.directory.mkdir(parents=True, exist_ok=True)
        self.view.bind(cq, slot)
        self.view.catch_up_queue_locked(cq)
        self._publish(cq)
        return cq


class WriteLock:
    """The put lock of a shared store: this process's thread lock, then the control file's
    robust write mutex. Releasing it wakes the processes waiting for new messages."""

    def __init__(self, ctl: Control, view: SharedView) -> None:
        self._local = view.local
        self._view = view
        self._mutex = ctl.address(c.WRITE_MUTEX)
        self._died = _native.as_i32(ctl.address(c.WRITE_REPAIR))
        self._seq = ctl.address(c.APPEND_SEQ)
        self._waiters = ctl.address(c.WAITERS)
        self._sync_failed = _native.as_i64(ctl.address(c.SYNC_FAILED))
        self._lock = _native.mutex_lock_raw  # the hot path: no Python wrapper between
        self._release = _native.release_and_wake
        self._index_gen_at = c.INDEX_GEN // 4
        self._failed_at = c.SYNC_FAILED // 8
        self._u32 = ctl.u32
        self._i64 = ctl.i64
        # told the durable offset of another process's failed sync when the mutex is taken
        # after it (the store stops its writes then)
        self.on_sync_failed: Callable[[int], object] | None = None

    @property
    def native(self) -> tuple:
        """The mutex, its repair flag, the append sequence, its waiters and the sync_failed
        word, as the native locked put takes them (after the thread lock ``local``)."""
        return self._mutex, self._died, self._seq, self._waiters, self._sync_failed

    @property
    def local(self) -> threading.Lock:
        return self._local

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if not self._local.acquire(blocking):
            return False
        return self.lock_shared(blocking)

    def lock_shared(self, blocking: bool = True) -> bool:
        """The cross-process part of acquire(), for a caller holding ``local``."""
        rc = self._lock(self._mutex, self._died, -1 if blocking else 0)
        if (rc or self._u32[self._index_gen_at] != self._view._index_gen
                or self._i64[self._failed_at]):
            return self._after_lock(rc)
        return True

    def unlock_shared(self) -> None:
        self._release(self._mutex, self._seq, self._waiters)

    def _after_lock(self, rc: int) -> bool:
        """The uncommon cases: not locked, a writer died, another process added an index
        file, a sync failed (the caller checks whether it may write)."""
        try:
            if _native.mutex_failed(rc):
                self._local.release()
                return False
        except BaseException:
            self._local.release()
            raise
        try:
            if rc:
                self._view.repair()
            self._view.catch_up_index()
            failed = self._i64[self._failed_at]
            if failed and self.on_sync_failed is not None:
                self.on_sync_failed(failed - 1)
        except BaseException:
            self.release()
            raise
        return True

    def release(self) -> None:
        self._release(self._mutex, self._seq, self._waiters)
        self._local.release()

    def locked(self) -> bool:
        return self._local.locked()

    __enter__ = acquire

    def __exit__(self, *exc) -> None:
        self.release()
