"""A controller-mode master's in-sync replicas (AutoSwitchHAService's syncStateSet of RocketMQ 5),
the ack rule its sends wait for, and its confirm offset.

The set the controller committed is ``committed`` (with its epoch); a change this master
proposed and the controller has not answered yet is ``proposed``. While one is pending, the
acks required and the count of in-sync replicas use the union of both, so a shrink never
lowers what a send needs before the controller agreed (isSynchronizingSyncStateSet).

Growth, on a slave's ack (maybeExpandInSyncStateSet): a slave that has everything this master
had at its last transfer counts as caught up now; one outside the set joins it once its ack
reaches the confirm offset and the start of the current epoch. Shrink, every check
(maybeShrinkSyncStateSet): a member not caught up for haMaxTimeSlaveNotCatchup, or without a
connection, leaves it; a member whose connection closes leaves at once.

Ack rule (GroupTransferService.doWaitTransfer): with allAckInSyncStateSet (our default) a send
is answered once every member but this master acknowledged it; otherwise once inSyncReplicas - 1
connected slaves did. The confirm offset (computeConfirmOffset) is the least ack of the members,
at most the log's end, and stays where it was while a member has no connection (RocketMQ
issue 6662); readers never see past it.

Runs on its event loop's thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from .group_transfer import Callback, GroupTransfer

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InSyncConfig:
    all_ack: bool = True  # allAckInSyncStateSet (Java: false; ours: true, no acked loss)
    in_sync_replicas: int = 1  # inSyncReplicas, counting the master (when all_ack is off)
    min_in_sync_replicas: int = 1  # minInSyncReplicas: fewer in sync and sends are refused
    max_not_caught_up_s: float = 15.0  # haMaxTimeSlaveNotCatchup
    slave_timeout_s: float = 3.0  # slaveTimeout: FLUSH_SLAVE_TIMEOUT after it


class InSyncReplicas:
    def __init__(self, loop: asyncio.AbstractEventLoop, me: int, log_end: Callable[[], int],
                 epoch_start: Callable[[], int], config: InSyncConfig = InSyncConfig(),
                 on_change: Callable[[frozenset[int]], None] | None = None,
                 on_confirm: Callable[[int], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """me: this master's controller broker id; log_end(): its commit log's end;
        epoch_start(): where its current epoch starts; on_change(proposed): report a proposed
        set to the controller; on_confirm(offset): the confirm offset moved."""
        self._loop = loop
        self.me = me
        self._log_end = log_end
        self._epoch_start = epoch_start
        self.config = config
        self._on_change = on_change
        self._on_confirm = on_confirm
        self._clock = clock
        self.committed: frozenset[int] = frozenset({me})
        self.committed_epoch = 0
        self.proposed: frozenset[int] | None = None
        self.acks: dict[int, int] = {}  # connected slave -> its last ack
        self.caught_up: dict[int, float] = {}  # connected slave -> when it last had everything
        self.confirm = log_end()
        # what the ack rule covers, as one offset: the sends' waits are GroupTransfer's
        self._transfer = GroupTransfer(loop, config.slave_timeout_s)

    # -- the sets ----------------------------------------------------------------------------
    @property
    def required(self) -> frozenset[int]:
        """Members whose ack a send needs (getSyncStateSet: the union while one is pending)."""
        return self.committed | self.proposed if self.proposed is not None else self.committed

    @property
    def count(self) -> int:
        """inSyncReplicasNums."""
        if self.proposed is not None:
            return max(len(self.committed), len(self.proposed))
        return len(self.committed)

    def set_committed(self, members: frozenset[int], epoch: int) -> None:
        """The controller's set (an ALTER's answer, a role change, a replica-info poll)."""
        if epoch < self.committed_epoch:
            return
        if members != self.committed:
            log.info("HA: in-sync replicas %s -> %s (epoch %d)", sorted(self.committed),
                     sorted(members), epoch)
        self.committed, self.committed_epoch = frozenset(members) | {self.me}, epoch
        self.proposed = None
        self._settle()

    def _propose(self, members: frozenset[int]) -> None:
        self.proposed = members
        log.info("HA: proposing in-sync replicas %s (now %s)", sorted(members),
                 sorted(self.committed))
        if self._on_change is not None:
            self._on_change(members)

    # -- links -------------------------------------------------------------------------------
    def connected(self, slave: int) -> None:
        self.acks.setdefault(slave, -1)

    def disconnected(self, slave: int) -> None:
        """removeConnection: a member leaves the set at once."""
        self.acks.pop(slave, None)
        self.caught_up.pop(slave, None)
        current = self.proposed if self.proposed is not None else self.committed
        if slave in current:
            self._propose(current - {slave})

    def on_ack(self, slave: int, offset: int, master_end_at_transfer: int) -> None:
        """A slave reported ``offset``; master_end_at_transfer: this log's end when its link
        last sent (lastMasterMaxOffset)."""
        self.acks[slave] = offset
        if offset >= master_end_at_transfer:
            now = self._clock()
            self.caught_up[slave] = max(self.caught_up.get(slave, 0.0), now)
            current = self.proposed if self.proposed is not None else self.committed
            if slave not in current and offset >= self.confirm and \
                    offset >= self._epoch_start():
                log.info("HA: slave %d caught up at %d: adding it to the in-sync replicas",
                         slave, offset)
                self._propose(current | {slave})
        self._settle()

    def on_idle(self, slave: int) -> None:
        """The slave's link had nothing to send: the slave has everything."""
        self.caught_up[slave] = self._clock()

    def check(self) -> None:
        """maybeShrinkSyncStateSet, every checkSyncStateSetPeriod."""
        current = self.proposed if self.proposed is not None else self.committed
        now = self._clock()
        keep = {m for m in current if m == self.me or (
            m in self.acks and now - self.caught_up.get(m, 0.0) <= self.config.max_not_caught_up_s)}
        if keep != current:
            for gone in sorted(current - keep):
                log.warning("HA: slave %d is not caught up (or not connected): removing it from "
                            "the in-sync replicas", gone)
            self._propose(frozenset(keep))
        elif self.proposed is not None and self._on_change is not None:
            self._on_change(self.proposed)  # not answered yet: report again

    # -- the ack rule ------------------------------------------------------------------------
    def _acked(self) -> int:
        """The least offset every required member (but this master) holds."""
        others = self.required - {self.me}
        if not others:
            return self._log_end()
        return min(self.acks.get(m, -1) for m in others)

    def _covered(self) -> int:
        """The offset the ack rule holds below: every member's (all_ack), else the one
        inSyncReplicas - 1 connected slaves hold."""
        if self.config.all_ack:
            return self._acked()
        needed = self.config.in_sync_replicas - 1
        if needed <= 0:
            return self._log_end()
        acks = sorted(self.acks.values(), reverse=True)
        return acks[needed - 1] if len(acks) >= needed else -1

    def when_replicated(self, end: int, callback: Callback, ok: object = True,
                        failed: object = False) -> None:
        """callback(ok) once the ack rule holds for every byte below ``end``,
        callback(failed) after slaveTimeout (FLUSH_SLAVE_TIMEOUT) or at close."""
        self._settle()
        self._transfer.when_replicated(end, callback, ok, failed)

    def enough_in_sync(self) -> bool:
        """inSyncReplicasNums >= minInSyncReplicas: else a send is not stored at all."""
        return self.count >= self.config.min_in_sync_replicas

    def _settle(self) -> None:
        """Resolve the waiters the acks now cover; move the confirm offset."""
        confirm = self._compute_confirm()
        if confirm != self.confirm:
            self.confirm = confirm
            if self._on_confirm is not None:
                self._on_confirm(confirm)
        self._transfer.on_ack(self._covered())

    def _compute_confirm(self) -> int:
        end = self._log_end()
        others = self.required - {self.me}
        if not self.config.all_ack or not others:
            return end
        if any(m not in self.acks for m in others):
            return self.confirm  # a member without a connection: frozen
        return min(end, self._acked())

    def appended(self) -> None:
        """The log grew: with no other member the confirm offset follows it."""
        if not (self.required - {self.me}) or not self.config.all_ack:
            self._settle()

    def close(self) -> None:
        self._transfer.close()
