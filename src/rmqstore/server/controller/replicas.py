"""The controller's decisions, as pure functions from a broker set's state (or None for a set
never seen) and a request to a Decision: the response, and the state to write if it changes.
A port of RocketMQ 5's ReplicasInfoManager (controller/.../impl/manager/
ReplicasInfoManager.java): same checks in the same order, same response codes; where Java
appends an event to its Raft log and applies it, the caller here compare-and-sets the new
state on the revision it read (controller.py), so a decision made on a stale read is never
written.

``alive(id)`` says whether the set's member ``id`` heartbeats (BrokerValidPredicate);
``live(id)`` gives its last heartbeat's election fields while it does (BrokerLiveInfoGetter).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from ...protocol.codes import ResponseCode
from ...protocol.controller import (
    CONTROLLER_TRIGGERED,
    FIRST_BROKER_CONTROLLER_ID,
    AlterSyncStateSetResponseHeader,
    ApplyBrokerIdResponseHeader,
    ElectMasterResponseHeader,
    GetNextBrokerIdResponseHeader,
    GetReplicaInfoResponseHeader,
    RegisterBrokerToControllerResponseHeader,
)
from ...protocol.controller_body import (
    BrokerMemberGroup,
    ReplicaIdentity,
    ReplicasInfo,
    SyncStateSet,
    encode_elect_master_body,
    encode_replicas_info,
)
from .elect import LiveInfo, elect
from .state import BrokerSetState, Member

Alive = Callable[[int], bool]
Live = Callable[[int], "LiveInfo | None"]

OK = ResponseCode.SUCCESS


@dataclass(frozen=True, slots=True)
class Decision:
    """``state``: the set's new state to write (None: nothing to write); ``delete``: forget
    the set (CLEAN_BROKER_DATA)."""

    code: int = OK
    remark: str | None = None
    header: object | None = None
    body: bytes = b""
    state: BrokerSetState | None = None
    delete: bool = False


def _refuse(code: int, remark: str) -> Decision:
    return Decision(code, remark)


def _sync_state_body(s: BrokerSetState) -> bytes:
    return SyncStateSet(s.sync_state_set, s.sync_state_set_epoch).encode()


def alter_sync_state_set(s: BrokerSetState | None, master_id: int, master_epoch: int,
                         proposed: SyncStateSet, alive: Alive) -> Decision:
    """A master reports its in-sync replicas grew or shrank. The epoch checks are the only
    fencing of a stale master at the controller."""
    if s is None:
        return _refuse(ResponseCode.CONTROLLER_ALTER_SYNC_STATE_SET_FAILED,
                       "Broker metadata is not existed")
    new = proposed.members
    if new == s.sync_state_set:
        return _refuse(ResponseCode.CONTROLLER_ALTER_SYNC_STATE_SET_FAILED,
                       "The newSyncStateSet is equal with oldSyncStateSet, no needed to update "
                       "syncStateSet")
    if s.master is None or s.master != master_id:
        return _refuse(ResponseCode.CONTROLLER_INVALID_MASTER,
                       f"Rejecting alter syncStateSet request because the current leader is:"
                       f"{{{s.master}}}, not {{{master_id}}}")
    if master_epoch != s.master_epoch:
        return _refuse(ResponseCode.CONTROLLER_FENCED_MASTER_EPOCH,
                       f"Rejecting alter syncStateSet request because the current master epoch "
                       f"is:{{{s.master_epoch}}}, not {{{master_epoch}}}")
    if proposed.epoch != s.sync_state_set_epoch:
        return _refuse(ResponseCode.CONTROLLER_FENCED_SYNC_STATE_SET_EPOCH,
                       f"Rejecting alter syncStateSet request because the current syncStateSet "
                       f"epoch is:{{{s.sync_state_set_epoch}}}, not {{{proposed.epoch}}}")
    for replica in sorted(new):
        if replica not in s.members:
            return _refuse(ResponseCode.CONTROLLER_INVALID_REPLICAS,
                           f"Rejecting alter syncStateSet request because the replicas "
                           f"{{{replica}}} don't exist")
        if not alive(replica):
            return _refuse(ResponseCode.CONTROLLER_BROKER_NOT_ALIVE,
                           f"Rejecting alter syncStateSet request because the replicas "
                           f"{{{replica}}} don't alive")
    if s.master not in new:
        return _refuse(ResponseCode.CONTROLLER_ALTER_SYNC_STATE_SET_FAILED,
                       f"Rejecting alter syncStateSet request because the newSyncStateSet don't "
                       f"contains origin leader {{{s.master}}}")
    after = s.with_sync_state_set(new)
    return Decision(header=AlterSyncStateSetResponseHeader(
        new_sync_state_set_epoch=after.sync_state_set_epoch),
        body=_sync_state_body(after), state=after)


def elect_master(s: BrokerSetState | None, broker_id: int, designate: bool, live: Live,
                 unclean: bool = False) -> Decision:
    """CONTROLLER_ELECT_MASTER: a broker asks to be master (brokerId), an admin designates one
    (designateElect), or the controller replaces a master that stopped heartbeating (-1)."""
    if s is None:
        return _refuse(ResponseCode.CONTROLLER_BROKER_NEED_TO_BE_REGISTERED,
                       "Broker hasn't been registered")
    # The set's first election takes the caller (Java takes any id; here only a member's).
    new_master = broker_id if s.master_epoch == 0 and broker_id in s.members else None
    if new_master is None or new_master == CONTROLLER_TRIGGERED:
        new_master = elect(s.sync_state_set, s.members if unclean else None, s.master,
                           broker_id if designate else None, live)
    if new_master is not None and new_master == s.master:
        return Decision(
            ResponseCode.CONTROLLER_MASTER_STILL_EXIST,
            f"The old master {s.master} is still alive, not need to elect new master for "
            f"broker {s.broker_name}",
            ElectMasterResponseHeader(master_broker_id=s.master,
                                      master_address=s.address_of(s.master),
                                      master_epoch=s.master_epoch,
                                      sync_state_set_epoch=s.sync_state_set_epoch),
            encode_elect_master_body(None, s.sync_state_set))
    if new_master is not None:
        after = s.with_master(new_master)
        group = BrokerMemberGroup(s.cluster, s.broker_name,
                                  {i: m.address for i, m in s.members.items()})
        return Decision(header=ElectMasterResponseHeader(
            master_broker_id=new_master, master_address=s.address_of(new_master),
            master_epoch=after.master_epoch, sync_state_set_epoch=after.sync_state_set_epoch),
            body=encode_elect_master_body(group, after.sync_state_set), state=after)
    if broker_id == CONTROLLER_TRIGGERED:
        # The master is gone and nobody may replace it: record that (the epoch still moves).
        return Decision(ResponseCode.CONTROLLER_MASTER_NOT_AVAILABLE,
                        "Old master has down and failed to elect a new broker master",
                        state=s.with_master(None))
    return _refuse(ResponseCode.CONTROLLER_ELECT_MASTER_FAILED, "Failed to elect a new master")


def next_broker_id(s: BrokerSetState | None, cluster: str, broker_name: str) -> Decision:
    nxt = FIRST_BROKER_CONTROLLER_ID if s is None else s.next_broker_id
    return Decision(header=GetNextBrokerIdResponseHeader(
        cluster_name=cluster, broker_name=broker_name, next_broker_id=nxt))


def apply_broker_id(s: BrokerSetState | None, cluster: str, broker_name: str, broker_id: int,
                    check_code: str) -> Decision:
    """A broker claims an id: granted if free, or if it is the broker that claimed it before
    (same check code); a new set grants only the first id."""
    header = ApplyBrokerIdResponseHeader(cluster_name=cluster, broker_name=broker_name)
    member = Member(check_code.split(";")[0], check_code)
    if s is None:
        if broker_id != FIRST_BROKER_CONTROLLER_ID:
            return _refuse(ResponseCode.CONTROLLER_BROKER_ID_INVALID,
                           f"Broker-set: {broker_name} hasn't been registered in controller, but "
                           f"broker try to apply brokerId: {broker_id}")
        return Decision(header=header, state=BrokerSetState(cluster, broker_name).with_member(
            broker_id, member))
    existing = s.members.get(broker_id)
    if existing is None:
        return Decision(header=header, state=s.with_member(broker_id, member))
    if existing.check_code == check_code:
        return Decision(header=header)
    return _refuse(ResponseCode.CONTROLLER_BROKER_ID_INVALID,
                   f"Fail to apply brokerId: {broker_id} in broker-set: {broker_name}")


def register_broker(s: BrokerSetState | None, cluster: str, broker_name: str, broker_id: int,
                    address: str, alive: Alive) -> Decision:
    """A broker with an id says where it is; it learns the master while one is alive."""
    if s is None:
        return _refuse(ResponseCode.CONTROLLER_BROKER_NEED_TO_BE_REGISTERED,
                       f"Broker-set: {broker_name} hasn't been registered in controller")
    member = s.members.get(broker_id)
    if member is None:
        return _refuse(ResponseCode.CONTROLLER_BROKER_NEED_TO_BE_REGISTERED,
                       f"BrokerId: {broker_id} hasn't been registered in broker-set: "
                       f"{broker_name}")
    header = RegisterBrokerToControllerResponseHeader(cluster_name=cluster,
                                                      broker_name=broker_name)
    if s.master is not None and alive(s.master):
        header = RegisterBrokerToControllerResponseHeader(
            cluster_name=cluster, broker_name=broker_name, master_broker_id=s.master,
            master_address=s.address_of(s.master), master_epoch=s.master_epoch,
            sync_state_set_epoch=s.sync_state_set_epoch)
    after = None
    if member.address != address:  # UPDATE_BROKER_ADDRESS
        after = dataclasses.replace(
            s, members={**s.members, broker_id: Member(address, member.check_code)})
    return Decision(header=header, body=_sync_state_body(s), state=after)


def replica_info(s: BrokerSetState | None) -> Decision:
    if s is None:
        return _refuse(ResponseCode.CONTROLLER_BROKER_METADATA_NOT_EXIST,
                       "Broker metadata is not existed")
    return Decision(header=GetReplicaInfoResponseHeader(
        master_broker_id=s.master, master_address=s.address_of(s.master),
        master_epoch=s.master_epoch), body=_sync_state_body(s))


def sync_state_data(states: dict[str, BrokerSetState],
                    alive: Callable[[BrokerSetState, int], bool]) -> bytes:
    """CONTROLLER_GET_SYNC_STATE_DATA's body: per set, its in-sync and other replicas."""
    table = {}
    for name, s in states.items():
        replicas = [ReplicaIdentity(name, i, m.address, alive(s, i))
                    for i, m in sorted(s.members.items())]
        table[name] = ReplicasInfo(
            s.master, s.address_of(s.master), s.master_epoch, s.sync_state_set_epoch,
            tuple(r for r in replicas if r.broker_id in s.sync_state_set),
            tuple(r for r in replicas if r.broker_id not in s.sync_state_set))
    return encode_replicas_info(table)


