"""The admin requests mqadmin, the dashboard and the exporter send, against one `rmqstore serve`
per module, each answered with RocketMQ's body shapes and field names (read here as JSON, not
through our own decoders, where the shape is the point): runtime info with real values, broker
config read and updated through the allow-list, topics deleted on broker and NameServer, groups,
connections, who consumes, reset offset obeyed by our consumer, running info and direct
consumption answered by it, stats by RocketMQ's keys, write permission wiped and added."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rmqstore.client import Message, Producer, PushConsumer
from rmqstore.client._member import ConsumeFromWhere
from rmqstore.protocol import RequestCode, ResponseCode, fastjson
from rmqstore.server.testing import (
    ServeProcess,
    call,
    create_topic,
    free_broker_port,
    free_port,
    max_offset,
    route,
    wait_until,
)

pytestmark = pytest.mark.timeout(120)
C, R = RequestCode, ResponseCode
FAST = {"rebalance_interval_s": 0.5, "heartbeat_s": 0.5, "route_refresh_s": 0.5,
        "broker_suspend_ms": 500, "persist_interval_s": 0.3,
        "consume_from_where": ConsumeFromWhere.FIRST_OFFSET}


class Serve:
    def __init__(self, tmp: Path) -> None:
        self.ns_port, self.broker_port = free_port(), free_broker_port()
        self.namesrv = f"127.0.0.1:{self.ns_port}"
        self.broker = f"127.0.0.1:{self.broker_port}"
        self.data = tmp / "data"
        self.proc = ServeProcess(["--data", str(self.data), "--namesrv-port", str(self.ns_port),
                                  "--broker-port", str(self.broker_port), "--http-port", "0"],
                                 tmp / "serve.log")

    def topic(self, name: str, queues: int = 2) -> str:
        create_topic(self.broker, name, queues)
        wait_until(lambda: route(self.namesrv, name), 10, what=f"route of {name}")
        return name

    def send(self, topic: str, n: int, queue_id: int = 0) -> list[str]:
        ids = []
        for i in range(n):
            r = call(self.broker, C.SEND_MESSAGE_V2, {
                "a": "PG_admin", "b": topic, "c": "TBW102", "d": "4", "e": str(queue_id),
                "f": "0", "g": str(int(time.time() * 1000)), "h": "0",
                "i": f"KEYS\x01k{i}\x02", "j": "0", "k": "false"}, b"body %d" % i)
            assert r.code == R.SUCCESS, r.remark
            ids.append(r.ext_fields["msgId"])
        return ids


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    s = Serve(tmp_path_factory.mktemp("admin"))
    s.proc.start()
    try:
        wait_until(lambda: route(s.namesrv, "TBW102"), 10, what="registration")
        yield s
    finally:
        s.proc.stop()


def ok(r) -> dict:
    assert r.code == R.SUCCESS, (r.code, r.remark)
    return fastjson.loads(r.body) if r.body else {}


def mq(topic: str, qid: int) -> tuple:
    return (("brokerName", "broker-a"), ("queueId", qid), ("topic", topic))


# -- broker: runtime info, config, stats ------------------------------------------------------

def test_runtime_info_carries_rocketmq_keys_with_real_values(serve: Serve) -> None:
    topic = serve.topic("RtInfo")
    before = ok(call(serve.broker, C.GET_BROKER_RUNTIME_INFO))["table"]
    serve.send(topic, 5)
    table = ok(call(serve.broker, C.GET_BROKER_RUNTIME_INFO))["table"]
    assert all(isinstance(v, str) for v in table.values())  # KVTable: strings only
    assert table["brokerVersionDesc"] == "V4_9_7" and table["brokerVersion"] == "403"
    put_now = int(table["msgPutTotalTodayNow"])
    assert put_now - int(before["msgPutTotalTodayNow"]) == 5
    assert int(table["putMessageTimesTotal"]) == put_now
    tps = [float(x) for x in table["putTps"].split()]
    assert len(tps) == 3 and tps[0] > 0  # 10 s, 60 s, 600 s windows
    for key in ("getFoundTps", "getMissTps", "getTotalTps", "getTransferedTps"):
        assert len(table[key].split()) == 3, key
    assert 0 < float(table["commitLogDiskRatio"]) < 1
    assert int(table["commitLogMaxOffset"]) > int(table["commitLogMinOffset"]) >= 0
    assert int(table["bootTimestamp"]) <= int(time.time() * 1000)
    assert table["runtime"].startswith("[ 0 days, 0 hours, ")
    assert table["commitLogDirCapacity"].startswith("Total : ")
    assert int(table["earliestMessageTimeStamp"]) > 0


def test_broker_config_is_read_whole_and_changed_only_through_the_allow_list(
        serve: Serve) -> None:
    r = call(serve.broker, C.GET_BROKER_CONFIG)
    props = dict(line.split("=", 1) for line in r.body.decode().splitlines())
    version = json.loads(r.ext_fields["version"])
    assert {"counter", "timestamp"} <= set(version)
    assert props["brokerName"] == "broker-a" and props["listenPort"] == str(serve.broker_port)
    assert props["flushDiskType"] == "ASYNC_FLUSH" and props["brokerPermission"] == "6"
    assert props["storePathRootDir"] == str(serve.data)
    assert props["mappedFileSizeCommitLog"] == str(16 << 20)
    assert "aclSecretKey" not in props
    for body, code, remark in (
            (b"rocketmqHome=/tmp/x\n", R.NO_PERMISSION, "Can not update config in black list."),
            (b"brokerPermission=4\nstorePathRootDir=/tmp/x\n", R.NO_PERMISSION, "storePathRootDir"),
            (b"brokerPermission=9\n", R.SYSTEM_ERROR, "expected an integer within [0, 7]"),
            (b"filterServerNums=1\n", R.NO_PERMISSION, "black list")):
        r = call(serve.broker, C.UPDATE_BROKER_CONFIG, {}, body)
        assert r.code == code and remark in r.remark, (body, r.code, r.remark)
    r = call(serve.broker, C.GET_BROKER_CONFIG)  # all or nothing: nothing changed
    assert json.loads(r.ext_fields["version"])["counter"] == version["counter"]
    assert b"brokerPermission=6\n" in r.body
    topic = serve.topic("ReadOnly")
    try:
        assert ok(call(serve.broker, C.UPDATE_BROKER_CONFIG, {}, b"brokerPermission=4\n")) == {}
        refused = call(serve.broker, C.SEND_MESSAGE_V2, {
            "a": "PG", "b": topic, "c": "TBW102", "d": "4", "e": "0", "f": "0", "g": "0",
            "h": "0", "i": "", "j": "0", "k": "false"}, b"x")
        assert refused.code == R.NO_PERMISSION and "forbidden" in refused.remark
        # the NameServer learns it with the registration: no route offers writing there
        wait_until(lambda: route(serve.namesrv, topic)["queueDatas"][0]["perm"] == 4, 10,
                   what="read-only route")
    finally:
        ok(call(serve.broker, C.UPDATE_BROKER_CONFIG, {}, b"brokerPermission=6\n"))
    wait_until(lambda: route(serve.namesrv, topic)["queueDatas"][0]["perm"] == 6, 10,
               what="writable route")
    after = json.loads(call(serve.broker, C.GET_BROKER_CONFIG).ext_fields["version"])
    assert after["counter"] == version["counter"] + 2


def test_stats_by_rocketmq_keys(serve: Serve) -> None:
    topic = serve.topic("StatsT")
    serve.send(topic, 7)
    view = ok(call(serve.broker, C.VIEW_BROKER_STATS_DATA,
                   {"statsName": "TOPIC_PUT_NUMS", "statsKey": topic}))
    assert set(view) == {"statsMinute", "statsHour", "statsDay"}
    assert all(set(w) == {"sum", "tps", "avgpt"} for w in view.values())
    assert view["statsMinute"]["sum"] == 7 and view["statsMinute"]["avgpt"] == 1.0
    size = ok(call(serve.broker, C.VIEW_BROKER_STATS_DATA,
                   {"statsName": "TOPIC_PUT_SIZE", "statsKey": topic}))
    assert size["statsDay"]["sum"] == sum(len(b"body %d" % i) for i in range(7))
    pull = call(serve.broker, C.PULL_MESSAGE, {
        "consumerGroup": "CG_stats", "topic": topic, "queueId": "0", "queueOffset": "0",
        "maxMsgNums": "32", "sysFlag": "4", "commitOffset": "0", "suspendTimeoutMillis": "0",
        "subscription": "*", "subVersion": "0"})
    assert pull.code == R.SUCCESS
    got = ok(call(serve.broker, C.VIEW_BROKER_STATS_DATA,
                  {"statsName": "GROUP_GET_NUMS", "statsKey": f"{topic}@CG_stats"}))
    assert got["statsMinute"]["sum"] == 7
    broker = ok(call(serve.broker, C.VIEW_BROKER_STATS_DATA,
                     {"statsName": "BROKER_PUT_NUMS", "statsKey": "DefaultCluster"}))
    assert broker["statsDay"]["sum"] >= 7
    r = call(serve.broker, C.VIEW_BROKER_STATS_DATA,
             {"statsName": "TOPIC_PUT_NUMS", "statsKey": "NoSuchTopic"})
    assert r.code == R.SYSTEM_ERROR and r.remark == \
        "The stats <TOPIC_PUT_NUMS> <NoSuchTopic> not exist"


# -- topics and groups -------------------------------------------------------------------------

def test_delete_topic_on_broker_removes_files_and_on_namesrv_the_route(serve: Serve) -> None:
    topic = serve.topic("DoomedT")
    serve.send(topic, 3, queue_id=1)
    files = serve.data / "consumequeue" / topic
    assert files.is_dir()
    assert ok(call(serve.broker, C.DELETE_TOPIC_IN_BROKER, {"topic": topic})) == {}
    assert not files.exists() and max_offset(serve.broker, topic, 1) == 0
    configs = ok(call(serve.broker, C.GET_ALL_TOPIC_CONFIG))["topicConfigTable"]
    assert topic not in configs
    assert call(serve.broker, C.GET_TOPIC_CONFIG, {"topic": topic}).code == R.TOPIC_NOT_EXIST
    assert route(serve.namesrv, topic) is not None  # a broker's deletion leaves the route
    assert ok(call(serve.namesrv, C.DELETE_TOPIC_IN_NAMESRV, {"topic": topic})) == {}
    assert route(serve.namesrv, topic) is None
    topics = ok(call(serve.namesrv, C.GET_ALL_TOPIC_LIST_FROM_NAMESERVER))["topicList"]
    assert topic not in topics
    r = call(serve.broker, C.DELETE_TOPIC_IN_BROKER, {"topic": "SCHEDULE_TOPIC_XXXX"})
    assert r.code == R.SYSTEM_ERROR and "conflict with system topic" in r.remark


def test_subscription_group_config_and_deletion(serve: Serve) -> None:
    group = "CG_admin_cfg"
    assert ok(call(serve.broker, C.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, {}, json.dumps(
        {"groupName": group, "retryMaxTimes": 3, "consumeBroadcastEnable": False}).encode())) == {}
    cfg = ok(call(serve.broker, C.GET_SUBSCRIPTIONGROUP_CONFIG, {"group": group}))
    assert cfg["groupName"] == group and cfg["retryMaxTimes"] == 3 and cfg["consumeEnable"]
    topic = serve.topic("GroupOffT", 1)
    serve.send(topic, 2)
    assert call(serve.broker, C.UPDATE_CONSUMER_OFFSET, {
        "consumerGroup": group, "topic": topic, "queueId": "0", "commitOffset": "2"}).code == 0
    assert ok(call(serve.broker, C.QUERY_TOPIC_CONSUME_BY_WHO, {"topic": topic})) == \
        {"groupList": [group]}
    assert ok(call(serve.broker, C.DELETE_SUBSCRIPTIONGROUP,
                   {"groupName": group, "cleanOffset": "true"})) == {}
    groups = ok(call(serve.broker, C.GET_ALL_SUBSCRIPTIONGROUP_CONFIG))["subscriptionGroupTable"]
    assert group not in groups
    assert call(serve.broker, C.GET_SUBSCRIPTIONGROUP_CONFIG,
                {"group": group}).code == R.SUBSCRIPTION_GROUP_NOT_EXIST
    assert ok(call(serve.broker, C.QUERY_TOPIC_CONSUME_BY_WHO, {"topic": topic})) == \
        {"groupList": []}  # its offsets went with it


# -- clients: connections, reset, running info, direct consumption ---------------------------

def test_online_clients_connections_reset_running_info_and_direct_consumption(
        serve: Serve) -> None:
    topic, group = serve.topic("ClientT", 2), "CG_clients"
    got: list[bytes] = []

    def committed() -> int:
        total = 0
        for qid in range(2):
            r = call(serve.broker, C.QUERY_CONSUMER_OFFSET,
                     {"consumerGroup": group, "topic": topic, "queueId": str(qid)})
            total += int(r.ext_fields["offset"]) if r.code == 0 else 0
        return total

    async def wait(pred) -> None:
        deadline = time.monotonic() + 15
        while not pred():
            assert time.monotonic() < deadline, "condition not met in 15 s"
            await asyncio.sleep(0.05)

    async def main() -> None:
        async with Producer("PG_clients", serve.namesrv) as p:
            sent = [await p.send(Message(topic, b"m%d" % i)) for i in range(6)]
            c = PushConsumer(group, serve.namesrv, **FAST)
            c.subscribe(topic)
            c.on_message(lambda msgs: got.extend(m.body for m in msgs))
            async with c:
                await wait(lambda: len(got) >= 6 and committed() == 6)
                check_connections(serve, c.client_id, p.client_id, group, topic)
                # reset to the start of time: the consumer obeys and reads everything again
                r = call(serve.broker, C.INVOKE_BROKER_TO_RESET_OFFSET, {
                    "topic": topic, "group": group, "timestamp": "0", "isForce": "true"})
                assert ok(r)["offsetTable"] == {mq(topic, 0): 0, mq(topic, 1): 0}
                await wait(lambda: len(got) >= 12 and committed() == 6)
                assert sorted(got[6:]) == sorted(got[:6])
                # the broker asks the consumer, which runs on this loop: ask from a thread
                await asyncio.to_thread(check_running_info, serve, c.client_id, group, topic)
                await asyncio.to_thread(check_direct, serve, c.client_id, group,
                                        sent[2].offset_msg_id)
                assert got[12:] == [b"m2"] and committed() == 6  # no offset moved
        # skipAccumulatedMessage (-1: each queue's max): CONSUMER_NOT_ONLINE once it left
        r = call(serve.broker, C.INVOKE_BROKER_TO_RESET_OFFSET, {
            "topic": topic, "group": group, "timestamp": "-1", "isForce": "true"})
        assert r.code == R.CONSUMER_NOT_ONLINE and "Consumer not online" in r.remark

    asyncio.run(asyncio.wait_for(main(), 60))


def check_connections(serve: Serve, consumer_id: str, producer_id: str, group: str,
                      topic: str) -> None:
    producers = ok(call(serve.broker, C.GET_PRODUCER_CONNECTION_LIST,
                        {"producerGroup": "PG_clients"}))
    [conn] = producers["connectionSet"]
    assert set(conn) == {"clientAddr", "clientId", "language", "version"}
    assert conn["clientId"] == producer_id and conn["language"] == "PYTHON"
    table = ok(call(serve.broker, C.GET_ALL_PRODUCER_INFO))["data"]
    assert [p["clientId"] for p in table["PG_clients"]] == [producer_id]
    consumers = ok(call(serve.broker, C.GET_CONSUMER_CONNECTION_LIST, {"consumerGroup": group}))
    assert [x["clientId"] for x in consumers["connectionSet"]] == [consumer_id]
    assert consumers["messageModel"] == "CLUSTERING" and topic in consumers["subscriptionTable"]
    assert ok(call(serve.broker, C.QUERY_TOPIC_CONSUME_BY_WHO, {"topic": topic})) == \
        {"groupList": [group]}
    assert call(serve.broker, C.GET_PRODUCER_CONNECTION_LIST,
                {"producerGroup": "PG_none"}).code == R.SYSTEM_ERROR


def check_running_info(serve: Serve, client_id: str, group: str, topic: str) -> None:
    info = ok(call(serve.broker, C.GET_CONSUMER_RUNNING_INFO,
                   {"consumerGroup": group, "clientId": client_id, "jstackEnable": "true"}))
    assert info["properties"]["PROP_CONSUME_TYPE"] == "CONSUME_PASSIVELY"
    assert info["properties"]["PROP_CONSUMEORDERLY"] == "false"
    assert {s["topic"] for s in info["subscriptionSet"]} == {topic, f"%RETRY%{group}"}
    queues = info["mqTable"]
    assert {mq(topic, 0), mq(topic, 1)} <= set(queues)
    assert {"commitOffset", "cachedMsgCount", "locked", "droped"} <= set(queues[mq(topic, 0)])
    status = info["statusTable"][topic]
    assert set(status) == {"consumeFailedMsgs", "consumeFailedTPS", "consumeOKTPS", "consumeRT",
                           "pullRT", "pullTPS"} and status["consumeOKTPS"] > 0
    assert "MainThread" in info["jstack"]
    r = call(serve.broker, C.GET_CONSUMER_RUNNING_INFO,
             {"consumerGroup": group, "clientId": "nobody@1"})
    assert r.code == R.SYSTEM_ERROR and "not online" in r.remark


def check_direct(serve: Serve, client_id: str, group: str, offset_msg_id: str) -> None:
    result = ok(call(serve.broker, C.CONSUME_MESSAGE_DIRECTLY, {
        "consumerGroup": group, "clientId": client_id, "msgId": offset_msg_id}, timeout_s=15))
    assert result["consumeResult"] == "CR_SUCCESS" and result["order"] is False
    assert set(result) >= {"autoCommit", "consumeResult", "order", "spentTimeMills"}


# -- name server ----------------------------------------------------------------------------

def test_name_server_write_permission_topics_by_cluster_and_system_topics(serve: Serve) -> None:
    topic = serve.topic("PermT")
    wiped = call(serve.namesrv, C.WIPE_WRITE_PERM_OF_BROKER, {"brokerName": "broker-a"})
    assert wiped.code == R.SUCCESS and int(wiped.ext_fields["wipeTopicCount"]) > 0
    assert route(serve.namesrv, topic)["queueDatas"][0]["perm"] == 4
    added = call(serve.namesrv, C.ADD_WRITE_PERM_OF_BROKER, {"brokerName": "broker-a"})
    assert added.ext_fields["addTopicCount"] == wiped.ext_fields["wipeTopicCount"]
    assert route(serve.namesrv, topic)["queueDatas"][0]["perm"] == 6
    by_cluster = ok(call(serve.namesrv, C.GET_TOPICS_BY_CLUSTER, {"cluster": "DefaultCluster"}))
    assert topic in by_cluster["topicList"]
    assert ok(call(serve.namesrv, C.GET_TOPICS_BY_CLUSTER, {"cluster": "Other"}))["topicList"] \
        == []
    system = ok(call(serve.namesrv, C.GET_SYSTEM_TOPIC_LIST_FROM_NS))
    assert system == {"brokerAddr": serve.broker, "topicList": ["DefaultCluster", "broker-a"]}
