"""How a send's answer waits for the disk, the slaves, or both (SendProcessor's and the native
path's, one rule)."""

from __future__ import annotations

from collections.abc import Callable

from ....message import PutStatus


class Outcome:
    """A send's answer waits for the disk, the slaves, or both: done(status) once each has
    spoken, with the replication's status if it is not PUT_OK, else the flush's."""

    __slots__ = ("_done", "_flush", "_left", "_replica")

    def __init__(self, waits: int, done: Callable[[PutStatus], object]) -> None:
        self._left = waits
        self._done = done
        self._flush = self._replica = PutStatus.PUT_OK

    def flushed(self, ok: bool) -> None:
        if not ok:
            self._flush = PutStatus.FLUSH_DISK_TIMEOUT
        self._one_more()

    def replicated(self, status: PutStatus) -> None:
        self._replica = status
        self._one_more()

    def _one_more(self) -> None:
        self._left -= 1
        if self._left == 0:
            ok = self._replica is PutStatus.PUT_OK
            self._done(self._flush if ok else self._replica)
