"""The ACL matrix: every request code the broker and the NameServer serve (found by asking), sent
by no account, a wrong secret, a normal account without and with the permission, and an admin
account, to `rmqstore serve` with aclEnable=true and RocketMQ's shipped plain_acl.yml.

Expected, written here by hand (not read from the server's table): "admin" codes refuse every
non-admin; "resource" codes refuse the normal account where its plain_acl.yml denies the topic
or group; "signed" codes need only a valid signature. A refusal is NO_PERMISSION with an ACL
reason, and a refused write leaves no trace (checked after each one); no response carries a
secret key.
"""

from __future__ import annotations

import itertools
import json
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rmqstore.protocol import FrameDecoder, RemotingCommand, RequestCode, ResponseCode, encode
from rmqstore.protocol.acl_signature import Credentials, sign_request
from rmqstore.protocol.header_codec import encode_header
from rmqstore.protocol.headers import RegisterBrokerRequestHeader
from rmqstore.protocol.message import encode_batch
from rmqstore.protocol.register_body import RegisterBrokerBody, encode_register_body
from rmqstore.server.testing import call
from tests.server.acl_files import (
    ADMIN,
    ALLOWED_GROUP,
    ALLOWED_TOPIC,
    DENIED_GROUP,
    DENIED_TOPIC,
    NORMAL,
    WRONG,
)
from tests.server.acl_serve import AclServe

pytestmark = pytest.mark.timeout(180)

C = RequestCode
ACL_REASONS = ("No accessKey is configured", "No acl config for ", "Check signature failed",
               "Need admin permission", "No default permission")
SECRETS = ("12345678", WRONG.secret_key)
_ids = itertools.count(1)


@dataclass(frozen=True)
class Case:
    """Who asks, about which topic and group, and whether each class of code should pass."""
    name: str
    credentials: Credentials | None
    topic: str
    group: str
    passes: frozenset[str]  # of "admin", "resource", "signed"


CASES = [
    Case("no-credentials", None, ALLOWED_TOPIC, ALLOWED_GROUP, frozenset()),
    Case("wrong-secret", WRONG, ALLOWED_TOPIC, ALLOWED_GROUP, frozenset()),
    Case("normal-denied", NORMAL, DENIED_TOPIC, DENIED_GROUP, frozenset({"signed"})),
    Case("normal-allowed", NORMAL, ALLOWED_TOPIC, ALLOWED_GROUP,
         frozenset({"signed", "resource"})),
    Case("admin", ADMIN, DENIED_TOPIC, DENIED_GROUP, frozenset({"signed", "resource", "admin"})),
]


@dataclass
class Ask:
    """One request of the matrix: its class, how to build it, and (for writes) how to see
    whether it changed anything: ``effect()`` after the request is truthy iff it did."""
    kind: str
    build: Callable[[Case, str], tuple[dict[str, str], bytes]]
    prepare: Callable[[AclServe, Case, str], Callable[[], bool]] | None = None


class Session:
    """One connection kept open for a whole row (a heartbeat's consumer lives as long as its
    connection), every request signed with the row's credentials."""

    def __init__(self, addr: str, credentials: Credentials | None) -> None:
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=5.0)
        self.credentials = credentials
        self.decoder = FrameDecoder()
        self.opaques = itertools.count(1)

    def call(self, code: int, ext: dict[str, str], body: bytes) -> RemotingCommand:
        request = RemotingCommand.request(code, ext, body)
        if self.credentials is not None:
            sign_request(request, self.credentials)
        request.opaque = next(self.opaques)
        self.sock.sendall(encode(request))
        while True:
            data = self.sock.recv(65536)
            assert data, f"the server closed the connection after code {code}"
            for cmd in self.decoder.feed(data):
                if cmd.is_response and cmd.opaque == request.opaque:
                    return cmd

    def close(self) -> None:
        self.sock.close()


_admin_sessions: dict[str, Session] = {}  # one connection per server for every check


def admin_call(addr: str, code: int, ext: dict[str, str] | None = None,
               body: bytes = b"") -> RemotingCommand:
    session = _admin_sessions.get(addr)
    if session is None:
        session = _admin_sessions[addr] = Session(addr, ADMIN)
    return session.call(code, dict(ext or {}), body)


