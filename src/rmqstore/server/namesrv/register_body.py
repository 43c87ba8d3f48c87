"""The body of REGISTER_BROKER (103): the broker's topic configs and their data version.

Three forms arrive (DefaultRequestProcessor, rocketmq-all-4.9.7):

* RegisterBrokerBody JSON (request version >= V3_0_11, every broker since 2014)::

    {"filterServerList":[],
     "topicConfigSerializeWrapper":{"dataVersion":{"counter":3,"timestamp":1700000000000},
       "topicConfigTable":{"T1":{"order":false,"perm":6,"readQueueNums":4,"topicFilterType":"SINGLE_TAG",
                                 "topicName":"T1","topicSysFlag":0,"writeQueueNums":4}}}}

* a bare TopicConfigSerializeWrapper JSON (older brokers): the inner object above. We tell the
  two apart by their keys rather than by the request version, so either form is read whatever
  version a broker announces;

* ``compressed=true`` (RegisterBrokerBody.encode(true)): a zlib stream of big-endian int32-length
  prefixed parts::

    int32 n | n bytes DataVersion JSON
    int32 topicCount
    topicCount x (int32 n | n bytes TopicConfig.encode(): "name read write perm filterType")
    int32 n | n bytes filterServerList JSON array

  The compressed topic form has no topicSysFlag and no order flag (TopicConfig.encode), so
  they read as 0 and false there, as in Java.

JSON may be fastjson's dialect (unquoted integer map keys); see fastjson.py.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

from . import fastjson

_INT32 = struct.Struct(">i")  # length prefixes in the compressed form

# TopicConfig's field defaults (common/.../TopicConfig.java): what an absent JSON field means.
DEFAULT_QUEUE_NUMS = 16
PERM_READ_WRITE = 6


class RegisterBodyError(ValueError):
    """The body does not decode as any of the three forms."""


@dataclass(frozen=True, slots=True)
class DataVersion:
    """The broker's topic-config version; a change makes the name server re-read its topics."""

    timestamp: int = 0
    counter: int = 0


@dataclass(frozen=True, slots=True)
class TopicConfig:
    topic_name: str
    read_queue_nums: int = DEFAULT_QUEUE_NUMS
    write_queue_nums: int = DEFAULT_QUEUE_NUMS
    perm: int = PERM_READ_WRITE
    topic_filter_type: str = "SINGLE_TAG"
    topic_sys_flag: int = 0
    order: bool = False


@dataclass(frozen=True, slots=True)
class RegisterBrokerBody:
    data_version: DataVersion = DataVersion()
    topic_configs: dict[str, TopicConfig] = field(default_factory=dict)
    # None = not sent (the old bare form): the name server then leaves the table alone.
    filter_server_list: list[str] | None = None


def decode_register_body(body: bytes, compressed: bool) -> RegisterBrokerBody:
    """Any of the three forms -> RegisterBrokerBody; empty body -> version 0, no topics."""
    if not body:
        return RegisterBrokerBody(filter_server_list=[])
    try:
        if compressed:
            return _decode_compressed(body)
        return _decode_json(fastjson.loads(body))
    except (ValueError, TypeError, KeyError, zlib.error, struct.error) as exc:
        raise RegisterBodyError(f"Failed to decode RegisterBrokerBody: {exc}") from exc


def encode_register_body(body: RegisterBrokerBody) -> bytes:
    """The uncompressed JSON form, as a Java broker sends it (used by tests and tools)."""
    wrapper = {
        "dataVersion": {"counter": body.data_version.counter,
                        "timestamp": body.data_version.timestamp},
        "topicConfigTable": {name: _topic_config_json(tc) for name, tc in body.topic_configs.items()},
    }
    return fastjson.dumps({"filterServerList": body.filter_server_list or [],
                           "topicConfigSerializeWrapper": wrapper})


def _decode_json(obj: Any) -> RegisterBrokerBody:
    if not isinstance(obj, dict):
        raise TypeError(f"body is a {type(obj).__name__}, not an object")
    if "topicConfigSerializeWrapper" in obj:
        wrapper = obj.get("topicConfigSerializeWrapper") or {}
        filters = obj.get("filterServerList")
        filter_list = [str(a) for a in filters] if isinstance(filters, list) else []
    else:  # a bare TopicConfigSerializeWrapper (brokers before V3_0_11)
        wrapper, filter_list = obj, None
    if not isinstance(wrapper, dict):
        raise TypeError("topicConfigSerializeWrapper is not an object")
    table = wrapper.get("topicConfigTable") or {}
    if not isinstance(table, dict):
        raise TypeError("topicConfigTable is not an object")
    configs = {}
    for key, value in table.items():
        tc = _topic_config(key, value)
        configs[tc.topic_name] = tc
    return RegisterBrokerBody(parse_data_version(wrapper.get("dataVersion")), configs, filter_list)


def parse_data_version(obj: Any) -> DataVersion:
    """A DataVersion JSON object (already parsed); anything else is version 0."""
    if not isinstance(obj, dict):
        return DataVersion()
    return DataVersion(int(obj.get("timestamp") or 0), int(obj.get("counter") or 0))


def _topic_config(key: str, obj: Any) -> TopicConfig:
    if not isinstance(obj, dict):
        raise TypeError(f"topic config of {key!r} is not an object")
    return TopicConfig(
        topic_name=str(obj.get("topicName") or key),  # Java keys the route by topicName
        read_queue_nums=int(obj.get("readQueueNums", DEFAULT_QUEUE_NUMS)),
        write_queue_nums=int(obj.get("writeQueueNums", DEFAULT_QUEUE_NUMS)),
        perm=int(obj.get("perm", PERM_READ_WRITE)),
        topic_filter_type=str(obj.get("topicFilterType") or "SINGLE_TAG"),
        topic_sys_flag=int(obj.get("topicSysFlag", 0)),
        order=bool(obj.get("order", False)),
    )


def _topic_config_json(tc: TopicConfig) -> dict[str, Any]:
    return {"order": tc.order, "perm": tc.perm, "readQueueNums": tc.read_queue_nums,
            "topicFilterType": tc.topic_filter_type, "topicName": tc.topic_name,
            "topicSysFlag": tc.topic_sys_flag, "writeQueueNums": tc.write_queue_nums}


def _decode_compressed(body: bytes) -> RegisterBrokerBody:
    data = zlib.decompress(body)
    pos = 0

    def chunk() -> bytes:
        nonlocal pos
        (n,) = _INT32.unpack_from(data, pos)
        if n < 0 or pos + 4 + n > len(data):
            raise ValueError(f"length {n} at {pos} runs past the end ({len(data)} bytes)")
        pos += 4 + n
        return data[pos - n:pos]

    version = parse_data_version(fastjson.loads(chunk()))
    (count,) = _INT32.unpack_from(data, pos)
    pos += 4
    configs = {}
    for _ in range(count):
        parts = chunk().decode("utf-8").split(" ")
        if len(parts) != 5:  # TopicConfig.decode ignores such an entry's fields; we skip it
            continue
        name, read, write, perm, filter_type = parts
        configs[name] = TopicConfig(name, int(read), int(write), int(perm), filter_type)
    filters = fastjson.loads(chunk())
    filter_list = [str(a) for a in filters] if isinstance(filters, list) else []
    return RegisterBrokerBody(version, configs, filter_list)
