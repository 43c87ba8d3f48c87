"""The master lease: what lets a deposed master never acknowledge a write once a newer epoch
exists (RocketMQ's controller mode has none; its safety rests on the ack rule alone).

Promise, made by the active controller when it answers a heartbeat from the master of the epoch
it holds: "no other master will be elected for this set before I received this heartbeat plus
lease_ms". The master counts its lease from the moment it *sent* that heartbeat (earlier than
the controller received it) and answers no write once the lease is over. So the master's lease
ends before the controller may elect anyone else:

    master sends hb at t0 ------ controller receives at t1 >= t0, grants lease_ms ------>
    master acks writes until t0 + lease_ms  <=  t1 + lease_ms  <= earliest election

The controller keeps its promise by electing a replacement only once the master's heartbeat is
older than its timeout (>= lease_ms), or its process is provably gone (its listen port refuses
connections: a dead process acknowledges nothing).

A controller's promises also end at most HANDOVER_GRACE_MS after its own term could (its etcd
lease, by its own clock: leadership.py): it grants min(lease_ms, term left + grace). The next
active controller exists only once etcd expired that lease, after the term's end, so it waits
one grace from becoming active (not one whole lease) for its predecessor's promises:

    old controller's term ends at V ---- grants end by V + grace
    etcd expires its lease >= V ---- new controller active at A >= V, elects from A + grace

Both clocks are monotonic; across machines only their rates need agree (a margin covers drift).

With a grace of 2 s, heartbeats every 0.5 s and a controller handover of about 2.5 s (an etcd
lease of 2 s, then a poll), a master's lease outlives the killing of the active controller:
its last grant lasts about 4 s past the kill (a term left of about 2 s, plus the grace).

A controller whose etcd keep-alives went unanswered before it died grants ever shorter leases,
and etcd may expire its lease later than its term (a new etcd leader extends every lease), so
the master's lease can lapse before the next controller's first grant. A master whose lease
lapsed less than HOLD_MS ago therefore holds a write (until then at most) for the renewal,
instead of refusing it at once; it checks the lease again after the hold, and before every
acknowledgement, so the hold only delays an answer and never widens a lease.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

HEARTBEAT_INTERVAL_MS = 500  # brokerHeartbeatInterval (Java: 1000)
HEARTBEAT_TIMEOUT_MS = 5000  # controllerHeartBeatTimeoutMills (Java: 10000)
LEASE_MS = 4000  # ours; at most the heartbeat timeout
DRIFT_MARGIN_MS = 100  # taken off the lease on the master's side
HANDOVER_GRACE_MS = 2000  # how long a controller's grants may outlast its term
HOLD_MS = 1500  # a write held this long after a lapse at most (producers wait 3 s)


def grant_ms(lease_ms: int, term_left_s: float) -> int:
    """The lease an active controller grants with ``term_left_s`` of its term left."""
    return max(0, min(lease_ms, int(term_left_s * 1000) + HANDOVER_GRACE_MS))


def handover_wait_s(lease_ms: int) -> float:
    """How long a controller that just became active waits before electing a replacement for
    a master its predecessor may have granted a lease (every grant ends by then)."""
    return min(lease_ms, HANDOVER_GRACE_MS) / 1000


class MasterLease:
    """A master's lease, on the broker: renewed by each answered heartbeat."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._until = 0.0
        self.epoch = -1  # the epoch the lease is for
        self._renewal: asyncio.Event | None = None  # set by the next renewal (held writes)

    def renewed(self, sent_at: float, epoch: int, lease_ms: int) -> None:
        """A heartbeat sent at ``sent_at`` (this clock) was answered: master of ``epoch`` for
        lease_ms from then."""
        if epoch != self.epoch:
            self.epoch, self._until = epoch, 0.0
        self._until = max(self._until, sent_at + (lease_ms - DRIFT_MARGIN_MS) / 1000)
        if self._renewal is not None and self._clock() < self._until:
            self._renewal.set()
            self._renewal = None

    def valid(self, epoch: int) -> bool:
        return self.epoch == epoch and self._clock() < self._until

    def revoke(self) -> None:
        self._until = 0.0
        if self._renewal is not None:  # held writes are refused now
            self._renewal.set()
            self._renewal = None

    @property
    def remaining_s(self) -> float:
        return max(0.0, self._until - self._clock())

    def hold_left_s(self, epoch: int) -> float:
        """How long a write may still be held for a renewal of ``epoch``'s lease: > 0 only
        while the lease lapsed less than HOLD_MS ago."""
        if self.epoch != epoch or self._until == 0.0:
            return 0.0
        now = self._clock()
        if now < self._until:
            return 0.0  # valid: nothing to wait for
        return max(0.0, self._until + HOLD_MS / 1000 - now)

    async def renewal(self, epoch: int) -> bool:
        """Wait (HOLD_MS after the lapse at most) for ``epoch``'s lease to be valid again;
        whether it is."""
        left = self.hold_left_s(epoch)
        if left > 0.0:
            if self._renewal is None:
                self._renewal = asyncio.Event()
            try:
                async with asyncio.timeout(left):
                    await self._renewal.wait()
            except TimeoutError:
                pass
        return self.valid(epoch)