def queue_max(serve: AclServe, case: Case) -> int:
    r = admin_call(serve.broker, C.GET_MAX_OFFSET, {"topic": case.topic, "queueId": "0"})
    return int(r.ext_fields["offset"])


def send_v1(case: Case, uid: str) -> tuple[dict[str, str], bytes]:
    return ({"producerGroup": "PG_acl", "topic": case.topic, "defaultTopic": "TBW102",
             "defaultTopicQueueNums": "4", "queueId": "0", "sysFlag": "0",
             "bornTimestamp": str(int(time.time() * 1000)), "flag": "0", "properties": "",
             "reconsumeTimes": "0", "unitMode": "false", "batch": "false"}, uid.encode())


def send_v2(case: Case, uid: str) -> tuple[dict[str, str], bytes]:
    return ({"a": "PG_acl", "b": case.topic, "c": "TBW102", "d": "4", "e": "0", "f": "0",
             "g": str(int(time.time() * 1000)), "h": "0", "i": "", "j": "0", "k": "false",
             "m": "false"}, uid.encode())


def send_batch(case: Case, uid: str) -> tuple[dict[str, str], bytes]:
    ext, _ = send_v2(case, uid)
    return {**ext, "m": "true"}, encode_batch([(uid.encode(), 0, "")])


def stored(serve: AclServe, case: Case, uid: str) -> Callable[[], bool]:
    before = queue_max(serve, case)
    return lambda: queue_max(serve, case) != before


def group_offset(serve: AclServe, case: Case) -> int | None:
    r = admin_call(serve.broker, C.QUERY_CONSUMER_OFFSET,
                   {"consumerGroup": case.group, "topic": case.topic, "queueId": "0"})
    return int(r.ext_fields["offset"]) if r.code == 0 else None


def offset_changed(serve: AclServe, case: Case, uid: str) -> Callable[[], bool]:
    """The commit names an offset the queue holds (the broker refuses one past its end) and
    that differs from the group's current one."""
    before = group_offset(serve, case)
    if queue_max(serve, case) == 0:
        ext, body = send_v2(case, uid)
        assert admin_call(serve.broker, C.SEND_MESSAGE_V2, ext, body).code == 0
    hi = queue_max(serve, case)
    commit_to[uid] = hi if before != hi else 0
    return lambda: group_offset(serve, case) != before


commit_to: dict[str, int] = {}


def topic_created(serve: AclServe, case: Case, uid: str) -> Callable[[], bool]:
    return lambda: uid in json.loads(admin_call(serve.broker, C.GET_ALL_TOPIC_CONFIG).body)[
        "topicConfigTable"]


def group_created(serve: AclServe, case: Case, uid: str) -> Callable[[], bool]:
    return lambda: uid in json.loads(admin_call(
        serve.broker, C.GET_ALL_SUBSCRIPTIONGROUP_CONFIG).body)["subscriptionGroupTable"]


def consumer_registered(serve: AclServe, case: Case, uid: str) -> Callable[[], bool]:
    def seen() -> bool:
        r = admin_call(serve.broker, C.GET_CONSUMER_LIST_BY_GROUP, {"consumerGroup": case.group})
        return r.code == 0 and uid in json.loads(r.body)["consumerIdList"]
    return seen


def lock_body(case: Case, client: str, queue_id: int) -> bytes:
    return json.dumps({"consumerGroup": case.group, "clientId": client, "mqSet": [
        {"topic": case.topic, "brokerName": "broker-a", "queueId": queue_id}]}).encode()


def lock_taken(serve: AclServe, case: Case, uid: str) -> Callable[[], bool]:
    queue_id = next(_ids)  # a queue no other row locks
    lock_queue[uid] = queue_id

    def taken() -> bool:  # another client cannot lock it: the asker holds it
        r = admin_call(serve.broker, C.LOCK_BATCH_MQ, body=lock_body(case, "owner", queue_id))
        return not json.loads(r.body)["lockOKMQSet"]
    return taken


lock_queue: dict[str, int] = {}


