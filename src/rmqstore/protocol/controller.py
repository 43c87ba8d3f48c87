"""The custom headers of RocketMQ 5's controller requests (controller mode, RIP-44), as typed
dataclasses whose fields carry their Java (wire) names; header_codec.py turns them into
extFields and back. Their bodies are in controller_body.py.

Field names are the Java field names of remoting/.../protocol/header/controller/ (register/,
admin/), header/NotifyBrokerRoleChangedRequestHeader and header/namesrv/
BrokerHeartbeatRequestHeader of RocketMQ 5. A Java Long or Integer that may be null is an
``int | None`` here, absent from extFields when None, as Java leaves a null field out.

    code  request                               response header
    904   BrokerHeartbeatRequestHeader          -
    1001  AlterSyncStateSetRequestHeader        AlterSyncStateSetResponseHeader
    1002  ElectMasterRequestHeader              ElectMasterResponseHeader
    1003  RegisterBrokerToControllerRequest...  RegisterBrokerToControllerResponseHeader
    1004  GetReplicaInfoRequestHeader           GetReplicaInfoResponseHeader
    1005  -                                     GetMetaDataResponseHeader
    1008  NotifyBrokerRoleChangedRequestHeader  - (oneway)
    1011  CleanControllerBrokerDataRequestHe... -
    1012  GetNextBrokerIdRequestHeader          GetNextBrokerIdResponseHeader
    1013  ApplyBrokerIdRequestHeader            ApplyBrokerIdResponseHeader
    1901  NotifyRouteChangedRequestHeader       - (oneway; ours, see codes.py)
"""

from __future__ import annotations

from dataclasses import dataclass

from .header_codec import wire

# MixAll.FIRST_BROKER_CONTROLLER_ID: the controller numbers a broker set's members from 1.
FIRST_BROKER_CONTROLLER_ID = 1
# ElectMasterRequestHeader.brokerId of an election the controller itself starts.
CONTROLLER_TRIGGERED = -1
# BrokerHeartbeatRequestHeader's electionPriority when a broker sends none (Integer.MAX_VALUE).
LOWEST_ELECTION_PRIORITY = 2**31 - 1


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerHeartbeatRequestHeader:
    """BROKER_HEARTBEAT (904), broker -> every controller, every brokerHeartbeatInterval."""

    cluster_name: str = wire("clusterName", required=True)
    broker_addr: str = wire("brokerAddr", required=True)
    broker_name: str = wire("brokerName", required=True)
    broker_id: int | None = wire("brokerId")
    epoch: int | None = wire("epoch")  # the broker's last epoch (its epoch file's)
    max_offset: int | None = wire("maxOffset")
    confirm_offset: int | None = wire("confirmOffset")
    heartbeat_timeout_ms: int | None = wire("heartbeatTimeoutMills")
    election_priority: int | None = wire("electionPriority")


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerHeartbeatResponseHeader:
    """Ours: RocketMQ's heartbeat response has no header. The active controller names the
    master epoch it holds for the sender when the sender is that epoch's master: the master's
    lease (see server/controller/lease.py). Java brokers ignore it."""

    master_epoch: int | None = wire("masterEpoch")
    lease_ms: int | None = wire("leaseMillis")


@dataclass(frozen=True, slots=True, kw_only=True)
class AlterSyncStateSetRequestHeader:
    """CONTROLLER_ALTER_SYNC_STATE_SET (1001), master -> controller; body a SyncStateSet."""

    broker_name: str = wire("brokerName", required=True)
    master_broker_id: int = wire("masterBrokerId", required=True)
    master_epoch: int = wire("masterEpoch", required=True)
    invoke_time: int = wire("invokeTime", default=0)


