"""The JSON header (serialize type 0): RemotingCommand fields <-> one JSON object.

Decoding follows what fastjson does with RemotingSerializable.decode in rocketmq-all-4.9.7:
absent int fields default to 0, extFields becomes a str -> str map (JSON numbers and booleans
turn into their text), unknown keys are ignored. Encoding writes every extFields value as a
JSON string, because the C++ client reads response fields only when ``isString()``
(rocketmq-client-cpp 1.2.4 src/protocol/CommandHeader.cpp).
"""

from __future__ import annotations

import json
from typing import Any

from .codes import LanguageCode, SerializeType
from .command import RemotingCommand
from .errors import HeaderDecodeError

_LANGUAGE_CODES = frozenset(m.value for m in LanguageCode)
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_COMPACT = (",", ":")


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


# Made once: json.dumps/loads with options build a new encoder/decoder per call, which cost
# more than the (de)coding of a send's header itself.
_ENCODER = json.JSONEncoder(separators=_COMPACT, ensure_ascii=False)
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_quote = json.encoder.encode_basestring  # a JSON string literal, non-ASCII kept as is
_scan = _DECODER.scan_once  # the C scanner: (value, end) of the JSON value at an index


def encode_json_header(cmd: RemotingCommand) -> bytes:
    """The header bytes; keys in fastjson's (sorted) order, remark omitted when None."""
    ext = cmd.ext_fields
    if not _all_str(ext):
        ext = {k: wire_string(v) for k, v in ext.items()}
    # Always present, even empty: C++ dereferences a null SEND/PULL response header
    # (rocketmq-client-cpp 1.2.4, MQClientAPIImpl).
    # Written by hand around json's own string escaper: a dict through JSONEncoder cost three
    # times as much, on every request and response.
    fields = ",".join([f"{_quote(k)}:{_quote(v)}" for k, v in ext.items()])
    remark = "" if cmd.remark is None else f'"remark":{_quote(cmd.remark)},'
    return ('{"code":%d,"extFields":{%s},"flag":%d,"language":%s,"opaque":%d,%s'
            '"serializeTypeCurrentRPC":"JSON","version":%d}'
            % (cmd.code, fields, cmd.flag, _quote(cmd.language), cmd.opaque, remark,
               cmd.version)).encode("utf-8")


def decode_json_header(data: bytes, body: bytes) -> RemotingCommand:
    """Parse a JSON header; raises HeaderDecodeError for anything fastjson would reject."""
    obj = _parse(data)
    if not isinstance(obj, dict):
        raise HeaderDecodeError(f"JSON header is a {type(obj).__name__}, not an object")
    get = obj.get
    code, version, opaque, flag = get("code"), get("version"), get("opaque"), get("flag")
    language, ext = get("language"), get("extFields")
    # What every client sends: int32 numbers, a language name, string extFields. Anything
    # else takes the field-by-field checks below.
    if (type(code) is int and type(version) is int and type(opaque) is int
            and type(flag) is int and _INT32_MIN <= code <= _INT32_MAX
            and _INT32_MIN <= version <= _INT32_MAX and _INT32_MIN <= opaque <= _INT32_MAX
            and _INT32_MIN <= flag <= _INT32_MAX and type(language) is str
            and type(ext) is dict and _all_str(ext)):
        remark = get("remark")
        return RemotingCommand(code, language, version, opaque, flag,
                               remark if remark is None or type(remark) is str
                               else _remark(remark), ext, body, SerializeType.JSON)
    return RemotingCommand(
        code=_int_field(obj, "code"),
        language=_language(language),
        version=_int_field(obj, "version"),
        opaque=_int_field(obj, "opaque"),
        flag=_int_field(obj, "flag"),
        remark=_remark(get("remark")),
        ext_fields=_ext_fields(ext),
        body=body,
        serialize_type=SerializeType.JSON,
    )


def _parse(data: bytes) -> object:
    try:
        text = data.decode("utf-8")
        if text[:1] == "{":  # no leading space: the C scanner alone, without decode()'s frames
            try:
                obj, end = _scan(text, 0)
            except StopIteration:
                obj, end = None, -1  # let the full decoder name the error
            if end == len(text) or (end > 0 and text[end:].isspace()):
                return obj
        return _DECODER.decode(text)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise HeaderDecodeError(f"bad JSON header: {exc}") from exc


def wire_string(value: object) -> str:
    """Java's ``toString()`` of a header value: booleans as true/false, numbers in decimal."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return _ENCODER.encode(value)
    return str(value)


def _int_field(obj: dict[str, Any], key: str) -> int:
    value = obj.get(key)
    if value is None:
        return 0  # a Java int field left unset
    if isinstance(value, str):  # fastjson parses numeric strings into int fields
        try:
            value = int(value.strip())
        except ValueError:
            raise HeaderDecodeError(f"header field {key!r} is not an int: {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise HeaderDecodeError(f"header field {key!r} is not an int: {value!r}")
    if not _INT32_MIN <= value <= _INT32_MAX:
        raise HeaderDecodeError(f"header field {key!r} out of int32 range: {value}")
    return value


def _language(value: object) -> str:
    if value is None:
        return LanguageCode.JAVA.name
    if isinstance(value, str):
        return value  # kept verbatim: only echoed in logs, never acted on
    if isinstance(value, int) and not isinstance(value, bool) and value in _LANGUAGE_CODES:
        return LanguageCode(value).name
    raise HeaderDecodeError(f"header field 'language' is not a language: {value!r}")


def _remark(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return wire_string(value)
    raise HeaderDecodeError(f"header field 'remark' is not a string: {type(value).__name__}")


def _ext_fields(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise HeaderDecodeError(f"extFields is a {type(value).__name__}, not an object")
    if _all_str(value):  # what clients send: kept as decoded
        return value
    # A null value is an absent field to Java (HashMap.get returns null), so drop it here.
    return {k: wire_string(v) for k, v in value.items() if v is not None}


def _all_str(fields: dict[Any, object]) -> bool:
    for v in fields.values():
        if type(v) is not str:
            return False
    return True
