"""JSON as Java's fastjson writes it for RocketMQ, read and written in one place.

fastjson (RemotingSerializable.encode, and the config files of ConfigManager) departs from
JSON in two ways that RocketMQ's bodies and files carry:

* a map whose keys are not strings keeps them unquoted: ``{"brokerAddrs":{0:"10.0.0.1:10911"}}``
  (Integer/Long keys; a 5.x RegisterBrokerBody's TopicQueueMappingInfo.currIdMap too);
* a map keyed by beans writes each key as a JSON object, as Map<MessageQueue, ...> bodies do::

    {"consumeTps":0.0,"offsetTable":{{"brokerName":"b","queueId":0,"topic":"T"}:
        {"brokerOffset":5,"consumerOffset":3,"lastTimestamp":1700000000000}}}

``loads`` reads standard JSON and both forms. A bare key reads as the text a quoted one would
(``{0:1}`` and ``{"0":1}`` give the same dict), so no reader needs to know which form its
writer chose; an object key becomes a tuple of its sorted (name, value) pairs, so it can key a
dict, and ``dict(key)`` gives the bean's fields back. Text inside string literals is never
touched.

Writers: ``dumps`` writes compact standard JSON (keys sorted, non-ASCII escaped), which
fastjson and the C++ client (jsoncpp with allowNumericKeys) both read; an ``ObjectKey`` map in
it is written with object keys. ``dumps_config`` writes a config file as fastjson's
PrettyFormat does, integer keys of int-keyed maps left bare, so a Java broker reads our
files unchanged.
"""

from __future__ import annotations

import json
import re
from typing import Any

_DECODER = json.JSONDecoder()
_WS = " \t\r\n"
_COMPACT = (",", ":")
# A bare key: an integer (fastjson's Integer/Long keys) or an identifier.
_BARE_KEY = re.compile(r"-?\d+|[A-Za-z_$][\w$]*")
_INT_KEY_MARK = re.compile(r'"\\u0000(-?\d+)"(\s*:)')


class ObjectKey(dict):
    """Marks a map to be written with JSON objects as keys, as fastjson writes a map keyed by
    beans: ``ObjectKey({(("brokerName","b"),("queueId",0),("topic","T")): {...}})``."""


def loads(data: bytes | str) -> Any:
    """Parse standard JSON or fastjson's dialect (bare or object keys); raises ValueError."""
    text = data.decode("utf-8") if isinstance(data, (bytes, bytearray, memoryview)) else data
    try:
        return json.loads(text)  # the common case, at C speed
    except json.JSONDecodeError:
        pass
    value, end = _value(text, _skip(text, 0))
    if _skip(text, end) != len(text):
        raise ValueError(f"extra data at character {end}")
    return value


def dumps(obj: Any) -> bytes:
    """Compact standard JSON, keys sorted and non-ASCII escaped (the Java name server's
    standard-JSON mode: BrowserCompatible, QuoteFieldNames, MapSortField); an ObjectKey map
    writes its tuple keys as JSON objects."""
    if not _has_object_keys(obj):
        return json.dumps(obj, separators=_COMPACT, sort_keys=True,
                          ensure_ascii=True).encode("ascii")
    return _dump(obj).encode("ascii")


def dumps_config(obj: Any) -> str:
    """Pretty JSON for a config file, integer keys of int-keyed maps left bare (``{0:12}``)."""
    text = json.dumps(_mark_int_keys(obj), indent=1, sort_keys=True)
    return _INT_KEY_MARK.sub(r"\1\2", text)


def _has_object_keys(obj: Any) -> bool:
    if isinstance(obj, ObjectKey):
        return True
    if isinstance(obj, dict):
        return any(_has_object_keys(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return any(_has_object_keys(v) for v in obj)
    return False


def _dump(obj: Any) -> str:
    if isinstance(obj, ObjectKey):
        parts = [f"{_dump(dict(k))}:{_dump(v)}" for k, v in obj.items()]
        return "{" + ",".join(parts) + "}"
    if isinstance(obj, dict):
        items = sorted((str(k), v) for k, v in obj.items())
        return "{" + ",".join(f"{json.dumps(k)}:{_dump(v)}" for k, v in items) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ",".join(_dump(v) for v in obj) + "]"
    return json.dumps(obj, separators=_COMPACT)


def _mark_int_keys(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {("\0" + str(k)) if isinstance(k, int) else k: _mark_int_keys(v)
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [_mark_int_keys(v) for v in obj]
    return obj


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


def _key(text: str, i: int) -> tuple[Any, int]:
    if i < len(text) and text[i] not in '"{[':
        bare = _BARE_KEY.match(text, i)
        if bare is not None:
            return bare.group(), bare.end()
    key, i = _value(text, i)
    return _hashable(key), i


def _object(text: str, i: int) -> tuple[dict, int]:
    out: dict = {}
    i = _skip(text, i)
    if i < len(text) and text[i] == "}":
        return out, i + 1
    while True:
        key, i = _key(text, _skip(text, i))
        i = _skip(text, i)
        if i >= len(text) or text[i] != ":":
            raise ValueError(f"expected ':' at character {i}")
        value, i = _value(text, _skip(text, i + 1))
        out[key] = value
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
