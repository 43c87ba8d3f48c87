"""The JSON bodies of RocketMQ 5's controller requests and responses (fastjson's
RemotingSerializable), read and written in one place.

Field names are those of remoting/.../protocol/body/ (SyncStateSet, ElectMasterResponseBody,
BrokerMemberGroup, BrokerReplicasInfo, EpochEntryCache) and protocol/EpochEntry of RocketMQ 5:

  SyncStateSet            {"syncStateSet":[1,2],"syncStateSetEpoch":3}
  ElectMasterResponseBody {"brokerMemberGroup":{"brokerAddrs":{"1":"10.0.0.1:10911"},
                           "brokerName":"broker-a","cluster":"c1"},"syncStateSet":[1]}
  BrokerReplicasInfo      {"replicasInfoTable":{"broker-a":{"inSyncReplicas":[{"alive":true,
                           "brokerAddress":"10.0.0.1:10911","brokerId":1,"brokerName":"broker-a"}],
                           "masterAddress":"10.0.0.1:10911","masterBrokerId":1,"masterEpoch":2,
                           "notInSyncReplicas":[],"syncStateSetEpoch":2}}}
  EpochEntryCache         {"brokerId":1,"brokerName":"broker-a","clusterName":"c1","epochList":
                           [{"endOffset":4096,"epoch":1,"startOffset":0}],"maxOffset":8192}
  broker names            ["broker-a","broker-b"]  (CONTROLLER_GET_SYNC_STATE_DATA's request)

Map keys are quoted, which fastjson reads as the Long keys Java writes bare (fastjson.py).
A body that is not the shape named raises ValueError.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from . import fastjson

JAVA_LONG_MAX = 2**63 - 1  # EpochEntry.endOffset of the last entry (Long.MAX_VALUE)


@dataclass(frozen=True, slots=True)
class SyncStateSet:
    """A broker set's in-sync replicas (controller broker ids) and the epoch of that set."""

    members: frozenset[int]
    epoch: int

    def encode(self) -> bytes:
        return fastjson.dumps({"syncStateSet": sorted(self.members),
                               "syncStateSetEpoch": self.epoch})


def decode_sync_state_set(body: bytes) -> SyncStateSet:
    obj = _object(body, "SyncStateSet")
    return SyncStateSet(_ids(obj.get("syncStateSet")), _int(obj.get("syncStateSetEpoch", 0)))


@dataclass(frozen=True, slots=True)
class BrokerMemberGroup:
    cluster: str
    broker_name: str
    broker_addrs: dict[int, str]

    def to_json(self) -> dict[str, Any]:
        return {"brokerAddrs": {str(k): v for k, v in sorted(self.broker_addrs.items())},
                "brokerName": self.broker_name, "cluster": self.cluster}


def encode_elect_master_body(group: BrokerMemberGroup | None, members: Iterable[int]) -> bytes:
    obj: dict[str, Any] = {"syncStateSet": sorted(members)}
    if group is not None:
        obj["brokerMemberGroup"] = group.to_json()
    return fastjson.dumps(obj)


def decode_elect_master_body(body: bytes) -> tuple[BrokerMemberGroup | None, frozenset[int]]:
    obj = _object(body, "ElectMasterResponseBody")
    group = obj.get("brokerMemberGroup")
    member_group = None
    if isinstance(group, dict):
        addrs = group.get("brokerAddrs") or {}
        if not isinstance(addrs, dict):
            raise ValueError("ElectMasterResponseBody: brokerAddrs is not a map")
        member_group = BrokerMemberGroup(str(group.get("cluster") or ""),
                                         str(group.get("brokerName") or ""),
                                         {_int(k): str(v) for k, v in addrs.items()})
    return member_group, _ids(obj.get("syncStateSet"))


@dataclass(frozen=True, slots=True)
class ReplicaIdentity:
    broker_name: str
    broker_id: int
    broker_address: str | None
    alive: bool

    def to_json(self) -> dict[str, Any]:
        return {"alive": self.alive, "brokerAddress": self.broker_address,
                "brokerId": self.broker_id, "brokerName": self.broker_name}


