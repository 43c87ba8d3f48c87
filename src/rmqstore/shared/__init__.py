"""A store several processes open at once (StoreConfig.shared): what MessageStore wires in
place of its one-process parts.

    control.py     the control file: published ends, queue and offset slots, mutexes, futexes
    membership.py  first opener / last closer and the background services' leader (flock)
    view.py        catching a process's files up with the control file; the write mutex
    commit.py      sync flush across processes (group commit)
    metadata.py    topics.json and consumer offsets shared

The first opener recovers the store as a single process would, then lays the control file out
from what recovery found; a later opener maps the files up to the published ends without
recovering anything (a recovery would cut the records others are writing).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from .. import _native, filenames
from ..commitlog import CommitLog
from ..config import StoreConfig
from ..index import IndexService
from ..segment import MappedFile
from . import control as c
from .commit import SharedGroupCommit
from .control import Control
from .membership import Membership
from .metadata import SharedOffsets, SharedTopics
from .view import SharedQueueTable, SharedView, WriteLock

log = logging.getLogger(__name__)

__all__ = ["Sharing"]

STORE_SERVICE = "store"  # flushing, retention, offset persistence: one process at a time


class Sharing:
    """One process's part in a shared store, from join() to leave()."""

    def __init__(self, root: Path, config: StoreConfig) -> None:
        self.root = root
        self.membership = Membership(root)
        self.first = self.membership.join()
        try:
            path = filenames.control_file(root)
            self.ctl = Control.lay_out(path, config.shared_queues, config.shared_offsets) \
                if self.first else Control.attach(path)
        except BaseException:
            self.membership.abandon()
            raise
        self.queues = SharedQueueTable(root, config.consumequeue_units, self.ctl, self.first,
                                       config.mapped_files_budget)
        self.topics = SharedTopics(root, self.ctl, sync_each=config.flush == "sync")
        self.offsets = SharedOffsets(root, self.ctl)
        self.view: SharedView | None = None
        self.write_lock: WriteLock | None = None
        self._seq = self.ctl.address(c.APPEND_SEQ)
        self._waiters = self.ctl.address(c.WAITERS)

    def abandon(self) -> None:
        """Opening failed: give the store back."""
        self.ctl.close()
        if self.first:
            self.membership.abandon()
        else:
            self.membership.leave_begin()
            self.membership.leave_end()

    def wire(self, commitlog: CommitLog, index: IndexService | None,
             retire: Callable[[MappedFile], None]) -> None:
        """Catch this process's files up (a later opener) or publish what recovery found
        (the first), and make the write mutex."""
        self.view = view = SharedView(self.ctl, commitlog, self.queues, index, retire)
        if index is not None:
            index.on_file_added = view.index_added
        self.write_lock = WriteLock(self.ctl, view)
        if self.first:
            self.queues.load_all()  # recovery loads queues as it needs them: all get a slot
            ctl = self.ctl
            ctl.set_word(c.LOG_END, commitlog.max_offset)
            ctl.set_word(c.LOG_MIN, commitlog.min_offset)
            ctl.set_word(c.DURABLE, commitlog.max_offset)
            self.queues.publish_all()
            self.offsets.publish()
            commitlog.attach_last()
        else:
            with view.local:
                view.catch_up_log_locked()

    def opened(self) -> None:
        if self.first:
            self.membership.opened()

    def group_commit(self, flush_all: Callable[[], int], timeout_s: float, delay_us: int,
                     last_segment: Callable[[], MappedFile | None],
                     synced: Callable[[MappedFile, int, int], None]) -> SharedGroupCommit:
        """See SharedGroupCommit."""
        return SharedGroupCommit(self.ctl, flush_all, timeout_s, delay_us, last_segment,
                                 synced)

    # -- waiting for messages ---------------------------------------------------------------
    def wait_for_message(self, topic: str, queue_id: int, offset: int, timeout: float,
                         closed: Callable[[], bool]) -> bool:
        """Block until the queue holds a message at offset, or timeout seconds pass: a futex
        wait on the append sequence, which every release of the write mutex bumps. Woken, it
        reads the queue's published unit count, one word, and returns: the caller's read
        catches the files up (doing it here too cost a reader twice the Python per message)."""
        deadline = time.monotonic() + timeout
        words, seq_at = self.ctl.i64, c.APPEND_SEQ // 4
        slot = None
        while True:
            seen = self.ctl.u32[seq_at]  # before looking: an append after it wakes us
            if slot is None:  # until some process made the queue (no catch-up: only its slot)
                cq = self.queues.by_key.get((topic, queue_id)) or self.queues.get(topic,
                                                                                 queue_id)
                slot = cq.slot_word if cq is not None else None
            if slot is not None and words[slot] > offset:
                return True
            left = deadline - time.monotonic()
            if left <= 0 or closed():
                return False
            _native.wait_for_change(self._seq, self._waiters, seen, min(left, 1.0))

    def wake_waiters(self) -> None:
        """Closing: wake this process's waiters (and, harmlessly, the others')."""
        self.ctl.bump(c.APPEND_SEQ)
        _native.futex_wake(self._seq)

    # -- the background services --------------------------------------------------------------
    def leads(self, service: str) -> bool:
        """Whether this process runs ``service`` now (taking it over when nobody does)."""
        if self.membership.leading(service):
            return True
        if self.membership.lead(service):
            self.ctl.bump(c.LEADER_GEN)
            return True
        return False

    def led(self, task: Callable[[], None]) -> Callable[[], None]:
        """task, run only while this process leads the store's housekeeping ("store")."""
        def led() -> None:
            if self.leads(STORE_SERVICE):
                task()
        return led

    def resign(self, service: str) -> None:
        """This process stops running ``service``: the next to try takes it over."""
        self.membership.resign(service)

    def retention_done(self, commitlog: CommitLog) -> None:
        """This process's retention deleted files: tell the others."""
        self.ctl.set_word(c.LOG_MIN, commitlog.min_offset)
        self.ctl.bump(c.RETENTION_GEN)
        self.view._retention_gen = self.ctl.u32_word(c.RETENTION_GEN)

    @property
    def last_ts(self) -> int:
        """Store time of the last record any process published."""
        return self.ctl.word(c.LAST_TS)

    @property
    def log_end(self) -> int:
        return self.ctl.word(c.LOG_END)

    # -- closing --------------------------------------------------------------------------
    def leave_begin(self) -> bool:
        """True when this process is the last one: it closes the store cleanly."""
        return self.membership.leave_begin()

    def leave_end(self) -> None:
        self.ctl.close()
        self.membership.leave_end()
