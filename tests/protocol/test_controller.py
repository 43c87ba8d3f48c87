"""RocketMQ 5's controller headers and bodies: Java's field names, known-answer JSON."""

from __future__ import annotations

import pytest

from rmqstore.protocol import HeaderFieldError, RequestCode, ResponseCode
from rmqstore.protocol.controller import (
    AlterSyncStateSetRequestHeader,
    BrokerHeartbeatRequestHeader,
    ElectMasterRequestHeader,
    GetMetaDataResponseHeader,
    RegisterBrokerToControllerResponseHeader,
)
from rmqstore.protocol.controller_body import (
    BrokerMemberGroup,
    EpochEntryCache,
    ReplicaIdentity,
    ReplicasInfo,
    SyncStateSet,
    decode_broker_names,
    decode_elect_master_body,
    decode_epoch_entry_cache,
    decode_replicas_info,
    decode_sync_state_set,
    encode_elect_master_body,
    encode_replicas_info,
)
from rmqstore.protocol.header_codec import decode_header, encode_header


def test_codes_are_rocketmq_5s() -> None:
    assert RequestCode.BROKER_HEARTBEAT == 904
    assert [RequestCode.CONTROLLER_ALTER_SYNC_STATE_SET, RequestCode.CONTROLLER_APPLY_BROKER_ID,
            RequestCode.NOTIFY_BROKER_ROLE_CHANGED] == [1001, 1013, 1008]
    assert ResponseCode.CONTROLLER_FENCED_MASTER_EPOCH == 2000
    assert ResponseCode.CONTROLLER_NOT_LEADER == 2007
    assert ResponseCode.CONTROLLER_BROKER_LIVE_INFO_NOT_EXISTS == 2016


def test_heartbeat_header_as_a_java_broker_sends_it() -> None:
    ext = {"clusterName": "c1", "brokerAddr": "10.0.0.1:10911", "brokerName": "broker-a",
           "brokerId": "2", "epoch": "3", "maxOffset": "4096", "confirmOffset": "1024",
           "heartbeatTimeoutMills": "10000", "electionPriority": "2147483647"}
    h = decode_header(BrokerHeartbeatRequestHeader, ext)
    assert (h.broker_id, h.epoch, h.max_offset, h.confirm_offset) == (2, 3, 4096, 1024)
    assert h.heartbeat_timeout_ms == 10000 and h.election_priority == 2**31 - 1
    assert encode_header(h) == ext


def test_nullable_fields_are_left_out_as_java_leaves_them() -> None:
    answer = RegisterBrokerToControllerResponseHeader(cluster_name="c1", broker_name="b")
    assert encode_header(answer) == {"clusterName": "c1", "brokerName": "b"}
    assert encode_header(GetMetaDataResponseHeader(controller_leader_address="h:9876",
                                                   is_leader=True)) == {
        "controllerLeaderAddress": "h:9876", "isLeader": "true"}


def test_elect_master_defaults_to_the_controllers_own_election() -> None:
    h = decode_header(ElectMasterRequestHeader, {"brokerName": "b"})
    assert (h.broker_id, h.designate_elect, h.cluster_name) == (-1, False, "")


def test_alter_sync_state_set_needs_the_master_epoch() -> None:
    with pytest.raises(HeaderFieldError, match="masterEpoch"):
        decode_header(AlterSyncStateSetRequestHeader, {"brokerName": "b", "masterBrokerId": "1"})


def test_sync_state_set_known_answer() -> None:
    body = SyncStateSet(frozenset({2, 1}), 3).encode()
    assert body == b'{"syncStateSet":[1,2],"syncStateSetEpoch":3}'
    assert decode_sync_state_set(body) == SyncStateSet(frozenset({1, 2}), 3)


def test_elect_master_body_reads_fastjsons_bare_keys() -> None:
    java = (b'{"brokerMemberGroup":{"brokerAddrs":{1:"10.0.0.1:10911",2:"10.0.0.2:10911"},'
            b'"brokerName":"broker-a","cluster":"c1"},"syncStateSet":[1]}')
    group, members = decode_elect_master_body(java)
    assert group == BrokerMemberGroup("c1", "broker-a", {1: "10.0.0.1:10911",
                                                         2: "10.0.0.2:10911"})
    assert members == {1}
    ours = encode_elect_master_body(group, members)
    assert ours == java.replace(b"{1:", b'{"1":').replace(b",2:", b',"2":')


def test_replicas_info_round_trip() -> None:
    me = ReplicaIdentity("broker-a", 1, "h:1", True)
    other = ReplicaIdentity("broker-a", 2, "h:2", False)
    table = {"broker-a": ReplicasInfo(1, "h:1", 4, 5, (me,), (other,))}
    body = encode_replicas_info(table)
    assert body.startswith(b'{"replicasInfoTable":{"broker-a":{"inSyncReplicas":[{"alive":true,'
                           b'"brokerAddress":"h:1","brokerId":1,"brokerName":"broker-a"}],')
    assert decode_replicas_info(body) == table


def test_epoch_entry_cache_and_broker_names() -> None:
    cache = EpochEntryCache("c1", "b", 1, ((1, 0, 4096), (2, 4096, 2**63 - 1)), 8192)
    assert decode_epoch_entry_cache(cache.encode()) == cache
    assert decode_broker_names(b'["a","b"]') == ["a", "b"]
    with pytest.raises(ValueError):
        decode_broker_names(b'{"a":1}')


@pytest.mark.parametrize("body", [b"", b"[1]", b'{"syncStateSet":"x"}',
                                  b'{"syncStateSet":[true]}', b"\xff"])
def test_a_bad_sync_state_set_is_a_value_error(body: bytes) -> None:
    with pytest.raises(ValueError):
        decode_sync_state_set(body)