def clean_broker_data(s: BrokerSetState | None, broker_name: str, ids_to_clean: str | None,
                      clean_living: bool, alive: Alive) -> Decision:
    """CLEAN_BROKER_DATA: forget a set (none of it alive, no master) or some of its ids."""
    ids: set[int] | None = None
    if ids_to_clean is not None and ids_to_clean.strip():
        try:
            ids = {int(i) for i in ids_to_clean.split(";")}
        except ValueError as exc:
            return _refuse(ResponseCode.CONTROLLER_INVALID_CLEAN_BROKER_METADATA,
                           f"Please set the option <brokerControllerIdsToClean> according to the "
                           f"format, exception: {exc}")
    if not clean_living:
        if ids is None and s is not None and s.master is not None:
            return _refuse(ResponseCode.CONTROLLER_INVALID_CLEAN_BROKER_METADATA,
                           f"Broker {broker_name} is still alive, clean up failure")
        for i in sorted(ids or ()):
            if alive(i):
                return _refuse(ResponseCode.CONTROLLER_INVALID_CLEAN_BROKER_METADATA,
                               f"Broker [{broker_name},  {i}] is still alive, clean up failure")
    if s is None:
        return _refuse(ResponseCode.CONTROLLER_INVALID_CLEAN_BROKER_METADATA,
                       f"Broker {broker_name} is not existed,clean broker data failure.")
    if not ids:
        return Decision(delete=True)
    members = {i: m for i, m in s.members.items() if i not in ids}
    isr = frozenset(i for i in s.sync_state_set if i not in ids)
    if not members or not isr:
        return Decision(delete=True)
    return Decision(state=dataclasses.replace(s, members=members, sync_state_set=isr))


def needs_reelection(s: BrokerSetState, alive: Alive) -> bool:
    """scanNeedReelectBrokerSets: the master stopped heartbeating and some member did not."""
    return s.master is not None and not alive(s.master) and any(alive(i) for i in s.members)