@dataclass(frozen=True, slots=True, kw_only=True)
class AlterSyncStateSetResponseHeader:
    new_sync_state_set_epoch: int = wire("newSyncStateSetEpoch", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class ElectMasterRequestHeader:
    """CONTROLLER_ELECT_MASTER (1002): brokerId -1 is the controller's own election;
    designateElect asks for that broker and no other (an admin's)."""

    cluster_name: str = wire("clusterName", default="")
    broker_name: str = wire("brokerName", required=True)
    broker_id: int = wire("brokerId", default=CONTROLLER_TRIGGERED)
    designate_elect: bool = wire("designateElect", default=False)
    invoke_time: int = wire("invokeTime", default=0)


@dataclass(frozen=True, slots=True, kw_only=True)
class GetReplicaInfoResponseHeader:
    """CONTROLLER_GET_REPLICA_INFO's answer; the others that name the master extend it."""

    master_broker_id: int | None = wire("masterBrokerId")
    master_address: str | None = wire("masterAddress")
    master_epoch: int | None = wire("masterEpoch")


@dataclass(frozen=True, slots=True, kw_only=True)
class ElectMasterResponseHeader(GetReplicaInfoResponseHeader):
    sync_state_set_epoch: int | None = wire("syncStateSetEpoch")


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterBrokerToControllerRequestHeader:
    """CONTROLLER_REGISTER_BROKER (1003): a broker with its id says where it is now."""

    cluster_name: str = wire("clusterName", required=True)
    broker_name: str = wire("brokerName", required=True)
    broker_id: int = wire("brokerId", required=True)
    broker_address: str = wire("brokerAddress", required=True)
    invoke_time: int = wire("invokeTime", default=0)


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterBrokerToControllerResponseHeader(ElectMasterResponseHeader):
    """The master fields are set only while a master is alive; body the SyncStateSet."""

    cluster_name: str | None = wire("clusterName")
    broker_name: str | None = wire("brokerName")


@dataclass(frozen=True, slots=True, kw_only=True)
class GetReplicaInfoRequestHeader:
    """CONTROLLER_GET_REPLICA_INFO (1004)."""

    broker_name: str = wire("brokerName", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class GetMetaDataResponseHeader:
    """CONTROLLER_GET_METADATA_INFO (1005): which controller is the active one (Java: the
    DLedger leader); peers "id:addr;" each."""

    group: str | None = wire("group")
    controller_leader_id: str | None = wire("controllerLeaderId")
    controller_leader_address: str | None = wire("controllerLeaderAddress")
    is_leader: bool = wire("isLeader", default=False)
    peers: str | None = wire("peers")


@dataclass(frozen=True, slots=True, kw_only=True)
class NotifyBrokerRoleChangedRequestHeader:
    """NOTIFY_BROKER_ROLE_CHANGED (1008), controller -> each live member, oneway; body the
    SyncStateSet."""

    master_address: str | None = wire("masterAddress")
    master_epoch: int | None = wire("masterEpoch")
    sync_state_set_epoch: int | None = wire("syncStateSetEpoch")
    master_broker_id: int | None = wire("masterBrokerId")


@dataclass(frozen=True, slots=True, kw_only=True)
class CleanControllerBrokerDataRequestHeader:
    """CLEAN_BROKER_DATA (1011), admin -> controller: forget a broker set, or some of its ids
    ("1;2"), unless alive (isCleanLivingBroker overrides that)."""

    cluster_name: str | None = wire("clusterName")
    broker_name: str = wire("brokerName", required=True)
    broker_controller_ids_to_clean: str | None = wire("brokerControllerIdsToClean")
    is_clean_living_broker: bool = wire("isCleanLivingBroker", default=False)
    invoke_time: int = wire("invokeTime", default=0)


@dataclass(frozen=True, slots=True, kw_only=True)
class GetNextBrokerIdRequestHeader:
    """CONTROLLER_GET_NEXT_BROKER_ID (1012)."""

    cluster_name: str = wire("clusterName", required=True)
    broker_name: str = wire("brokerName", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class GetNextBrokerIdResponseHeader:
    cluster_name: str | None = wire("clusterName")
    broker_name: str | None = wire("brokerName")
    next_broker_id: int | None = wire("nextBrokerId")


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyBrokerIdRequestHeader:
    """CONTROLLER_APPLY_BROKER_ID (1013); registerCheckCode is "brokerAddr;millis"."""

    cluster_name: str = wire("clusterName", required=True)
    broker_name: str = wire("brokerName", required=True)
    applied_broker_id: int = wire("appliedBrokerId", required=True)
    register_check_code: str = wire("registerCheckCode", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyBrokerIdResponseHeader:
    cluster_name: str | None = wire("clusterName")
    broker_name: str | None = wire("brokerName")


@dataclass(frozen=True, slots=True, kw_only=True)
class NotifyRouteChangedRequestHeader:
    """NOTIFY_ROUTE_CHANGED (1901, ours): the master of brokerName changed."""

    broker_name: str = wire("brokerName", required=True)
