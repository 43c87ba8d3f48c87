"""The consensus store under the controller, behind a small interface: keys with revisions,
compare-and-set on the revision read, and leases (keys that vanish when their lease is not
kept alive). etcd_store.py is the real one (etcd 3.4 through aetcd); MemoryMetaStore is the
same contract in one process, for tests.

Every controller decision is read -> pure function -> cas(key, revision read, new value): a
controller that read a stale revision is told so (False) and never overwrites a newer
decision. No lock is ever used as a mutex (Jepsen found etcd's locks unsafe; its KV
operations strict serializable).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)


class MetaStoreUnavailable(ConnectionError):
    """The store cannot be reached (no endpoint answered within the timeout)."""


class LeaseExpired(Exception):
    """keep_alive of a lease the store no longer has."""


def asked_to_stop() -> bool:
    """Whether a CancelledError caught in the running task is its own cancellation, rather
    than a call it awaited ended under it (gRPC ends the calls on a closed channel so)."""
    task = asyncio.current_task()
    return task is None or task.cancelling() > 0


async def outlive(step: Callable[[], Awaitable[object]], what: str) -> bool:
    """One step of a loop that must outlive any failure (the campaign, the scan, the cache
    load): whether it succeeded. A store out of reach is logged, anything else with its
    traceback, a call ended under it (another call's failure closed the shared client) with a
    warning; only the task's own cancellation goes through."""
    try:
        await step()
        return True
    except MetaStoreUnavailable as exc:
        log.info("%s: %s", what, exc)
    except Exception:
        log.exception("%s: unexpected failure", what)
    except asyncio.CancelledError:
        if asked_to_stop():
            raise
        log.warning("%s: a call was cancelled under it", what)
    return False


@dataclass(frozen=True, slots=True)
class Versioned:
    value: bytes
    revision: int  # the key's modification revision (> 0)


class MetaStore(Protocol):
    async def get(self, key: str) -> Versioned | None: ...

    async def get_prefix(self, prefix: str) -> dict[str, Versioned]: ...

    async def cas(self, key: str, revision: int, value: bytes | None,
                  lease: int | None = None) -> bool:
        """Write ``value`` (None: delete) iff the key's revision is ``revision`` (0: the key
        must not exist); with ``lease``, the key goes when the lease does. False when the
        revision moved."""
        ...

    async def grant_lease(self, ttl_s: float) -> tuple[int, float]:
        """A new lease: (id, its TTL in seconds, which the store may round up)."""
        ...

    async def keep_alive(self, lease: int) -> None:
        """Renew a lease for its TTL; LeaseExpired when it is gone."""
        ...

    async def revoke(self, lease: int) -> None: ...

    async def close(self) -> None: ...


class MemoryMetaStore:
    """MetaStore in memory: one revision counter, leases timed on ``clock``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 min_ttl_s: float = 0.0) -> None:
        self._clock = clock
        self._min_ttl_s = min_ttl_s
        self._revision = 0
        self._data: dict[str, tuple[bytes, int, int | None]] = {}  # key -> value, rev, lease
        self._leases: dict[int, tuple[float, float]] = {}  # id -> (ttl, expires at)
        self._next_lease = 1
        self.available = True  # False: every call raises MetaStoreUnavailable (a partition)

    async def get(self, key: str) -> Versioned | None:
        self._tick()
        found = self._data.get(key)
        return None if found is None else Versioned(found[0], found[1])

    async def get_prefix(self, prefix: str) -> dict[str, Versioned]:
        self._tick()
        return {k: Versioned(v, r) for k, (v, r, _) in sorted(self._data.items())
                if k.startswith(prefix)}

    async def cas(self, key: str, revision: int, value: bytes | None,
                  lease: int | None = None) -> bool:
        self._tick()
        found = self._data.get(key)
        if (found[1] if found else 0) != revision:
            return False
        if lease is not None and lease not in self._leases:
            raise LeaseExpired(f"lease {lease:x} expired")
        self._revision += 1
        if value is None:
            self._data.pop(key, None)
        else:
            self._data[key] = (value, self._revision, lease)
        return True

    async def grant_lease(self, ttl_s: float) -> tuple[int, float]:
        self._tick()
        ttl = max(ttl_s, self._min_ttl_s)
        lease = self._next_lease
        self._next_lease += 1
        self._leases[lease] = (ttl, self._clock() + ttl)
        return lease, ttl

    async def keep_alive(self, lease: int) -> None:
        self._tick()
        found = self._leases.get(lease)
        if found is None:
            raise LeaseExpired(f"lease {lease:x} expired")
        self._leases[lease] = (found[0], self._clock() + found[0])

    async def revoke(self, lease: int) -> None:
        self._tick()
        self._expire(lease)

    async def close(self) -> None:
        pass

    def _tick(self) -> None:
        if not self.available:
            raise MetaStoreUnavailable("the store is unreachable")
        now = self._clock()
        for lease, (_, expires) in list(self._leases.items()):
            if expires <= now:
                self._expire(lease)

    def _expire(self, lease: int) -> None:
        self._leases.pop(lease, None)
        for key in [k for k, (_, _, owner) in self._data.items() if owner == lease]:
            self._revision += 1
            del self._data[key]