def kv_key(serve: AclServe, case: Case, uid: str) -> Callable[[], bool]:
    def exists() -> bool:
        return admin_call(serve.namesrv, C.GET_KV_CONFIG,
                          {"namespace": "ACL_TEST", "key": uid}).code == 0
    return exists


def kv_deleted(serve: AclServe, case: Case, uid: str) -> Callable[[], bool]:
    r = admin_call(serve.namesrv, C.PUT_KV_CONFIG,
                   {"namespace": "ACL_TEST", "key": uid, "value": "kept"})
    assert r.code == 0
    exists = kv_key(serve, case, uid)
    return lambda: not exists()


def fake_broker(uid: str) -> dict[str, str]:
    return {"brokerName": uid, "brokerAddr": "127.0.0.1:1", "clusterName": "DefaultCluster",
            "brokerId": "0"}


def register_body(uid: str) -> tuple[dict[str, str], bytes]:
    body = encode_register_body(RegisterBrokerBody(filter_server_list=[]))
    ext = encode_header(RegisterBrokerRequestHeader(
        broker_name=uid, broker_addr="127.0.0.1:1", cluster_name="DefaultCluster",
        ha_server_addr="127.0.0.1:2", broker_id=0))
    return ext, body


def broker_known(serve: AclServe, uid: str) -> bool:
    info = json.loads(admin_call(serve.namesrv, C.GET_BROKER_CLUSTER_INFO).body)
    return uid in info["brokerAddrTable"]


def broker_registered(serve: AclServe, case: Case, uid: str) -> Callable[[], bool]:
    return lambda: broker_known(serve, uid)


def broker_unregistered(serve: AclServe, case: Case, uid: str) -> Callable[[], bool]:
    holder = Session(serve.namesrv, ADMIN)  # a broker is known while its connection lives
    ext, body = register_body(uid)
    assert holder.call(C.REGISTER_BROKER, ext, body).code == 0

    def gone() -> bool:
        try:
            return not broker_known(serve, uid)
        finally:
            holder.close()
    return gone


def heartbeat(case: Case, uid: str) -> tuple[dict[str, str], bytes]:
    return {}, json.dumps({"clientID": uid, "producerDataSet": [], "consumerDataSet": [{
        "groupName": case.group, "consumeType": "CONSUME_PASSIVELY",
        "messageModel": "CLUSTERING", "consumeFromWhere": "CONSUME_FROM_LAST_OFFSET",
        "unitMode": False, "subscriptionDataSet": [{
            "topic": case.topic, "subString": "*", "tagsSet": [], "codeSet": [],
            "subVersion": 0, "expressionType": "TAG", "classFilterMode": False}]}]}).encode()


def config_version(serve: AclServe) -> int:
    r = admin_call(serve.broker, C.GET_BROKER_CONFIG)
    return json.loads(r.ext_fields["version"])["counter"]


def config_updated(serve: AclServe, case: Case, uid: str) -> Callable[[], bool]:
    before = config_version(serve)
    return lambda: config_version(serve) != before


def topic_deleted(serve: AclServe, case: Case, uid: str) -> Callable[[], bool]:
    serve.create_topic(uid, 1)  # as admin; routed before it answers
    return lambda: admin_call(serve.broker, C.GET_TOPIC_CONFIG,
                              {"topic": uid}).code == ResponseCode.TOPIC_NOT_EXIST


def route_deleted(serve: AclServe, case: Case, uid: str) -> Callable[[], bool]:
    serve.create_topic(uid, 1)
    return lambda: admin_call(serve.namesrv, C.GET_ROUTEINFO_BY_TOPIC,
                              {"topic": uid}).code == ResponseCode.TOPIC_NOT_EXIST


def group_deleted(serve: AclServe, case: Case, uid: str) -> Callable[[], bool]:
    assert admin_call(serve.broker, C.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP,
                      body=json.dumps({"groupName": uid}).encode()).code == 0
    return lambda: admin_call(serve.broker, C.GET_SUBSCRIPTIONGROUP_CONFIG,
                              {"group": uid}).code == ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST


