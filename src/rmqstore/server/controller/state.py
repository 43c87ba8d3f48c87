"""What the controller knows of one broker set, as one immutable value, and its form in the
consensus store (one JSON value per set, at ``<prefix>/sets/<brokerName>``).

The fields are RocketMQ 5's BrokerReplicaInfo and SyncStateInfo together
(controller/.../impl/manager/): the set's members by controller broker id with their address
and register check code, the next id to hand out, the master, the master epoch, the in-sync
replicas and their epoch. Both epochs only grow: each election bumps the master epoch (even
one that finds nobody), each change of the in-sync set bumps its epoch.

    {"brokerName":"broker-a","brokers":{"1":{"address":"10.0.0.1:10911","checkCode":
     "10.0.0.1:10911;1700000000000"}},"clusterName":"c1","masterBrokerId":1,"masterEpoch":1,
     "nextBrokerId":2,"syncStateSet":[1],"syncStateSetEpoch":1}
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ...protocol import fastjson
from ...protocol.controller import FIRST_BROKER_CONTROLLER_ID


@dataclass(frozen=True, slots=True)
class Member:
    address: str
    check_code: str


@dataclass(frozen=True, slots=True)
class BrokerSetState:
    cluster: str
    broker_name: str
    members: dict[int, Member] = dataclasses.field(default_factory=dict)
    next_broker_id: int = FIRST_BROKER_CONTROLLER_ID
    master: int | None = None
    master_epoch: int = 0
    sync_state_set: frozenset[int] = frozenset()
    sync_state_set_epoch: int = 0

    def address_of(self, broker_id: int | None) -> str | None:
        member = self.members.get(broker_id) if broker_id is not None else None
        return member.address if member is not None else None

    def with_master(self, master: int | None) -> BrokerSetState:
        """SyncStateInfo.updateMasterInfo (+ updateSyncStateSetInfo when a master was
        elected: the set becomes the master alone)."""
        if master is None:
            return dataclasses.replace(self, master=None, master_epoch=self.master_epoch + 1)
        return dataclasses.replace(self, master=master, master_epoch=self.master_epoch + 1,
                                   sync_state_set=frozenset({master}),
                                   sync_state_set_epoch=self.sync_state_set_epoch + 1)

    def with_sync_state_set(self, members: frozenset[int]) -> BrokerSetState:
        return dataclasses.replace(self, sync_state_set=members,
                                   sync_state_set_epoch=self.sync_state_set_epoch + 1)

    def with_member(self, broker_id: int, member: Member) -> BrokerSetState:
        """BrokerReplicaInfo.addBroker: the next id to hand out moves on by one."""
        return dataclasses.replace(self, members={**self.members, broker_id: member},
                                   next_broker_id=self.next_broker_id + 1)

    def encode(self) -> bytes:
        return fastjson.dumps({
            "brokerName": self.broker_name,
            "brokers": {str(i): {"address": m.address, "checkCode": m.check_code}
                        for i, m in sorted(self.members.items())},
            "clusterName": self.cluster, "masterBrokerId": self.master,
            "masterEpoch": self.master_epoch, "nextBrokerId": self.next_broker_id,
            "syncStateSet": sorted(self.sync_state_set),
            "syncStateSetEpoch": self.sync_state_set_epoch})


def decode_state(data: bytes) -> BrokerSetState:
    """A stored value; ValueError if it is not one (a foreign key under the prefix)."""
    try:
        obj: Any = fastjson.loads(data)
        members = {int(k): Member(str(v["address"]), str(v["checkCode"]))
                   for k, v in obj["brokers"].items()}
        master = obj.get("masterBrokerId")
        return BrokerSetState(
            str(obj["clusterName"]), str(obj["brokerName"]), members, int(obj["nextBrokerId"]),
            None if master is None else int(master), int(obj["masterEpoch"]),
            frozenset(int(i) for i in obj["syncStateSet"]), int(obj["syncStateSetEpoch"]))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"not a broker set's state: {exc!r}") from None
