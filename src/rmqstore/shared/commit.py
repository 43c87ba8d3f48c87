"""Sync flush across processes: the group commit of a shared store.

GroupCommit (flush.py) serves the threads of one process; here the waiters are in several.
The control file's durable word says how far the commit log is on disk, for everyone. A put
that must be durable past offset X checks it; if not there yet, it queues on the flush mutex
(robust: a flusher that dies hands it on). Whoever holds the mutex first checks durable again
(the previous holder's fdatasync may have covered X), else fdatasyncs everything published so
far, in any process, and moves durable. While one process syncs, the puts of all the others
queue on the mutex, and the next holder's single fdatasync covers them all: group commit
across processes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .. import _native
from ..flush import FlushCue
from . import control as c
from .control import Control


class SharedGroupCommit(FlushCue):
    """GroupCommit's interface (wait, flushed, cue, advance) over the control file."""

    def __init__(self, ctl: Control, flush_all: Callable[[], int], timeout_s: float) -> None:
        """flush_all() catches the commit log up, fdatasyncs it, returns the durable offset."""
        super().__init__()
        self._ctl = ctl
        self._flush_all = flush_all
        self._timeout_s = timeout_s
        self._at = c.DURABLE // 8
        self._mutex = ctl.address(c.FLUSH_MUTEX)

    @property
    def flushed(self) -> int:
        return self._ctl.i64[self._at]

    def advance(self, durable: int) -> None:
        """Record that [0, durable) is durable (under the flush mutex, or alone at open)."""
        if durable > self._ctl.i64[self._at]:
            self._ctl.i64[self._at] = durable
            self._ctl.bump(c.DURABLE_SEQ)

    def wait(self, offset: int) -> bool:
        """Block until [0, offset) is durable; False after the sync flush timeout."""
        words = self._ctl.i64
        if words[self._at] >= offset:
            return True
        deadline = time.monotonic() + self._timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if _native.mutex_lock(self._mutex, _native.NULL, int(left * 1e9)) is None:
                return words[self._at] >= offset
            try:
                if words[self._at] < offset:
                    self.advance(self._flush_all())
            finally:
                _native.mutex_unlock(self._mutex)
            if words[self._at] >= offset:
                return True
