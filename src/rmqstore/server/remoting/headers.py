"""Typed custom headers <-> extFields, the way RemotingCommand.decodeCommandCustomHeader does it.

A header is a frozen dataclass whose fields carry their Java (wire) name and whether Java marks
them @CFNotNull. Decoding is lenient where clients differ and strict where a handler would
otherwise misbehave:

* values arrive as strings (json_header turns the C++ client's JSON numbers into strings);
* a boolean is true iff the text is ``true`` (any case) or ``1``: C++ writes bools as "0"/"1",
  Java's Boolean.parseBoolean would read "1" as false (spec 1.4, 2.3);
* unknown keys are ignored (AccessKey, Signature, OnsChannel, bname, ...);
* a missing required field raises HeaderFieldError with Java's own text
  ("the custom field <topic> is null"), which the dispatcher answers with SYSTEM_ERROR.
  (Java 4.9.7 only logs that and fails later on unboxing; an early clear error is kinder.)

Encoding writes every non-None field as a string, as the C++ client requires of responses.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import HeaderFieldError

H = TypeVar("H")

_TRUE = frozenset({"true", "1"})


def wire(name: str, *, required: bool = False, default: Any = None) -> Any:
    """Declare a header field: ``name`` is the Java field name used as the extFields key."""
    meta = {"wire": name, "required": required}
    if required:
        return dataclasses.field(metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def decode_header(cls: type[H], ext_fields: dict[str, str]) -> H:
    """Build ``cls`` from a request's extFields; raises HeaderFieldError."""
    return _codec(cls)[0](ext_fields)


def encode_header(header: object) -> dict[str, str]:
    """The extFields of ``header``: Java field names, every value a string, None omitted."""
    return _codec(type(header))[1](header)


@functools.cache
def _codec(cls: type) -> tuple[Any, Any]:
    """A decoder and an encoder written for ``cls`` (as dataclasses writes __init__): a send
    decodes 14 fields, and a generic loop over them cost more than the store's append."""
    dec = ["def decode(ext):", " get = ext.get", " values = {}"]
    enc = ["def encode(h):", " out = {}"]
    for i, (f, kind) in enumerate(_layout(cls)):
        wire_name, required = f.metadata["wire"], f.metadata["required"]
        dec.append(f" raw = get({wire_name!r})")
        dec.append(" if raw is None:")
        dec.append(f"  raise HeaderFieldError({f'the custom field <{wire_name}> is null'!r})"
                   if required else "  pass")
        parse = {str: "raw", int: f"_int({wire_name!r}, raw)",
                 bool: "raw.strip().lower() in _TRUE"}.get(kind)
        if parse is None:
            raise TypeError(f"unsupported header field type {kind!r} for {f.name}")
        dec.append(f" else:\n  values[{f.name!r}] = {parse}")
        enc.append(f" v = h.{f.name}")
        to_text = {str: "v", int: "str(v)", bool: '"true" if v else "false"'}[kind]
        enc.append(f" if v is not None:\n  out[{wire_name!r}] = {to_text}")
    dec.append(" return cls(**values)")
    enc.append(" return out")
    scope: dict[str, Any] = {"cls": cls, "HeaderFieldError": HeaderFieldError,
                             "_int": _parse_int, "_TRUE": _TRUE}
    exec("\n".join(dec) + "\n" + "\n".join(enc), scope)  # noqa: S102 - our own field names
    return scope["decode"], scope["encode"]


def _parse_int(name: str, raw: str) -> int:
    try:
        return int(raw)  # int() accepts surrounding whitespace, as fastjson does
    except ValueError:
        raise HeaderFieldError(f"the custom field <{name}> is not an integer: {raw!r}") from None


@functools.cache
def _layout(cls: type) -> tuple[tuple[dataclasses.Field[Any], type], ...]:
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        if isinstance(kind, types.UnionType):  # "int | None" -> int
            kind = next(a for a in typing.get_args(kind) if a is not type(None))
        out.append((f, kind))
    return tuple(out)


# -- broker: send ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SendMessageRequestHeader:
    """SEND_MESSAGE (10); the C++ client in PyPI rocketmq 0.4.4 sends these long names."""

    producer_group: str = wire("producerGroup", required=True)
    topic: str = wire("topic", required=True)
    default_topic: str = wire("defaultTopic", required=True)
    default_topic_queue_nums: int = wire("defaultTopicQueueNums", required=True)
    queue_id: int = wire("queueId", required=True)
    sys_flag: int = wire("sysFlag", required=True)
    born_timestamp: int = wire("bornTimestamp", required=True)
    flag: int = wire("flag", required=True)
    properties: str | None = wire("properties")
    reconsume_times: int | None = wire("reconsumeTimes")
    unit_mode: bool = wire("unitMode", default=False)
    batch: bool = wire("batch", default=False)
    max_reconsume_times: int | None = wire("maxReconsumeTimes")