def topic_ext(*keys: str) -> Callable[[Case, str], tuple[dict[str, str], bytes]]:
    """A header of the case's topic, queue 0 and group under the given field names."""
    def build(case: Case, uid: str) -> tuple[dict[str, str], bytes]:
        values = {"topic": case.topic, "queueId": "0", "consumerGroup": case.group,
                  "group": case.group, "timestamp": "0", "offset": "0", "key": uid,
                  "maxNum": "1", "beginTimestamp": "0", "endTimestamp": "1", "clientID": uid}
        return {k: values[k] for k in keys}, b""
    return build


BROKER: dict[int, Ask] = {
    C.SEND_MESSAGE: Ask("resource", send_v1, stored),
    C.SEND_MESSAGE_V2: Ask("resource", send_v2, stored),
    C.SEND_BATCH_MESSAGE: Ask("resource", send_batch, stored),
    C.PULL_MESSAGE: Ask("resource", lambda case, uid: ({
        "consumerGroup": case.group, "topic": case.topic, "queueId": "0", "queueOffset": "0",
        "maxMsgNums": "1", "sysFlag": "4", "commitOffset": "0", "suspendTimeoutMillis": "0",
        "subscription": "*", "subVersion": "0"}, b"")),
    C.QUERY_MESSAGE: Ask("resource", topic_ext("topic", "key", "maxNum", "beginTimestamp",
                                               "endTimestamp")),
    C.VIEW_MESSAGE_BY_ID: Ask("signed", topic_ext("offset")),
    C.QUERY_CONSUMER_OFFSET: Ask("resource", topic_ext("consumerGroup", "topic", "queueId")),
    C.UPDATE_CONSUMER_OFFSET: Ask("resource", lambda case, uid: ({
        "consumerGroup": case.group, "topic": case.topic, "queueId": "0",
        "commitOffset": str(commit_to[uid])}, b""), offset_changed),
    C.SEARCH_OFFSET_BY_TIMESTAMP: Ask("signed", topic_ext("topic", "queueId", "timestamp")),
    C.GET_MAX_OFFSET: Ask("signed", topic_ext("topic", "queueId")),
    C.GET_MIN_OFFSET: Ask("signed", topic_ext("topic", "queueId")),
    C.GET_EARLIEST_MSG_STORETIME: Ask("signed", topic_ext("topic", "queueId")),
    C.UPDATE_AND_CREATE_TOPIC: Ask("admin", lambda case, uid: ({
        "topic": uid, "defaultTopic": "TBW102", "readQueueNums": "1", "writeQueueNums": "1",
        "perm": "6", "topicFilterType": "SINGLE_TAG", "topicSysFlag": "0", "order": "false"},
        b""), topic_created),
    C.GET_ALL_TOPIC_CONFIG: Ask("admin", topic_ext()),
    C.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP: Ask("admin", lambda case, uid: (
        {}, json.dumps({"groupName": uid}).encode()), group_created),
    C.GET_ALL_SUBSCRIPTIONGROUP_CONFIG: Ask("admin", topic_ext()),
    C.HEART_BEAT: Ask("resource", heartbeat, consumer_registered),
    C.UNREGISTER_CLIENT: Ask("resource", topic_ext("clientID", "consumerGroup")),
    C.GET_CONSUMER_LIST_BY_GROUP: Ask("resource", topic_ext("consumerGroup")),
    C.CONSUMER_SEND_MSG_BACK: Ask("resource", lambda case, uid: ({
        "offset": "0", "group": case.group, "delayLevel": "0", "originTopic": case.topic},
        b"")),
    C.END_TRANSACTION: Ask("signed", lambda case, uid: ({
        "producerGroup": "PG_acl", "tranStateTableOffset": "0", "commitLogOffset": "0",
        "commitOrRollback": "0", "fromTransactionCheck": "false", "msgId": uid}, b"")),
    C.LOCK_BATCH_MQ: Ask("resource", lambda case, uid: (
        {}, lock_body(case, uid, lock_queue[uid])), lock_taken),
    C.UNLOCK_BATCH_MQ: Ask("resource", lambda case, uid: ({}, lock_body(case, uid, 0))),
    C.GET_ALL_DELAY_OFFSET: Ask("admin", topic_ext()),
    C.GET_ALL_CONSUMER_OFFSET: Ask("admin", topic_ext()),  # what a slave copies
    C.CHECK_CLIENT_CONFIG: Ask("signed", lambda case, uid: ({}, json.dumps({
        "group": case.group, "subscriptionData": {"topic": case.topic,
                                                  "subString": "*"}}).encode())),
    C.GET_TOPIC_STATS_INFO: Ask("signed", topic_ext("topic")),
    C.GET_CONSUMER_CONNECTION_LIST: Ask("signed", topic_ext("consumerGroup")),
    C.GET_CONSUME_STATS: Ask("signed", topic_ext("consumerGroup", "topic")),
    C.GET_BROKER_RUNTIME_INFO: Ask("signed", topic_ext()),
    C.GET_BROKER_CONFIG: Ask("admin", topic_ext()),
    C.UPDATE_BROKER_CONFIG: Ask("admin", lambda case, uid: ({}, b"longPollingEnable=true\n"),
                                config_updated),
    C.VIEW_BROKER_STATS_DATA: Ask("signed", lambda case, uid: (
        {"statsName": "TOPIC_PUT_NUMS", "statsKey": case.topic}, b"")),
    C.DELETE_TOPIC_IN_BROKER: Ask("admin", lambda case, uid: ({"topic": uid}, b""),
                                  topic_deleted),
    C.DELETE_SUBSCRIPTIONGROUP: Ask("admin", lambda case, uid: ({"groupName": uid}, b""),
                                    group_deleted),
    C.QUERY_TOPIC_CONSUME_BY_WHO: Ask("signed", topic_ext("topic")),
    C.GET_TOPIC_CONFIG: Ask("admin", topic_ext("topic")),
    C.GET_SUBSCRIPTIONGROUP_CONFIG: Ask("admin", lambda case, uid: ({"group": case.group}, b"")),
    C.GET_PRODUCER_CONNECTION_LIST: Ask("signed", lambda case, uid: (
        {"producerGroup": "PG_acl"}, b"")),
    C.GET_ALL_PRODUCER_INFO: Ask("admin", topic_ext()),
    C.INVOKE_BROKER_TO_RESET_OFFSET: Ask("admin", lambda case, uid: (
        {"topic": case.topic, "group": case.group, "timestamp": "0", "isForce": "true"}, b"")),
    C.GET_CONSUMER_RUNNING_INFO: Ask("admin", lambda case, uid: (
        {"consumerGroup": case.group, "clientId": uid}, b"")),
    C.CONSUME_MESSAGE_DIRECTLY: Ask("admin", lambda case, uid: (
        {"consumerGroup": case.group, "clientId": uid, "msgId": "00" * 16}, b"")),
}

