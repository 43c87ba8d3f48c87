"""The broker's lookup and statistics handlers driven on the wire as a C++/Java client would:
QUERY_MESSAGE (12), VIEW_MESSAGE_BY_ID (33), GET_CONSUME_STATS (208), GET_TOPIC_STATS_INFO
(202), GET_CONSUMER_CONNECTION_LIST (203), and the trace topic created at start."""

from __future__ import annotations

import json
from pathlib import Path

from rmqstore.protocol.fastjson import loads
from rmqstore.server.broker import BrokerConfig

from .test_broker import C, Harness, R, config, heartbeat_body, parse_records, props, run, send_v1


def _query(topic: str, key: str, **extra: str) -> dict:
    return {"topic": topic, "key": key, "maxNum": "32", "beginTimestamp": "0",
            "endTimestamp": str((1 << 63) - 1), **extra}


def test_query_and_view_on_the_wire(tmp_path: Path) -> None:
    async def main() -> None:
        async with Harness(config(tmp_path)) as h:
            sent = []
            for i, keys in enumerate(["k1", "k2 k1", "k3"]):
                r = await h.call(C.SEND_MESSAGE, send_v1("QT", 0, props(KEYS=keys, TAGS="t")),
                                 b"m%d" % i)
                assert r.code == R.SUCCESS, r.remark
                sent.append(r.ext_fields["msgId"])
            r = await h.call(C.QUERY_MESSAGE, _query("QT", "k1"))
            assert r.code == R.SUCCESS
            assert [m["body"] for m in parse_records(r.body)] == [b"m0", b"m1"]
            assert int(r.ext_fields["indexLastUpdatePhyoffset"]) > 0
            r = await h.call(C.QUERY_MESSAGE, _query("QT", "k1", maxNum="1"))
            assert [m["body"] for m in parse_records(r.body)] == [b"m1"]  # the newest
            r = await h.call(C.QUERY_MESSAGE, _query("OTHER", "k1"))
            assert r.code == R.QUERY_NOT_FOUND
            # VIEW_MESSAGE_BY_ID: the offset of the offset msg id, record bytes as in a pull.
            offset = int(sent[2][-16:], 16)
            r = await h.call(C.VIEW_MESSAGE_BY_ID, {"offset": str(offset)})
            [m] = parse_records(r.body)
            assert (r.code, m["body"], m["msg_id"]) == (R.SUCCESS, b"m2", sent[2])
            for bad in ("-1", str(offset + 1), str(1 << 50)):
                r = await h.call(C.VIEW_MESSAGE_BY_ID, {"offset": bad})
                assert r.code == R.SYSTEM_ERROR and f"offset, {bad}" in (r.remark or "")
            r = await h.call(C.VIEW_MESSAGE_BY_ID, {})
            assert r.code == R.SYSTEM_ERROR and "offset" in (r.remark or "")
    run(main)


def test_consume_and_topic_stats_bodies(tmp_path: Path) -> None:
    async def main() -> None:
        async with Harness(config(tmp_path)) as h:
            for i in range(3):
                await h.call(C.SEND_MESSAGE, send_v1("ST", 0, props(TAGS="t")), b"%d" % i)
            await h.call(C.UPDATE_CONSUMER_OFFSET, {"consumerGroup": "G", "topic": "ST",
                                                    "queueId": "0", "commitOffset": "2"})
            r = await h.call(C.GET_CONSUME_STATS, {"consumerGroup": "G", "topic": "ST"})
            assert r.code == R.SUCCESS
            # fastjson's form: MessageQueue keys written as objects, fields sorted.
            assert r.body.startswith(b'{"consumeTps":0.0,"offsetTable":{{"brokerName":'
                                     b'"broker-t","queueId":0,"topic":"ST"}:{"brokerOffset":3,'
                                     b'"consumerOffset":2,"lastTimestamp":')
            table = loads(r.body)["offsetTable"]
            assert len(table) == 4  # the auto-created topic's four read queues
            # Without a topic: the topics the group has offsets for.
            r = await h.call(C.GET_CONSUME_STATS, {"consumerGroup": "G"})
            assert {dict(k)["topic"] for k in loads(r.body)["offsetTable"]} == {"ST"}
            r = await h.call(C.GET_TOPIC_STATS_INFO, {"topic": "ST"})
            stats = {dict(k)["queueId"]: v for k, v in loads(r.body)["offsetTable"].items()}
            assert stats[0]["maxOffset"] == 3 and stats[0]["lastUpdateTimestamp"] > 0
            assert stats[1] == {"lastUpdateTimestamp": 0, "maxOffset": 0, "minOffset": 0}
            r = await h.call(C.GET_TOPIC_STATS_INFO, {"topic": "NoSuchTopic"})
            assert r.code == R.TOPIC_NOT_EXIST
            r = await h.call(C.GET_CONSUMER_CONNECTION_LIST, {"consumerGroup": "G"})
            assert r.code == R.CONSUMER_NOT_ONLINE
            await h.call(C.HEART_BEAT, body=heartbeat_body("cid-1", "G", "ST"))
            r = await h.call(C.GET_CONSUMER_CONNECTION_LIST, {"consumerGroup": "G"})
            body = json.loads(r.body)
            assert [c["clientId"] for c in body["connectionSet"]] == ["cid-1"]
            assert "ST" in body["subscriptionTable"]
    run(main)


def test_trace_topic_at_start_unless_disabled(tmp_path: Path) -> None:
    async def topics(cfg: BrokerConfig) -> dict:
        async with Harness(cfg) as h:
            return json.loads((await h.call(C.GET_ALL_TOPIC_CONFIG)).body)["topicConfigTable"]

    async def main() -> None:
        table = await topics(config(tmp_path / "a"))
        trace = table["RMQ_SYS_TRACE_TOPIC"]
        assert (trace["readQueueNums"], trace["writeQueueNums"], trace["perm"]) == (1, 1, 6)
        off = BrokerConfig.from_properties("traceTopicEnable=false\nmsgTraceTopicName=MyTrace\n")
        assert not off.trace_topic_enable and off.msg_trace_topic_name == "MyTrace"
        table = await topics(config(tmp_path / "b", trace_topic_enable=False))
        assert "RMQ_SYS_TRACE_TOPIC" not in table
        table = await topics(config(tmp_path / "c", msg_trace_topic_name="MyTrace"))
        assert "MyTrace" in table
    run(main)