@dataclass(frozen=True, slots=True, kw_only=True)
class SendMessageRequestHeaderV2:
    """SEND_MESSAGE_V2 (310) and SEND_BATCH_MESSAGE (320): one-letter names a..n."""

    producer_group: str = wire("a", required=True)
    topic: str = wire("b", required=True)
    default_topic: str = wire("c", required=True)
    default_topic_queue_nums: int = wire("d", required=True)
    queue_id: int = wire("e", required=True)
    sys_flag: int = wire("f", required=True)
    born_timestamp: int = wire("g", required=True)
    flag: int = wire("h", required=True)
    properties: str | None = wire("i")
    reconsume_times: int | None = wire("j")
    unit_mode: bool = wire("k", default=False)
    max_reconsume_times: int | None = wire("l")
    batch: bool = wire("m", default=False)
    broker_name: str | None = wire("n")

    def to_v1(self) -> SendMessageRequestHeader:
        """SendMessageRequestHeaderV2.createSendMessageRequestHeaderV1, minus brokerName."""
        return SendMessageRequestHeader(
            producer_group=self.producer_group, topic=self.topic,
            default_topic=self.default_topic, default_topic_queue_nums=self.default_topic_queue_nums,
            queue_id=self.queue_id, sys_flag=self.sys_flag, born_timestamp=self.born_timestamp,
            flag=self.flag, properties=self.properties, reconsume_times=self.reconsume_times,
            unit_mode=self.unit_mode, batch=self.batch, max_reconsume_times=self.max_reconsume_times)


@dataclass(frozen=True, slots=True, kw_only=True)
class SendMessageResponseHeader:
    msg_id: str = wire("msgId", required=True)
    queue_id: int = wire("queueId", required=True)
    queue_offset: int = wire("queueOffset", required=True)
    transaction_id: str | None = wire("transactionId")


# -- broker: pull and offsets -------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PullMessageRequestHeader:
    consumer_group: str = wire("consumerGroup", required=True)
    topic: str = wire("topic", required=True)
    queue_id: int = wire("queueId", required=True)
    queue_offset: int = wire("queueOffset", required=True)
    max_msg_nums: int = wire("maxMsgNums", required=True)
    sys_flag: int = wire("sysFlag", required=True)
    commit_offset: int = wire("commitOffset", required=True)
    suspend_timeout_ms: int = wire("suspendTimeoutMillis", required=True)
    subscription: str | None = wire("subscription")
    sub_version: int = wire("subVersion", required=True)
    expression_type: str | None = wire("expressionType")