NAMESRV: dict[int, Ask] = {
    C.PUT_KV_CONFIG: Ask("admin", lambda case, uid: (
        {"namespace": "ACL_TEST", "key": uid, "value": "v"}, b""), kv_key),
    C.GET_KV_CONFIG: Ask("admin", lambda case, uid: ({"namespace": "ACL_TEST", "key": "k"}, b"")),
    C.DELETE_KV_CONFIG: Ask("admin", lambda case, uid: (
        {"namespace": "ACL_TEST", "key": uid}, b""), kv_deleted),
    C.REGISTER_BROKER: Ask("admin", lambda case, uid: register_body(uid), broker_registered),
    C.UNREGISTER_BROKER: Ask("admin", lambda case, uid: (fake_broker(uid), b""),
                             broker_unregistered),
    C.GET_ROUTEINFO_BY_TOPIC: Ask("signed", lambda case, uid: ({"topic": "TBW102"}, b"")),
    C.GET_BROKER_CLUSTER_INFO: Ask("signed", topic_ext()),
    C.GET_ALL_TOPIC_LIST_FROM_NAMESERVER: Ask("signed", topic_ext()),
    C.QUERY_DATA_VERSION: Ask("admin", lambda case, uid: (fake_broker(uid), b"{}")),
    # a broker name that does not exist: the real broker keeps its write permission
    C.WIPE_WRITE_PERM_OF_BROKER: Ask("admin", lambda case, uid: ({"brokerName": uid}, b"")),
    C.ADD_WRITE_PERM_OF_BROKER: Ask("admin", lambda case, uid: ({"brokerName": uid}, b"")),
    C.DELETE_TOPIC_IN_NAMESRV: Ask("admin", lambda case, uid: ({"topic": uid}, b""),
                                   route_deleted),
    C.GET_TOPICS_BY_CLUSTER: Ask("signed", lambda case, uid: ({"cluster": "DefaultCluster"}, b"")),
    C.GET_SYSTEM_TOPIC_LIST_FROM_NS: Ask("signed", topic_ext()),
}


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AclServe]:
    srv = AclServe(tmp_path_factory.mktemp("acl"))
    srv.start()
    try:
        for topic in (ALLOWED_TOPIC, DENIED_TOPIC):
            srv.create_topic(topic)
        yield srv
    finally:
        for session in _admin_sessions.values():
            session.close()
        _admin_sessions.clear()
        srv.stop()


