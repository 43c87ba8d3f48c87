"""Who has a store open, and who runs its background services, told by flock(2) locks: the
kernel drops a dead process's locks, SIGKILL included, so no death leaves them held.

- `lock` (RocketMQ's file): a store opened by one process (shared=False) holds it exclusively;
  every process of a shared store holds it shared.
- `shared/gate`: held exclusively while a process opens or closes a shared store, so that
  "am I the first opener" and "am I the last closer" each have one answer. The first opener
  recovers the store and lays out the control file; the last closer closes it cleanly.
- `shared/leader-<service>`: held exclusively by the process that runs that background service
  ("store": flushing, retention, consumer-offset persistence; "delay-levels"; "timer"); another
  process takes it over at its next try after the holder closes or dies.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

from ..errors import StoreLockedError
from ..filenames import leader_file, lock_file, shared_dir

log = logging.getLogger(__name__)


def _open(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)


class Membership:
    """One process's membership of a shared store: join() at open, leave() at close."""

    def __init__(self, root: Path) -> None:
        self.root = root
        shared_dir(root).mkdir(parents=True, exist_ok=True)
        self._gate = _open(shared_dir(root) / "gate")
        self._lock = -1
        self._leaders: dict[str, int] = {}  # service -> the fd holding its leader file

    def join(self) -> bool:
        """Take a shared hold of the store; True when this process is its first opener (then
        the gate stays held until opened() so that nobody joins a store being recovered)."""
        fcntl.flock(self._gate, fcntl.LOCK_EX)
        try:
            self._lock = _open(lock_file(self.root))
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                pass
            try:
                fcntl.flock(self._lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StoreLockedError(f"{self.root} is open in another process with "
                                       f"shared=False") from None
        except BaseException:
            self._close_lock()
            fcntl.flock(self._gate, fcntl.LOCK_UN)
            raise
        fcntl.flock(self._gate, fcntl.LOCK_UN)
        return False

    def opened(self) -> None:
        """The first opener is done recovering: hold the store shared, let others in."""
        try:
            fcntl.flock(self._lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:  # pragma: no cover - a shared=False opener took it between
            self._close_lock()
            raise StoreLockedError(f"{self.root} was opened with shared=False meanwhile") \
                from None
        finally:
            fcntl.flock(self._gate, fcntl.LOCK_UN)

    def abandon(self) -> None:
        """The first open failed: let the next opener try."""
        self._close_lock()
        fcntl.flock(self._gate, fcntl.LOCK_UN)
        os.close(self._gate)

    def leave_begin(self) -> bool:
        """Closing: take the gate; True when this process is the last one holding the store
        (it then closes it cleanly before leave_end())."""
        fcntl.flock(self._gate, fcntl.LOCK_EX)
        try:
            # A failed upgrade can drop the shared hold (flock converts by unlock + lock):
            # harmless, since this process is leaving anyway.
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def leave_end(self) -> None:
        self.resign()
        self._close_lock()
        fcntl.flock(self._gate, fcntl.LOCK_UN)
        os.close(self._gate)

    # -- leadership of the background services -------------------------------------------
    def lead(self, service: str) -> bool:
        """Whether this process runs ``service``: it holds its leader file, or takes it now
        because nobody does (its holder closed or died)."""
        if service in self._leaders:
            return True
        fd = _open(leader_file(self.root, service))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._leaders[service] = fd
        log.info("process %d now runs %s of %s", os.getpid(), service, self.root)
        return True

    def leading(self, service: str) -> bool:
        """Whether this process runs ``service`` (without trying to take it)."""
        return service in self._leaders

    def resign(self, service: str | None = None) -> None:
        """Stop running ``service`` (None: every one)."""
        for name in [service] if service is not None else list(self._leaders):
            fd = self._leaders.pop(name, -1)
            if fd >= 0:
                os.close(fd)

    def _close_lock(self) -> None:
        if self._lock >= 0:
            os.close(self._lock)
            self._lock = -1
