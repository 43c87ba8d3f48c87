"""Every `rmqstore admin` command (mqadmin's names and flags) against a real `rmqstore serve`:
its plain columns (output not a terminal), its --json, a failure's exit status 1 with one line,
and tables with borders on a terminal. Commands run in-process through click's runner (each
in its own event loop, as from a shell); a consumer that the broker asks on the admin's behalf
runs on a thread of its own."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result

from rmqstore.cli import main
from rmqstore.client import Message
from rmqstore.client._member import ConsumeFromWhere
from rmqstore.client.sync import Producer, PushConsumer
from rmqstore.server.testing import wait_until

pytestmark = pytest.mark.timeout(180)
TOPIC, GROUP, PGROUP = "CliOrders", "CliGroup", "CliProducers"
CLUSTER = "DefaultCluster"


class Cli:
    def __init__(self, namesrv: str, broker: str) -> None:
        self.namesrv = namesrv
        self.broker = broker
        self.runner = CliRunner()

    def run(self, *args: str, env: dict[str, str] | None = None) -> Result:
        return self.runner.invoke(main, ["admin", *args, "-n", self.namesrv], env=env or {},
                                  catch_exceptions=False)

    def ok(self, *args: str) -> str:
        r = self.run(*args)
        assert r.exit_code == 0, (args, r.output)
        return r.output

    def json(self, *args: str):
        return json.loads(self.ok(*args, "--json"))

    def fails(self, *args: str) -> str:
        r = self.run(*args)
        assert r.exit_code == 1, (args, r.output)
        lines = [line for line in r.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error: "), r.output
        return lines[0]


def rows(text: str) -> list[list[str]]:
    """Plain columns: a '#'-prefixed header, then rows split on runs of spaces."""
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines[0].startswith("#"), text
    return [line.split() for line in lines]


@pytest.fixture(scope="module")
def cli(server) -> Iterator[Cli]:
    c = Cli(server.namesrv, server.broker_addr)
    c.ok("updateTopic", "-c", CLUSTER, "-t", TOPIC, "-r", "2", "-w", "2")
    wait_until(lambda: c.run("topicRoute", "-t", TOPIC).exit_code == 0, 10, what="route")
    yield c


@pytest.fixture(scope="module")
def online(cli: Cli) -> Iterator[dict]:
    """A producer that sent 6 messages and a consumer of GROUP that consumed them, online."""
    got: list[bytes] = []
    producer = Producer(PGROUP, cli.namesrv)
    producer.start()
    sent = [producer.send(Message(TOPIC, b"order-%d" % i, keys=f"key-{i}", tags="TagA"))
            for i in range(6)]
    consumer = PushConsumer(GROUP, cli.namesrv, rebalance_interval_s=0.5, heartbeat_s=0.5,
                            persist_interval_s=0.3, broker_suspend_ms=500,
                            consume_from_where=ConsumeFromWhere.FIRST_OFFSET)
    consumer.subscribe(TOPIC)
    consumer.on_message(lambda msgs: got.extend(m.body for m in msgs))
    consumer.start()
    try:
        wait_until(lambda: len(got) >= 6, 15, what="consumed")
        wait_until(lambda: cli.json("consumerProgress", "-g", GROUP, "-t", TOPIC)
                   ["diffTotal"] == 0, 15, what="offsets committed")
        yield {"sent": sent, "got": got, "consumer": consumer, "producer": producer}
    finally:
        consumer.close()
        producer.close()


# -- topics -------------------------------------------------------------------------------------

def test_topic_commands(cli: Cli) -> None:
    out = cli.ok("updateTopic", "-b", cli.broker, "-t", "CliTmp", "-r", "3", "-w", "3", "-p", "6")
    assert out.splitlines() == [
        f"create topic to {cli.broker} success.",
        "TopicConfig [topicName=CliTmp, readQueueNums=3, writeQueueNums=3, perm=RW-, "
        "topicFilterType=SINGLE_TAG, topicSysFlag=0, order=false]"]
    wait_until(lambda: "CliTmp" in cli.json("topicList")["topics"], 10, what="listed")
    assert "CliTmp" in cli.ok("topicList").split()
    route = cli.json("topicRoute", "-t", "CliTmp")
    assert route["queueDatas"][0]["readQueueNums"] == 3 and json.loads(
        cli.ok("topicRoute", "-t", "CliTmp")) == route  # mqadmin prints the JSON itself
    table = rows(cli.ok("topicRoute", "-t", "CliTmp", "-l"))
    assert table[0][:2] == ["#ClusterName", "#BrokerName"] and table[1][0] == CLUSTER
    assert cli.ok("updateTopicPerm", "-t", "CliTmp", "-p", "4", "-b", cli.broker).strip() == \
        f"update topic perm from 6 to 4 in {cli.broker} success."
    wait_until(lambda: cli.json("topicRoute", "-t", "CliTmp")["queueDatas"][0]["perm"] == 4,
               10, what="perm 4")
    status = cli.json("topicStatus", "-t", "CliTmp")
    assert [(s["queueId"], s["minOffset"], s["maxOffset"]) for s in status] == \
        [(0, 0, 0), (1, 0, 0), (2, 0, 0)]
    assert rows(cli.ok("topicStatus", "-t", "CliTmp"))[0] == \
        ["#Broker", "Name", "#QID", "#Min", "Offset", "#Max", "Offset", "#Last", "Updated"]
    assert cli.ok("deleteTopic", "-t", "CliTmp", "-c", CLUSTER).splitlines() == [
        f"delete topic [CliTmp] from cluster [{CLUSTER}] success.",
        "delete topic [CliTmp] from NameServer success."]
    assert "No topic route info" in cli.fails("topicStatus", "-t", "CliTmp")
    assert "no cluster 'Nope'" in cli.fails("deleteTopic", "-t", "X", "-c", "Nope")
    assert "give a broker address (-b) or a cluster (-c)" in \
        cli.fails("updateTopic", "-t", "X")


def test_topic_list_with_clusters_and_groups(cli: Cli, online: dict) -> None:
    listed = cli.json("topicList", "-c")
    assert {"cluster": CLUSTER, "topic": TOPIC, "group": GROUP} in listed
    table = rows(cli.ok("topicList", "-c"))
    assert table[0] == ["#Cluster", "Name", "#Topic", "#Consumer", "Group"]
    assert [CLUSTER, TOPIC, GROUP] in table


# -- brokers and cluster ------------------------------------------------------------------------

def test_broker_and_cluster_commands(cli: Cli, online: dict) -> None:
    [row] = cli.json("clusterList", "-m")
    assert (row["cluster"], row["brokerName"], row["addr"], row["version"]) == \
        (CLUSTER, "broker-a", cli.broker, "V4_9_7")
    assert row["inTotalToday"] >= 6 and row["outTotalToday"] >= 6
    assert rows(cli.ok("clusterList"))[1][:4] == [CLUSTER, "broker-a", "0", cli.broker]
    status = cli.json("brokerStatus", "-b", cli.broker)[cli.broker]
    assert int(status["msgPutTotalTodayNow"]) >= 6
    plain = cli.ok("brokerStatus", "-c", CLUSTER)
    assert any(line.startswith("putTps") and ": " in line for line in plain.splitlines())
    config = cli.json("getBrokerConfig", "-b", cli.broker)[cli.broker]
    assert config["brokerName"] == "broker-a" and "aclSecretKey" not in config
    assert "brokerName                                        =  broker-a" in \
        cli.ok("getBrokerConfig", "-c", CLUSTER)
    assert cli.ok("updateBrokerConfig", "-b", cli.broker, "-k", "fileReservedTime",
                  "-v", "48").strip() == f"update broker config success, {cli.broker}"
    assert cli.json("getBrokerConfig", "-b", cli.broker)[cli.broker]["fileReservedTime"] == "48"
    assert "black list" in cli.fails("updateBrokerConfig", "-c", CLUSTER, "-k", "rocketmqHome",
                                     "-v", "/tmp")
    wiped = cli.ok("wipeWritePerm", "-b", "broker-a").strip()
    assert wiped.startswith(f"wipe write perm of broker[broker-a] in name server[{cli.namesrv}]"
                            " OK, ")
    added = cli.json("addWritePerm", "-b", "broker-a")
    assert added == {cli.namesrv: int(wiped.rsplit(" ", 1)[1])}


def test_stats_all(cli: Cli, online: dict) -> None:
    stats = [s for s in cli.json("statsAll") if s["topic"] == TOPIC]
    assert stats == [{"topic": TOPIC, "group": GROUP, "accumulation": 0, "inTps": stats[0]["inTps"],
                      "outTps": stats[0]["outTps"], "inMsg24Hour": 6, "outMsg24Hour": 6}]
    assert stats[0]["inTps"] > 0
    table = rows(cli.ok("statsAll", "-a", "-t", TOPIC))
    assert table[0][:2] == ["#Topic", "#Consumer"] and table[1][:3] == [TOPIC, GROUP, "0"]


# -- groups ----------------------------------------------------------------------------------

def test_group_commands(cli: Cli, online: dict) -> None:
    consumer_id = online["consumer"].client_id
    progress = cli.json("consumerProgress", "-g", GROUP, "-t", TOPIC)
    assert [(q["queueId"], q["brokerOffset"], q["diff"]) for q in progress["queues"]] == \
        [(0, 3, 0), (1, 3, 0)]
    plain = cli.ok("consumerProgress", "-g", GROUP, "-t", TOPIC, "-s")
    assert rows(plain)[0][:2] == ["#Topic", "#Broker"] and "#Client" in rows(plain)[0]
    assert "Consume Diff Total: 0" in plain
    groups = cli.json("consumerProgress")
    assert {"group": GROUP, "count": 1, "model": "CLUSTERING", "type": "PUSH"}.items() <= \
        next(g for g in groups if g["group"] == GROUP).items()
    conn = cli.json("consumerConnection", "-g", GROUP)
    assert [c["clientId"] for c in conn["connections"]] == [consumer_id]
    assert conn["messageModel"] == "CLUSTERING"
    assert "MessageModel: CLUSTERING" in cli.ok("consumerConnection", "-g", GROUP)
    assert "is not online" in cli.fails("consumerConnection", "-g", "NobodyHere")
    producers = cli.json("producerConnection", "-g", PGROUP, "-t", TOPIC)
    assert [p["clientId"] for p in producers] == [online["producer"].client_id]
    assert "is not online" in cli.fails("producerConnection", "-g", "NoPG", "-t", TOPIC)
    status = cli.json("consumerStatus", "-g", GROUP, "-s")[consumer_id]
    assert status["properties"]["consumerGroup"] == GROUP and "MainThread" in status["jstack"]
    text = cli.ok("consumerStatus", "-g", GROUP, "-i", consumer_id)
    assert "Same subscription in the same group of consumer" in text and "Rebalance OK" in text


def test_sub_group_commands(cli: Cli) -> None:
    out = cli.ok("updateSubGroup", "-c", CLUSTER, "-g", "CliSub", "-r", "5", "-m", "true")
    assert out.splitlines()[0] == f"create subscription group to {cli.broker} success."
    assert "retryMaxTimes=5" in out and "consumeFromMinEnable=true" in out
    out = cli.ok("deleteSubGroup", "-b", cli.broker, "-g", "CliSub", "-r")
    assert out.strip() == f"delete subscription group [CliSub] from broker [{cli.broker}] success."


def test_reset_offset_is_obeyed_and_skip_moves_to_the_end(cli: Cli, online: dict) -> None:
    got = online["got"]
    before = len(got)
    reset = cli.json("resetOffsetByTime", "-g", GROUP, "-t", TOPIC, "-s", "0")
    assert [(r["queueId"], r["offset"]) for r in reset["offsets"]] == [(0, 0), (1, 0)]
    wait_until(lambda: len(got) >= before + 6, 15, what="consumed again after the reset")
    # a time after every message: each queue's last message (getOffsetInQueueByTime)
    stamp = time.strftime("%Y-%m-%d#%H:%M:%S:000", time.localtime(time.time() + 60))
    table = rows(cli.ok("resetOffsetByTime", "-g", GROUP, "-t", TOPIC, "-s", stamp))
    assert table == [["#brokerName", "#queueId", "#offset"], ["broker-a", "0", "2"],
                     ["broker-a", "1", "2"]]
    skipped = cli.json("skipAccumulatedMessage", "-g", GROUP, "-t", TOPIC)
    assert [r["offset"] for r in skipped["offsets"]] == [3, 3]
    assert "expected milliseconds, now, or yyyy-MM-dd#HH:mm:ss:SSS" in \
        cli.fails("resetOffsetByTime", "-g", GROUP, "-t", TOPIC, "-s", "yesterday")


# -- messages --------------------------------------------------------------------------------

def test_message_commands(cli: Cli, online: dict) -> None:
    first = online["sent"][0]
    [hit] = cli.json("queryMsgByKey", "-t", TOPIC, "-k", "key-0")
    assert (hit["msgId"], hit["body"]) == (first.msg_id, "order-0")
    assert rows(cli.ok("queryMsgByKey", "-t", TOPIC, "-k", "key-0"))[1] == \
        [first.msg_id, str(first.queue.queue_id), str(first.queue_offset)]
    [by_id] = cli.json("queryMsgById", "-i", first.offset_msg_id)
    assert by_id["msgId"] == first.msg_id
    assert by_id["track"] == [{"consumerGroup": GROUP, "trackType": "CONSUMED"}]
    text = cli.ok("queryMsgById", "-i", first.offset_msg_id)
    assert "Message Body        : order-0" in text and "trackType=CONSUMED" in text
    [by_uniq] = cli.json("queryMsgByUniqueKey", "-t", TOPIC, "-i", first.msg_id)
    assert by_uniq["offsetMsgId"] == first.offset_msg_id
    [by_offset] = cli.json("queryMsgByOffset", "-t", TOPIC, "-b", "broker-a", "-i",
                           str(first.queue.queue_id), "-o", str(first.queue_offset))
    assert by_offset["body"] == "order-0"
    printed = cli.json("printMsg", "-t", TOPIC)
    assert sorted(m["body"] for m in printed["messages"]) == [f"order-{i}" for i in range(6)]
    assert cli.json("printMsg", "-t", TOPIC, "-d", "false")["messages"][0]["body"] == \
        "NOT PRINT BODY"
    consumed = cli.json("consumeMessage", "-t", TOPIC, "-b", "broker-a", "-i", "0", "-o", "1",
                        "-c", "2")
    assert [m["queueOffset"] for m in consumed["messages"]] == [1, 2]
    sent = cli.json("sendMessage", "-t", TOPIC, "-p", "from the cli", "-k", "cli-key",
                    "-c", "TagB", "-b", "broker-a", "-i", "1")
    assert (sent["sendResult"], sent["queueId"]) == ("SEND_OK", 1)
    directly = cli.json("queryMsgById", "-i", first.offset_msg_id, "-g", GROUP, "-d",
                        online["consumer"].client_id)
    assert directly[0]["consumeResult"] == "CR_SUCCESS"
    assert "no message of" in cli.fails("queryMsgByKey", "-t", TOPIC, "-k", "no-such-key")
    assert "not an offset message id" in cli.fails("queryMsgById", "-i", "not-hex")
    assert "no message at offset 99" in cli.fails("queryMsgByOffset", "-t", TOPIC, "-b",
                                                  "broker-a", "-i", "0", "-o", "99")


# -- output forms and the process ---------------------------------------------------------------

def test_a_terminal_gets_tables_with_borders(cli: Cli) -> None:
    r = cli.run("topicRoute", "-t", TOPIC, "-l", env={"FORCE_COLOR": "1", "COLUMNS": "200"})
    assert r.exit_code == 0 and "─" in r.output and "#ClusterName" not in r.output
    assert "ClusterName" in r.output


def test_the_process_exits_1_with_one_line_and_reads_namesrv_addr(cli: Cli) -> None:
    env = {"NAMESRV_ADDR": cli.namesrv, "PATH": "/usr/bin:/bin"}
    ok = subprocess.run([sys.executable, "-m", "rmqstore", "admin", "topicList"],
                        capture_output=True, text=True, timeout=30, env=env)
    assert ok.returncode == 0 and TOPIC in ok.stdout.split()
    bad = subprocess.run([sys.executable, "-m", "rmqstore", "admin", "topicStatus", "-t",
                          "NoSuchTopic"], capture_output=True, text=True, timeout=30, env=env)
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.strip() == \
        "Error: No topic route info in name server for the topic: NoSuchTopic"