def served(addr: str) -> set[int]:
    """The codes a server answers with anything but REQUEST_CODE_NOT_SUPPORTED."""
    probe = set(RequestCode) | set(range(400))
    return {code for code in probe
            if admin_call(addr, code).code != ResponseCode.REQUEST_CODE_NOT_SUPPORTED}


def test_every_served_code_is_in_the_matrix(serve: AclServe) -> None:
    assert served(serve.broker) == set(BROKER)
    assert served(serve.namesrv) == set(NAMESRV)


def is_refusal(r: RemotingCommand) -> bool:
    return r.code == ResponseCode.NO_PERMISSION and (r.remark or "").startswith(ACL_REASONS)


def no_secret_in(r: RemotingCommand) -> bool:
    text = (r.remark or "") + json.dumps(r.ext_fields) + r.body.decode("latin-1")
    return not any(secret in text for secret in SECRETS)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("where", ["broker", "namesrv"])
def test_acl_matrix(serve: AclServe, where: str, case: Case) -> None:
    table, addr = (BROKER, serve.broker) if where == "broker" else (NAMESRV, serve.namesrv)
    wrong: list[str] = []
    session = Session(addr, case.credentials)
    try:
        for code, ask in table.items():
            uid = f"acl_{case.name.replace('-', '_')}_{code}_{next(_ids)}"
            effect = ask.prepare(serve, case, uid) if ask.prepare is not None else None
            ext, body = ask.build(case, uid)
            r = session.call(int(code), ext, body)
            assert no_secret_in(r), f"code {code} answered a secret"
            passes = ask.kind in case.passes
            if is_refusal(r) == passes:
                wrong.append(f"{C(code).name} ({ask.kind}): {r.code} {r.remark!r}")
            elif effect is not None and effect() != passes:
                wrong.append(f"{C(code).name}: {'no' if passes else 'a'} side effect")
    finally:
        session.close()
    assert not wrong, f"{case.name} at the {where}:\n" + "\n".join(wrong)


def test_refusals_are_logged_with_their_reason(serve: AclServe) -> None:
    call(serve.broker, C.UPDATE_BROKER_CONFIG, {}, b"rocketmqHome=/tmp/x", credentials=NORMAL)
    log = serve.log()
    assert "broker ACL refused code 25 from 127.0.0.1:" in log
    assert "Need admin permission for request code=25, but accessKey=RocketMQ is not" in log
    assert not any(secret in log for secret in SECRETS)


def test_a_broker_that_cannot_sign_is_not_routed(tmp_path: Path) -> None:
    """Without aclAccessKey the NameServer (ACL on) refuses REGISTER_BROKER: no route."""
    srv = AclServe(tmp_path, broker_credentials=NORMAL)
    srv.proc.start()
    try:
        time.sleep(0.5)
        r = call(srv.namesrv, C.GET_BROKER_CLUSTER_INFO, credentials=ADMIN)
        assert r.code == 0 and json.loads(r.body)["brokerAddrTable"] == {}
        assert "Need admin permission for request code=103" in srv.log()
    finally:
        srv.stop()
