"""What a broker is right now, read by the handlers at every request: brokerRole and brokerId
fixed by broker.conf in classic mode; in controller mode what the controller last decided
(replicas_manager.py), where a master also takes and acknowledges writes only under a valid
lease (server/controller/lease.py) for its epoch.
"""

from __future__ import annotations

from collections.abc import Callable

from ...protocol.codes import ResponseCode
from ..controller.lease import MasterLease
from .config import MASTER_ID, BrokerConfig

SLAVE = "SLAVE"


class BrokerRole:
    def __init__(self, config: BrokerConfig) -> None:
        self.controller_mode = config.controller_mode
        # Controller mode starts fenced, as a slave without a master, until the controller
        # says otherwise (ReplicasManager: setFenced until the first role is applied).
        self.name = SLAVE if self.controller_mode else config.broker_role
        self.broker_id = config.broker_id if not self.controller_mode else -1
        self.master_epoch = 0  # controller mode: the epoch of the master this broker knows
        self.lease = MasterLease()
        self.in_sync_enough = lambda: True  # minInSyncReplicas (set while master)
        self._listeners: list[Callable[[], None]] = []

    def listen(self, callback: Callable[[], None]) -> None:
        """Call callback() after every role change (become_master, become_slave)."""
        self._listeners.append(callback)

    def _told(self) -> None:
        for callback in self._listeners:
            callback()

    @property
    def slave(self) -> bool:
        return self.name == SLAVE

    def become_master(self, epoch: int) -> None:
        self.name, self.broker_id, self.master_epoch = "SYNC_MASTER", MASTER_ID, epoch
        self._told()

    def become_slave(self, controller_id: int, epoch: int) -> None:
        self.name, self.broker_id, self.master_epoch = SLAVE, controller_id, epoch
        self.lease.revoke()
        self.in_sync_enough = lambda: True
        self._told()

    def write_refusal(self) -> tuple[int, str] | None:
        """Why a write must not be stored now (code, remark), or None."""
        if self.slave:
            return (ResponseCode.SERVICE_NOT_AVAILABLE,
                    "message store is slave mode, so putMessage is forbidden")
        if not self.controller_mode:
            return None
        if not self.lease.valid(self.master_epoch):
            return (ResponseCode.SERVICE_NOT_AVAILABLE,
                    f"the master lease of epoch {self.master_epoch} is not held: no write is "
                    "taken until the controller renews it")
        if not self.in_sync_enough():
            return (ResponseCode.SYSTEM_ERROR, "in-sync replicas not enough")
        return None

    def lease_lapsed_lately(self) -> bool:
        """A master whose lease lapsed less than HOLD_MS ago: its writes wait for the renewal
        (lease_renewal) before write_refusal is asked."""
        return self.controller_mode and not self.slave and \
            self.lease.hold_left_s(self.master_epoch) > 0.0

    async def lease_renewal(self) -> None:
        """Wait, HOLD_MS after the lapse at most, for the lease to be renewed (a controller
        handover can leave a gap between the old controller's last grant and the next one's
        first); write_refusal decides afterwards, as ever."""
        await self.lease.renewal(self.master_epoch)

    def may_acknowledge(self) -> bool:
        """Whether a stored write may be answered SEND_OK now: never by a deposed master."""
        return not self.controller_mode or (not self.slave and
                                            self.lease.valid(self.master_epoch))
