"""SYNC_MASTER's wait for the slaves (GroupTransferService of rocketmq-all-4.9.7): a send is
answered once a slave holds it, or FLUSH_SLAVE_TIMEOUT after slaveTimeout.

Every slave's report moves one offset, the furthest any slave acknowledged (push2SlaveMaxOffset:
one slave holding a message is enough). A waiter for the bytes below ``end`` is resolved as soon
as that offset reaches it; many sends share each report, as group commit shares each
fdatasync. Runs on its event loop's thread only.

The waiters are kept in the order of their ends: a broker's sends wait for the log's end as
each is stored, which only grows, so a wait joins at the back and a report takes from the
front, in constant time; a wait for an earlier end (an embedded caller's) is inserted in
place.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Callback = Callable[[Any], object]  # given the wait's ok or failed value


class GroupTransfer:
    def __init__(self, loop: asyncio.AbstractEventLoop, timeout_s: float) -> None:
        self._loop = loop
        self._timeout_s = timeout_s
        self.acked = 0  # the furthest offset a slave holds (push2SlaveMaxOffset)
        # (end offset, deadline, callback, its ok value, its failed value) by end: resolved
        # once acked >= end
        self._waiters: deque[tuple[int, float, Callback, object, object]] = deque()
        self._expiry: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    @property
    def first_waiting(self) -> int | None:
        """The smallest end a waiter waits for (None: none waits)."""
        return self._waiters[0][0] if self._waiters else None

    def when_replicated(self, end: int, callback: Callback, ok: object = True,
                        failed: object = False) -> bool:
        """callback(ok) once a slave holds every byte below ``end``, callback(failed) after
        the timeout (or at close): a caller's own values (its statuses), so that no wrapper
        is called per send. True when this wait is now the first (links are armed for it)."""
        if self.acked >= end or self._closed:
            callback(ok if self.acked >= end else failed)
            return False
        waiter = (end, self._loop.time() + self._timeout_s, callback, ok, failed)
        waiters = self._waiters
        if not waiters or waiters[-1][0] <= end:
            waiters.append(waiter)
        else:
            waiters.insert(bisect.bisect_right(waiters, end, key=_end), waiter)
        if self._expiry is None:
            self._expiry = self._loop.call_later(self._timeout_s, self._expire)
        return waiters[0] is waiter

    def on_ack(self, offset: int) -> None:
        """A slave reported holding everything below ``offset`` (notifyTransferSome)."""
        if offset <= self.acked:
            return
        self.acked = offset
        waiters = self._waiters
        while waiters and waiters[0][0] <= offset:
            _end_, _deadline, callback, ok, _failed = waiters.popleft()
            try:  # inline, not _call: once per send
                callback(ok)
            except Exception:  # one waiter's failure must not strand the others
                log.exception("replication callback failed")

    def close(self) -> None:
        """Fail every waiter; later waits fail at once."""
        self._closed = True
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        left, self._waiters = self._waiters, deque()
        for *_, callback, _ok, failed in left:
            _call(callback, failed)

    def _expire(self) -> None:
        now = self._loop.time()
        expired = [e for e in self._waiters if e[1] <= now]
        if expired:
            self._waiters = deque(e for e in self._waiters if e[1] > now)
            for *_, callback, _ok, failed in expired:
                _call(callback, failed)
        self._expiry = None
        if self._waiters:
            self._expiry = self._loop.call_later(min(e[1] for e in self._waiters) - now,
                                                 self._expire)


def _end(waiter: tuple[int, float, Callback, object, object]) -> int:
    return waiter[0]


def _call(callback: Callback, value: object) -> None:
    try:
        callback(value)
    except Exception:  # one waiter's failure must not strand the others
        log.exception("replication callback failed")
