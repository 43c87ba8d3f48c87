"""JSON maps keyed by objects, as fastjson writes RocketMQ's Map<MessageQueue, ...> bodies.

fastjson serializes a map whose keys are beans by writing each key as a JSON object:

    {"consumeTps":0.0,"offsetTable":{{"brokerName":"b","queueId":0,"topic":"T"}:
        {"brokerOffset":5,"consumerOffset":3,"lastTimestamp":1700000000000}}}

That is not JSON, but it is what Java's admin tools (ConsumeStats.decode, TopicStatsTable.decode)
read, so the broker writes it (``dumps``) and our admin client reads it back (``loads``). In
``loads`` an object key becomes a tuple of its sorted (name, value) pairs, so it can key a dict;
``dict(key)`` turns it back into the bean's fields. Plain string-keyed JSON parses as usual.
"""

from __future__ import annotations

import json
from typing import Any

_DECODER = json.JSONDecoder()
_WS = " \t\r\n"


class ObjectKey(dict):
    """Marks a dict to be written as a map whose keys are the (JSON object) keys given:
    ``ObjectKey({(("brokerName","b"),("queueId",0),("topic","T")): {...}})``."""


def dumps(obj: Any) -> bytes:
    """Compact JSON, except that an ObjectKey map writes its tuple keys as JSON objects."""
    return _dump(obj).encode("utf-8")


def _dump(obj: Any) -> str:
    if isinstance(obj, ObjectKey):
        parts = [f"{_dump(dict(k))}:{_dump(v)}" for k, v in obj.items()]
        return "{" + ",".join(parts) + "}"
    if isinstance(obj, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{_dump(v)}" for k, v in obj.items()) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ",".join(_dump(v) for v in obj) + "]"
    return json.dumps(obj, separators=(",", ":"))


def loads(data: bytes | str) -> Any:
    """Parse JSON whose object keys may themselves be objects; raises ValueError."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    value, end = _value(text, _skip(text, 0))
    if _skip(text, end) != len(text):
        raise ValueError(f"extra data at character {end}")
    return value


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WS:
        i += 1
    return i


def _value(text: str, i: int) -> tuple[Any, int]:
    if i >= len(text):
        raise ValueError("unexpected end of JSON")
    ch = text[i]
    if ch == "{":
        return _object(text, i + 1)
    if ch == "[":
        return _array(text, i + 1)
    return _DECODER.raw_decode(text, i)  # strings, numbers, true/false/null


def _object(text: str, i: int) -> tuple[dict, int]:
    out: dict = {}
    i = _skip(text, i)
    if i < len(text) and text[i] == "}":
        return out, i + 1
    while True:
        key, i = _value(text, _skip(text, i))
        i = _skip(text, i)
        if i >= len(text) or text[i] != ":":
            raise ValueError(f"expected ':' at character {i}")
        value, i = _value(text, _skip(text, i + 1))
        out[_hashable(key)] = value
        i = _skip(text, i)
        if i < len(text) and text[i] == ",":
            i += 1
            continue
        if i < len(text) and text[i] == "}":
            return out, i + 1
        raise ValueError(f"expected ',' or '}}' at character {i}")


def _array(text: str, i: int) -> tuple[list, int]:
    out: list = []
    i = _skip(text, i)
    if i < len(text) and text[i] == "]":
        return out, i + 1
    while True:
        value, i = _value(text, _skip(text, i))
        out.append(value)
        i = _skip(text, i)
        if i < len(text) and text[i] == ",":
            i += 1
            continue
        if i < len(text) and text[i] == "]":
            return out, i + 1
        raise ValueError(f"expected ',' or ']' at character {i}")


def _hashable(key: Any) -> Any:
    if isinstance(key, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in key.items()))
    if isinstance(key, list):
        return tuple(_hashable(v) for v in key)
    return key
