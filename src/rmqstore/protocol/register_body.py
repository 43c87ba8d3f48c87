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

JSON may be fastjson's dialect (unquoted integer map keys); see fastjson.py. TopicConfig's own
forms are in topic_config.py.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

from . import fastjson
from .topic_config import (
    DataVersion,
    TopicConfig,
    parse_data_version,
    parse_serialize_wrapper,
    serialize_wrapper,
)

_INT32 = struct.Struct(">i")  # length prefixes in the compressed form


class RegisterBodyError(ValueError):
    """The body does not decode as any of the three forms."""


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
    """The uncompressed JSON form, as a Java broker sends it."""
    return fastjson.dumps({
        "filterServerList": body.filter_server_list or [],
        "topicConfigSerializeWrapper": serialize_wrapper(body.data_version, body.topic_configs)})


def _decode_json(obj: Any) -> RegisterBrokerBody:
    if not isinstance(obj, dict):
        raise TypeError(f"body is a {type(obj).__name__}, not an object")
    if "topicConfigSerializeWrapper" in obj:
        wrapper = obj.get("topicConfigSerializeWrapper") or {}
        filters = obj.get("filterServerList")
        filter_list = [str(a) for a in filters] if isinstance(filters, list) else []
    else:  # a bare TopicConfigSerializeWrapper (brokers before V3_0_11)
        wrapper, filter_list = obj, None
    version, configs = parse_serialize_wrapper(wrapper)
    return RegisterBrokerBody(version, configs, filter_list)


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
        tc = TopicConfig.from_text(chunk().decode("utf-8"))
        if tc is not None:
            configs[tc.name] = tc
    filters = fastjson.loads(chunk())
    filter_list = [str(a) for a in filters] if isinstance(filters, list) else []
    return RegisterBrokerBody(version, configs, filter_list)
