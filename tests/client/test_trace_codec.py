"""Trace record codec against Java's text forms, batching of trace records, and fastjson's
object-keyed maps (ConsumeStats, TopicStatsTable) - no server needed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rmqstore.client.message import MessageQueue
from rmqstore.client.producer import trace_dispatcher
from rmqstore.client.trace import (
    TRACE_TOPIC,
    ConsumeReturnType,
    MessageType,
    TraceDispatcher,
    TraceRecord,
    TraceType,
    decode_records,
    encode_record,
    encode_records,
)
from rmqstore.protocol.admin_bodies import OffsetWrapper, decode_consume_stats
from rmqstore.protocol.fastjson import ObjectKey, dumps, loads

S, F = "\x01", "\x02"


def test_pub_record_known_bytes() -> None:
    rec = TraceRecord(TraceType.PUB, msg_id="U1", timestamp_ms=1700000000000,
                      region_id="DefaultRegion", group="PG", topic="T", tags="TagA",
                      keys="k1 k2", store_host="127.0.0.1:10911", body_length=2, cost_ms=3,
                      offset_msg_id="OFF", success=True, client_host="10.0.0.1")
    assert encode_record(rec) == S.join(["Pub", "1700000000000", "DefaultRegion", "PG", "T", "U1",
                                         "TagA", "k1 k2", "127.0.0.1:10911", "2", "3", "0",
                                         "OFF", "true", "10.0.0.1"]) + F
    assert rec.index_keys() == ["U1", "k1", "k2"]


def test_java_forms_decode() -> None:
    # rocketmq-all-4.9.7 writes Pub with 14 fields (no clientHost) and null for a missing tag.
    pub = S.join(["Pub", "5", "R", "PG", "T", "U1", "null", "k", "h:1", "9", "4", "3", "OFF",
                  "false"]) + F
    old_pub = S.join(["Pub", "5", "R", "PG", "T", "U2", "t", "null", "h:1", "9", "4", "0",
                      "true"]) + F
    before = S.join(["SubBefore", "6", "R", "CG", "REQ", "U1", "2", "k"]) + F
    after = S.join(["SubAfter", "REQ", "U1", "7", "false", "k", "4", "8", "CG"]) + F
    cloud_after = S.join(["SubAfter", "REQ", "U1", "7", "true", "k", "0", ""])  # no F: last one
    end_tx = S.join(["EndTransaction", "9", "R", "PG", "T", "U3", "t", "k", "h:1", "1", "TX1",
                     "COMMIT_MESSAGE", "true"]) + F
    recs = decode_records((pub + old_pub + before + after + end_tx + cloud_after).encode())
    assert [r.type for r in recs] == [TraceType.PUB, TraceType.PUB, TraceType.SUB_BEFORE,
                                      TraceType.SUB_AFTER, TraceType.END_TRANSACTION,
                                      TraceType.SUB_AFTER]
    p, o, b, a, e, c = recs
    assert (p.tags, p.offset_msg_id, p.success, p.client_host, p.msg_type) == \
        ("", "OFF", False, "", MessageType.DELAY)
    assert (o.keys, o.offset_msg_id, o.success) == ("", "", True)
    assert (b.group, b.request_id, b.retry_times, b.timestamp_ms) == ("CG", "REQ", 2, 6)
    assert (a.cost_ms, a.success, a.context_code, a.timestamp_ms, a.group) == \
        (7, False, ConsumeReturnType.FAILED, 8, "CG")
    assert (e.transaction_id, e.transaction_state, e.from_transaction_check) == \
        ("TX1", "COMMIT_MESSAGE", True)
    assert (c.success, c.timestamp_ms, c.group) == (True, 0, "")


def test_bad_records_are_skipped_not_fatal() -> None:
    good = S.join(["SubBefore", "6", "R", "CG", "REQ", "U1", "0", "k"]) + F
    data = "Unknown" + S + "x" + F + "Pub" + S + "notanumber" + F + good
    assert [r.msg_id for r in decode_records(data)] == ["U1"]


_text = st.text(st.characters(blacklist_characters="\x01\x02", blacklist_categories=("Cs",)),
                max_size=12).filter(lambda t: t != "null")
_word = _text.filter(lambda t: t != "")


@given(kind=st.sampled_from(list(TraceType)), msg_id=_word, group=_text, topic=_text,
       keys=_text, num=st.integers(0, 2**31 - 1), ok=st.booleans())
def test_round_trip_keeps_each_types_fields(kind, msg_id, group, topic, keys, num, ok) -> None:
    rec = TraceRecord(kind, msg_id=msg_id, timestamp_ms=num, group=group, topic=topic,
                      keys=keys, cost_ms=num, success=ok, retry_times=num % 17,
                      request_id=msg_id, context_code=num % 5, tags=topic, store_host=group,
                      body_length=num, offset_msg_id=keys, client_host=topic, region_id=group,
                      transaction_id=msg_id, transaction_state=group,
                      from_transaction_check=ok)
    [back] = decode_records(encode_records([rec]))
    carried = {
        TraceType.PUB: ["msg_id", "timestamp_ms", "region_id", "group", "topic", "tags", "keys",
                        "store_host", "body_length", "cost_ms", "offset_msg_id", "success",
                        "client_host"],
        TraceType.SUB_BEFORE: ["msg_id", "timestamp_ms", "region_id", "group", "request_id",
                               "retry_times", "keys"],
        TraceType.SUB_AFTER: ["msg_id", "request_id", "cost_ms", "success", "keys",
                              "context_code", "timestamp_ms", "group"],
        TraceType.END_TRANSACTION: ["msg_id", "timestamp_ms", "region_id", "group", "topic",
                                    "tags", "keys", "store_host", "transaction_id",
                                    "transaction_state", "from_transaction_check"],
    }[kind]
    assert back.type is kind
    for name in carried:
        assert getattr(back, name) == getattr(rec, name), name


def test_batches_split_by_size() -> None:
    d = trace_dispatcher("127.0.0.1:1", "G", "PRODUCER", TRACE_TOPIC, None, None)
    d = TraceDispatcher(d._sender, max_batch_bytes=300)
    recs = [TraceRecord(TraceType.SUB_BEFORE, msg_id=f"M{i:030d}", keys="k" * 40)
            for i in range(10)]
    parts = d._split(recs)
    assert [r for p in parts for r in p] == recs and len(parts) > 1
    assert all(len(encode_records(p)) <= 300 for p in parts)


def test_object_keyed_map_round_trip() -> None:
    mq = (("brokerName", "b"), ("queueId", 1), ("topic", "T"))
    body = dumps({"consumeTps": 0.0, "offsetTable": ObjectKey(
        {mq: {"brokerOffset": 9, "consumerOffset": 4, "lastTimestamp": 77}})})
    assert body == (b'{"consumeTps":0.0,"offsetTable":{{"brokerName":"b","queueId":1,'
                    b'"topic":"T"}:{"brokerOffset":9,"consumerOffset":4,"lastTimestamp":77}}}')
    assert loads(body)["offsetTable"] == {mq: {"brokerOffset": 9, "consumerOffset": 4,
                                               "lastTimestamp": 77}}
    table, tps = decode_consume_stats(body)
    assert table == {MessageQueue("T", "b", 1): OffsetWrapper(9, 4, 77)} and tps == 0.0


def test_fastjson_forms_parse() -> None:
    # fastjson's own spacing and key order, an int-keyed map, nested arrays.
    text = ('{ "offsetTable" : { {"topic":"T","queueId":0,"brokerName":"b"} : {"maxOffset":3}, '
            '{"topic":"T","queueId":1,"brokerName":"b"}:{"maxOffset":4} }, '
            '"brokerAddrs":{0:"1.2.3.4:10911"}, "list":[{"a":[1,2,{"b":null}]}], "s":"{x}:" }')
    got = loads(text)
    assert got["offsetTable"][(("brokerName", "b"), ("queueId", 1), ("topic", "T"))] == \
        {"maxOffset": 4}
    assert got["brokerAddrs"] == {"0": "1.2.3.4:10911"}  # bare keys read as quoted ones
    assert got["list"] == [{"a": [1, 2, {"b": None}]}] and got["s"] == "{x}:"


@pytest.mark.parametrize("bad", ['{"a":1', '{"a" 1}', '[1 2]', '{"a":1} x', ''])
def test_malformed_json_raises_value_error(bad) -> None:
    with pytest.raises(ValueError):
        loads(bad)