@dataclass(frozen=True, slots=True, kw_only=True)
class PullMessageResponseHeader:
    """All four always sent: a Java client unboxes them without a null check."""

    suggest_which_broker_id: int = wire("suggestWhichBrokerId", required=True)
    next_begin_offset: int = wire("nextBeginOffset", required=True)
    min_offset: int = wire("minOffset", required=True)
    max_offset: int = wire("maxOffset", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerSendMsgBackRequestHeader:
    """CONSUMER_SEND_MSG_BACK (36): a consumer hands back a message it failed on (offset is
    its commit-log offset); delayLevel 0 lets the broker pick, < 0 sends it to the DLQ."""

    offset: int = wire("offset", required=True)
    group: str = wire("group", required=True)
    delay_level: int = wire("delayLevel", required=True)
    origin_msg_id: str | None = wire("originMsgId")
    origin_topic: str | None = wire("originTopic")
    unit_mode: bool = wire("unitMode", default=False)
    max_reconsume_times: int | None = wire("maxReconsumeTimes")


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryConsumerOffsetRequestHeader:
    consumer_group: str = wire("consumerGroup", required=True)
    topic: str = wire("topic", required=True)
    queue_id: int = wire("queueId", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateConsumerOffsetRequestHeader:
    consumer_group: str = wire("consumerGroup", required=True)
    topic: str = wire("topic", required=True)
    queue_id: int = wire("queueId", required=True)
    commit_offset: int = wire("commitOffset", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueOffsetRequestHeader:
    """GET_MAX_OFFSET (30) and GET_MIN_OFFSET (31) share these fields."""

    topic: str = wire("topic", required=True)
    queue_id: int = wire("queueId", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class OffsetResponseHeader:
    """QUERY_CONSUMER_OFFSET, GET_MAX_OFFSET, GET_MIN_OFFSET, SEARCH_OFFSET_BY_TIMESTAMP replies."""

    offset: int = wire("offset", required=True)


# -- clients and name server --------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class UnregisterClientRequestHeader:
    client_id: str = wire("clientID", required=True)
    producer_group: str | None = wire("producerGroup")
    consumer_group: str | None = wire("consumerGroup")


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerGroupHeader:
    """GET_CONSUMER_LIST_BY_GROUP (38) and NOTIFY_CONSUMER_IDS_CHANGED (40)."""

    consumer_group: str = wire("consumerGroup", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class GetRouteInfoRequestHeader:
    topic: str = wire("topic", required=True)
    # Sent by newer clients: they want quoted map keys (our name server always sends them).
    accept_standard_json_only: bool | None = wire("acceptStandardJsonOnly")


# -- name server: brokers and KV config (common/.../protocol/header/namesrv/) ------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterBrokerRequestHeader:
    """REGISTER_BROKER (103), broker -> name server."""

    broker_name: str = wire("brokerName", required=True)
    broker_addr: str = wire("brokerAddr", required=True)
    cluster_name: str = wire("clusterName", required=True)
    ha_server_addr: str = wire("haServerAddr", required=True)
    broker_id: int = wire("brokerId", required=True)
    compressed: bool = wire("compressed", default=False)
    body_crc32: int = wire("bodyCrc32", default=0)  # 0 = not checked


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterBrokerResponseHeader:
    """Both set only for a slave whose master is registered (RouteInfoManager.registerBroker)."""

    ha_server_addr: str | None = wire("haServerAddr")
    master_addr: str | None = wire("masterAddr")


@dataclass(frozen=True, slots=True, kw_only=True)
class UnRegisterBrokerRequestHeader:
    """UNREGISTER_BROKER (104)."""

    broker_name: str = wire("brokerName", required=True)
    broker_addr: str = wire("brokerAddr", required=True)
    cluster_name: str = wire("clusterName", required=True)
    broker_id: int = wire("brokerId", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryDataVersionRequestHeader:
    """QUERY_DATA_VERSION (322): has the name server got this broker's current topic configs?"""

    broker_name: str = wire("brokerName", required=True)
    broker_addr: str = wire("brokerAddr", required=True)
    cluster_name: str = wire("clusterName", required=True)
    broker_id: int = wire("brokerId", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryDataVersionResponseHeader:
    changed: bool = wire("changed", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class PutKVConfigRequestHeader:
    """PUT_KV_CONFIG (100)."""

    namespace: str = wire("namespace", required=True)
    key: str = wire("key", required=True)
    value: str = wire("value", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class KVConfigKeyHeader:
    """GET_KV_CONFIG (101) and DELETE_KV_CONFIG (102) requests share these fields."""

    namespace: str = wire("namespace", required=True)
    key: str = wire("key", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class GetKVConfigResponseHeader:
    value: str | None = wire("value")


# -- transactions (EndTransactionRequestHeader, CheckTransactionStateRequestHeader) --------


@dataclass(frozen=True, slots=True, kw_only=True)
class EndTransactionRequestHeader:
    """END_TRANSACTION (37), producer -> broker, oneway. commitOrRollback is the sysFlag
    transaction type: 8 commit, 12 rollback, 0 unknown."""

    producer_group: str = wire("producerGroup", required=True)
    tran_state_table_offset: int = wire("tranStateTableOffset", required=True)
    commit_log_offset: int = wire("commitLogOffset", required=True)
    commit_or_rollback: int = wire("commitOrRollback", required=True)
    from_transaction_check: bool = wire("fromTransactionCheck", default=False)
    msg_id: str = wire("msgId", required=True)
    transaction_id: str | None = wire("transactionId")


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckTransactionStateRequestHeader:
    """CHECK_TRANSACTION_STATE (39), broker -> producer, oneway; the body is the half message
    as a stored-message record with its real topic and queue."""

    tran_state_table_offset: int = wire("tranStateTableOffset", required=True)
    commit_log_offset: int = wire("commitLogOffset", required=True)
    msg_id: str | None = wire("msgId")
    transaction_id: str | None = wire("transactionId")
    offset_msg_id: str | None = wire("offsetMsgId")
