"""Which controller is the active one: the one whose address is the value of
``<prefix>/active``, a key it created attached to an etcd lease it keeps alive (every
controller of a cluster runs this; RocketMQ's is the DLedger leader).

The key is only the election; fencing is elsewhere. A controller counts itself active until
the moment its lease could have expired by its own clock (the send time of its last answered
keep-alive plus the TTL): etcd can only expire it later (it times from receipt, and extends
leases across its own leader changes), and only then may another controller create the key.
So two controllers never both count themselves active at the same instant, and every write
they make is still a compare-and-set on the revision they read.

A controller whose keep-alives went unanswered past the TTL (etcd electing a leader, its local
member gone) stops counting itself active, but keeps its lease and tries again: if etcd still
has the lease, nobody else can have held the key meanwhile, and it is active again at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from .metastore import LeaseExpired, MetaStore, MetaStoreUnavailable, outlive

log = logging.getLogger(__name__)

TTL_S = 2.0  # etcd's smallest with its default election timeout (1 s) is 1.5, rounded to 2
POLL_S = 0.25  # a standby looks for a vacant key this often; the active renews this often


class Leadership:
    def __init__(self, store: MetaStore, key: str, ttl_s: float = TTL_S,
                 clock: Callable[[], float] = time.monotonic,
                 on_change: Callable[[bool], None] | None = None) -> None:
        """Set ``me`` (this controller's address) before run()."""
        self._store = store
        self._key = key
        self.me = ""
        self._ttl_s = ttl_s
        self._clock = clock
        self._on_change = on_change
        self._lease: int | None = None
        self._valid_until = 0.0
        self.active_since: float | None = None  # when this controller last became active
        self._leader: str | None = None  # the active controller's address, as last read

    @property
    def active(self) -> bool:
        return self.active_since is not None and self._clock() < self._valid_until

    @property
    def term_left_s(self) -> float:
        """How long this controller still counts itself active (0 when it is not)."""
        return max(0.0, self._valid_until - self._clock()) if self.active else 0.0

    @property
    def leader(self) -> str | None:
        """The active controller's address as last read; never this one's once its lease
        may have run out (the store may be out of reach: no newer read comes)."""
        if self._leader == self.me and not self.active:
            return None
        return self._leader

    async def run(self) -> None:
        """Campaign and renew until cancelled; the lease is revoked on the way out."""
        try:
            while True:
                await outlive(self._step, "controller election")
                self._check_expiry()
                await asyncio.sleep(POLL_S)
        finally:
            await self._resign()

    async def _step(self) -> None:
        if self._lease is not None:
            sent = self._clock()
            try:
                await self._store.keep_alive(self._lease)
            except LeaseExpired:
                self._lose("its lease expired")
                self._lease = None
                return
            self._valid_until = sent + self._ttl_s
            if self.active_since is None:  # lapsed by our clock, never lost in etcd
                self._activate("its lease outlived the lapse")
            return
        found = await self._store.get(self._key)
        if found is not None:
            self._leader = found.value.decode()
            return
        sent = self._clock()
        lease, ttl = await self._store.grant_lease(self._ttl_s)
        self._ttl_s = ttl
        try:
            won = await self._store.cas(self._key, 0, self.me.encode(), lease)
        except LeaseExpired:
            won = False
        if not won:
            await self._store.revoke(lease)
            return
        self._lease = lease
        self._valid_until = sent + ttl
        self._activate(f"lease {lease:x}, TTL {ttl:.1f} s")

    def _activate(self, why: str) -> None:
        self.active_since = self._clock()
        self._leader = self.me
        log.info("controller %s is the active controller (%s)", self.me, why)
        if self._on_change is not None:
            self._on_change(True)

    def _check_expiry(self) -> None:
        if self.active_since is not None and self._clock() >= self._valid_until:
            self._lose("no keep-alive was answered within its TTL")

    def _lose(self, why: str) -> None:
        """Not active (the lease, if kept, may make it active again: _step)."""
        if self.active_since is None:
            return
        log.warning("controller %s is no longer the active controller: %s", self.me, why)
        self.active_since = None
        if self._leader == self.me:
            self._leader = None
        if self._on_change is not None:
            self._on_change(False)

    async def _resign(self) -> None:
        lease, self._lease = self._lease, None
        self.active_since = None
        if lease is not None:
            try:
                await asyncio.wait_for(self._store.revoke(lease), 1.0)
            except (MetaStoreUnavailable, TimeoutError, LeaseExpired):
                pass
