"""The bodies of RocketMQ's admin requests and answers (common/.../protocol/body/ of
rocketmq-all-4.9.7), written as Java's fastjson writes them and read in either JSON dialect, so
that mqadmin, the dashboard and the exporter read ours and our admin reads a Java broker's.

Maps keyed by MessageQueue write each key as a JSON object, fields sorted (fastjson.ObjectKey):
``{{"brokerName":"b","queueId":0,"topic":"T"}:...}``. Bean fields are in alphabetical order.

  KVTable            {"table":{"k":"v"}}                                       (28)
  Properties         java_properties.py                                        (25, 26)
  ConsumeStats       {"consumeTps":0.0,"offsetTable":{mq:{"brokerOffset","consumerOffset",
                      "lastTimestamp"}}}                                        (208)
  TopicStatsTable    {"offsetTable":{mq:{"lastUpdateTimestamp","maxOffset","minOffset"}}} (202)
  ConsumerConnection {"connectionSet":[Connection],"consumeFromWhere","consumeType",
                      "messageModel","subscriptionTable":{topic:SubscriptionData}} (203)
  ProducerConnection {"connectionSet":[{"clientAddr","clientId","language","version"}]} (204)
  ResetOffsetBody    {"offsetTable":{mq:offset}}                               (220, 222)
  GroupList          {"groupList":["G"]}                                        (300)
  BrokerStatsData    {"statsDay":{"avgpt","sum","tps"},"statsHour":..,"statsMinute":..} (315)
  ProducerTableInfo  {"data":{group:[{"clientId","language","lastUpdateTimestamp",
                      "remoteIP","version"}]}}                                   (328)
  ConsumerRunningInfo {"jstack","mqTable":{mq:ProcessQueueInfo},"properties":{},
                      "statusTable":{topic:ConsumeStatus},"subscriptionSet":[..]} (307)
  ConsumeMessageDirectlyResult {"autoCommit","consumeResult","order","remark",
                      "spentTimeMills"}                                          (309)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import fastjson
from .fastjson import ObjectKey
from .message import MessageQueue

MqKey = tuple[tuple[str, Any], ...]


def mq_key(q: MessageQueue) -> MqKey:
    """The object key fastjson writes for a MessageQueue."""
    return (("brokerName", q.broker_name), ("queueId", q.queue_id), ("topic", q.topic))


def queue_ref(key: object) -> MessageQueue:
    """A MessageQueue from an object key as fastjson.loads gives it."""
    mq = dict(key) if isinstance(key, tuple) else {}
    return MessageQueue(str(mq.get("topic", "")), str(mq.get("brokerName", "")),
                    int(mq.get("queueId", -1)))


def _mq_map(table: Mapping[MessageQueue, Any]) -> ObjectKey:
    return ObjectKey({mq_key(q): v for q, v in sorted(table.items())})


def _object(body: bytes) -> dict:
    data = fastjson.loads(body)
    if not isinstance(data, dict):
        raise ValueError("the body is not a JSON object")
    return data


# -- plain tables ---------------------------------------------------------------------------

def decode_kv_table(body: bytes) -> dict[str, str]:
    return {str(k): str(v) for k, v in (_object(body).get("table") or {}).items()}


def encode_group_list(groups: Iterable[str]) -> bytes:
    return fastjson.dumps({"groupList": sorted(groups)})


def decode_group_list(body: bytes) -> list[str]:
    return sorted(str(g) for g in _object(body).get("groupList") or ())


# -- offsets and stats ----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class OffsetWrapper:
    broker_offset: int
    consumer_offset: int
    last_timestamp: int


def encode_consume_stats(table: Mapping[MessageQueue, OffsetWrapper], consume_tps: float) -> bytes:
    return fastjson.dumps({"consumeTps": float(consume_tps), "offsetTable": _mq_map({
        q: {"brokerOffset": o.broker_offset, "consumerOffset": o.consumer_offset,
            "lastTimestamp": o.last_timestamp} for q, o in table.items()})})


def decode_consume_stats(body: bytes) -> tuple[dict[MessageQueue, OffsetWrapper], float]:
    data = _object(body)
    table = {queue_ref(k): OffsetWrapper(int(v.get("brokerOffset", 0)),
                                         int(v.get("consumerOffset", 0)),
                                         int(v.get("lastTimestamp", 0)))
             for k, v in (data.get("offsetTable") or {}).items()}
    return table, float(data.get("consumeTps") or 0.0)


@dataclass(frozen=True, slots=True)
class TopicOffset:
    min_offset: int
    max_offset: int
    last_update_timestamp: int


def encode_topic_stats(table: Mapping[MessageQueue, TopicOffset]) -> bytes:
    return fastjson.dumps({"offsetTable": _mq_map({
        q: {"lastUpdateTimestamp": o.last_update_timestamp, "maxOffset": o.max_offset,
            "minOffset": o.min_offset} for q, o in table.items()})})


def decode_topic_stats(body: bytes) -> dict[MessageQueue, TopicOffset]:
    return {queue_ref(k): TopicOffset(int(v.get("minOffset", 0)), int(v.get("maxOffset", 0)),
                                      int(v.get("lastUpdateTimestamp", 0)))
            for k, v in (_object(body).get("offsetTable") or {}).items()}


def encode_reset_offset(table: Mapping[MessageQueue, int]) -> bytes:
    return fastjson.dumps({"offsetTable": _mq_map(table)})


def encode_reset_offset_for_c(table: Mapping[MessageQueue, int]) -> bytes:
    """ResetOffsetBodyForC, what the C++ client reads: a list of MessageQueueForC."""
    return fastjson.dumps({"offsetTable": [
        {"brokerName": q.broker_name, "offset": o, "queueId": q.queue_id, "topic": q.topic}
        for q, o in sorted(table.items())]})


def decode_reset_offset(body: bytes) -> dict[MessageQueue, int]:
    return {queue_ref(k): int(v) for k, v in (_object(body).get("offsetTable") or {}).items()}


@dataclass(frozen=True, slots=True)
class CallSnapshot:
    """One window of a StatsItem (BrokerStatsItem): the sum over it, per second, per call."""

    sum: int
    tps: float
    avgpt: float

    def to_json(self) -> dict[str, Any]:
        return {"avgpt": self.avgpt, "sum": self.sum, "tps": self.tps}


def encode_broker_stats(minute: CallSnapshot, hour: CallSnapshot, day: CallSnapshot) -> bytes:
    return fastjson.dumps({"statsDay": day.to_json(), "statsHour": hour.to_json(),
                           "statsMinute": minute.to_json()})


def decode_broker_stats(body: bytes) -> dict[str, CallSnapshot]:
    """{"minute"|"hour"|"day": CallSnapshot}."""
    data = _object(body)
    return {name: CallSnapshot(int(s.get("sum", 0)), float(s.get("tps", 0.0)),
                               float(s.get("avgpt", 0.0)))
            for name, s in (("minute", data.get("statsMinute") or {}),
                            ("hour", data.get("statsHour") or {}),
                            ("day", data.get("statsDay") or {}))}


# -- clients --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Connection:
    client_id: str
    client_addr: str
    language: str
    version: int

    def to_json(self) -> dict[str, Any]:
        return {"clientAddr": self.client_addr, "clientId": self.client_id,
                "language": self.language, "version": self.version}


def _connections(data: dict) -> list[Connection]:
    return sorted((Connection(str(c.get("clientId", "")), str(c.get("clientAddr", "")),
                              str(c.get("language", "")), int(c.get("version", 0)))
                   for c in data.get("connectionSet") or ()), key=lambda c: c.client_id)


def encode_producer_connection(connections: Iterable[Connection]) -> bytes:
    return fastjson.dumps({"connectionSet": [c.to_json() for c in connections]})


def decode_producer_connection(body: bytes) -> list[Connection]:
    return _connections(_object(body))


def java_string_hash(text: str) -> int:
    """String.hashCode over UTF-16 code units (SubscriptionData.codeSet, sharding keys)."""
    h = 0
    data = text.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def subscription_json(topic: str, sub_string: str, tags: Iterable[str], sub_version: int,
                      expression_type: str = "TAG") -> dict[str, Any]:
    """SubscriptionData as heartbeats, ConsumerConnection and ConsumerRunningInfo carry it."""
    tag_list = sorted(tags)
    return {"classFilterMode": False, "codeSet": [java_string_hash(t) for t in tag_list],
            "expressionType": expression_type, "subString": sub_string,
            "subVersion": sub_version, "tagsSet": tag_list, "topic": topic}


@dataclass(frozen=True, slots=True)
class ConsumerConnection:
    connections: list[Connection]
    consume_type: str
    message_model: str
    consume_from_where: str
    subscriptions: dict[str, dict]  # topic -> SubscriptionData JSON


def encode_consumer_connection(c: ConsumerConnection) -> bytes:
    return fastjson.dumps({
        "connectionSet": [x.to_json() for x in c.connections],
        "consumeFromWhere": c.consume_from_where, "consumeType": c.consume_type,
        "messageModel": c.message_model, "subscriptionTable": c.subscriptions})


def decode_consumer_connection(body: bytes) -> ConsumerConnection:
    data = _object(body)
    return ConsumerConnection(_connections(data), str(data.get("consumeType", "")),
                              str(data.get("messageModel", "")),
                              str(data.get("consumeFromWhere", "")),
                              dict(data.get("subscriptionTable") or {}))


def encode_producer_table(table: Mapping[str, Iterable[dict[str, Any]]]) -> bytes:
    """ProducerTableInfo: group -> [ProducerInfo]."""
    return fastjson.dumps({"data": {g: list(infos) for g, infos in table.items()}})


# -- consumer running info and direct consumption (broker -> client -> broker) -----------------

def encode_running_info(properties: Mapping[str, str], subscriptions: Iterable[dict],
                        mq_table: Mapping[MessageQueue, dict], status_table: Mapping[str, dict],
                        jstack: str | None = None) -> bytes:
    out: dict[str, Any] = {"mqTable": _mq_map(mq_table), "properties": dict(properties),
                           "statusTable": dict(status_table),
                           "subscriptionSet": list(subscriptions)}
    if jstack is not None:  # fastjson omits a null field
        out["jstack"] = jstack
    return fastjson.dumps(out)


@dataclass(frozen=True, slots=True)
class RunningInfo:
    properties: dict[str, str]
    subscriptions: list[dict]
    queues: dict[MessageQueue, dict]  # ProcessQueueInfo JSON
    status: dict[str, dict]  # topic -> ConsumeStatus JSON
    jstack: str | None


def decode_running_info(body: bytes) -> RunningInfo:
    data = _object(body)
    return RunningInfo({str(k): str(v) for k, v in (data.get("properties") or {}).items()},
                       list(data.get("subscriptionSet") or ()),
                       {queue_ref(k): dict(v) for k, v in (data.get("mqTable") or {}).items()},
                       dict(data.get("statusTable") or {}), data.get("jstack"))


CONSUME_RESULTS = ("CR_SUCCESS", "CR_LATER", "CR_ROLLBACK", "CR_COMMIT", "CR_THROW_EXCEPTION",
                   "CR_RETURN_NULL")  # CMResult


@dataclass(frozen=True, slots=True)
class DirectResult:
    """ConsumeMessageDirectlyResult."""

    consume_result: str  # one of CONSUME_RESULTS
    order: bool = False
    auto_commit: bool = True
    remark: str | None = None
    spent_time_ms: int = 0


def encode_direct_result(r: DirectResult) -> bytes:
    out: dict[str, Any] = {"autoCommit": r.auto_commit, "consumeResult": r.consume_result,
                           "order": r.order, "spentTimeMills": r.spent_time_ms}
    if r.remark is not None:
        out["remark"] = r.remark
    return fastjson.dumps(out)


def decode_direct_result(body: bytes) -> DirectResult:
    data = _object(body)
    return DirectResult(str(data.get("consumeResult", "")), bool(data.get("order", False)),
                        bool(data.get("autoCommit", True)), data.get("remark"),
                        int(data.get("spentTimeMills", 0)))