@dataclass(frozen=True, slots=True)
class ReplicasInfo:
    master_broker_id: int | None
    master_address: str | None
    master_epoch: int
    sync_state_set_epoch: int
    in_sync: tuple[ReplicaIdentity, ...]
    not_in_sync: tuple[ReplicaIdentity, ...]

    def to_json(self) -> dict[str, Any]:
        return {"inSyncReplicas": [r.to_json() for r in self.in_sync],
                "masterAddress": self.master_address, "masterBrokerId": self.master_broker_id,
                "masterEpoch": self.master_epoch,
                "notInSyncReplicas": [r.to_json() for r in self.not_in_sync],
                "syncStateSetEpoch": self.sync_state_set_epoch}


def encode_replicas_info(table: dict[str, ReplicasInfo]) -> bytes:
    return fastjson.dumps({"replicasInfoTable": {k: v.to_json() for k, v in table.items()}})


def decode_replicas_info(body: bytes) -> dict[str, ReplicasInfo]:
    table = _object(body, "BrokerReplicasInfo").get("replicasInfoTable") or {}
    out = {}
    for name, info in table.items():
        if not isinstance(info, dict):
            raise ValueError(f"BrokerReplicasInfo: {name} is not an object")
        master = info.get("masterBrokerId")
        out[name] = ReplicasInfo(
            None if master is None else _int(master), info.get("masterAddress"),
            _int(info.get("masterEpoch", 0)), _int(info.get("syncStateSetEpoch", 0)),
            tuple(_replica(r) for r in info.get("inSyncReplicas") or ()),
            tuple(_replica(r) for r in info.get("notInSyncReplicas") or ()))
    return out


def encode_broker_names(names: Iterable[str]) -> bytes:
    return fastjson.dumps(list(names))


def decode_broker_names(body: bytes) -> list[str]:
    names = fastjson.loads(body) if body else []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError("broker names: not a JSON list of strings")
    return names


@dataclass(frozen=True, slots=True)
class EpochEntryCache:
    """GET_BROKER_EPOCH_CACHE (1007)'s answer: a broker's epoch file, ends filled in."""

    cluster_name: str
    broker_name: str
    broker_id: int
    epochs: tuple[tuple[int, int, int], ...]  # (epoch, start offset, end offset)
    max_offset: int

    def encode(self) -> bytes:
        return fastjson.dumps({
            "brokerId": self.broker_id, "brokerName": self.broker_name,
            "clusterName": self.cluster_name,
            "epochList": [{"endOffset": end, "epoch": e, "startOffset": start}
                          for e, start, end in self.epochs],
            "maxOffset": self.max_offset})


def decode_epoch_entry_cache(body: bytes) -> EpochEntryCache:
    obj = _object(body, "EpochEntryCache")
    epochs = tuple((_int(e.get("epoch")), _int(e.get("startOffset")),
                    _int(e.get("endOffset", JAVA_LONG_MAX)))
                   for e in obj.get("epochList") or () if isinstance(e, dict))
    return EpochEntryCache(str(obj.get("clusterName") or ""), str(obj.get("brokerName") or ""),
                           _int(obj.get("brokerId", 0)), epochs, _int(obj.get("maxOffset", 0)))


def _replica(obj: Any) -> ReplicaIdentity:
    if not isinstance(obj, dict):
        raise ValueError("BrokerReplicasInfo: a replica is not an object")
    return ReplicaIdentity(str(obj.get("brokerName") or ""), _int(obj.get("brokerId")),
                           obj.get("brokerAddress"), bool(obj.get("alive")))


def _object(body: bytes, what: str) -> dict[str, Any]:
    try:
        obj = fastjson.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{what}: not JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{what}: not a JSON object")
    return obj


def _ids(value: Any) -> frozenset[int]:
    if value is None:
        return frozenset()
    if not isinstance(value, list):
        raise ValueError("syncStateSet is not a list")
    return frozenset(_int(v) for v in value)


def _int(value: Any) -> int:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{value!r} is not an integer")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not an integer") from None
