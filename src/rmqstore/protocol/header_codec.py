"""Typed custom headers <-> extFields, the way RemotingCommand.decodeCommandCustomHeader does it.

A header is a frozen dataclass whose fields carry their Java (wire) name and whether Java marks
them @CFNotNull. Decoding is lenient where clients differ and strict where a handler would
otherwise misbehave:

* values arrive as strings (json_header turns the C++ client's JSON numbers into strings);
* a boolean is true iff the text is ``true`` (any case) or ``1``: C++ writes bools as "0"/"1",
  Java's Boolean.parseBoolean would read "1" as false;
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
    checked = _checked_decoder(cls)
    return _direct_decoder(cls, checked) or checked, _encoder(cls)


def _checked_decoder(cls: type) -> Any:
    """Field by field through cls(**values), naming the field whose integer is bad."""
    lines = ["def decode(ext):", " get = ext.get", " values = {}"]
    for f, _kind, parse in _parsed_fields(cls, "_int({wire!r}, raw)"):
        wire_name = f.metadata["wire"]
        lines.append(f" raw = get({wire_name!r})")
        lines.append(" if raw is None:")
        lines.append(f"  {_missing(wire_name)}" if f.metadata["required"] else "  pass")
        lines.append(f" else:\n  values[{f.name!r}] = {parse}")
    lines.append(" return cls(**values)")
    return _compile(cls, lines, {})


def _direct_decoder(cls: type, checked: Any) -> Any | None:
    """For a frozen slots dataclass without __post_init__: the fields set straight into a
    new instance through their slot descriptors, skipping cls(**values) and the frozen
    __init__'s object.__setattr__ per field (a send's 14 fields cost 3x as much that way);
    a bad integer falls back to ``checked``, which names the field. None for other classes."""
    slots = getattr(cls, "__slots__", None)
    if slots is None or hasattr(cls, "__post_init__"):
        return None
    lines = ["def decode(ext):", " get = ext.get", " h = new(cls)", " try:"]
    scope: dict[str, Any] = {"new": object.__new__, "checked": checked}
    for f, _kind, parse in _parsed_fields(cls, "int(raw)"):
        if f.name not in slots:
            return None
        wire_name, setter = f.metadata["wire"], f"set_{f.name}"
        scope[setter] = cls.__dict__[f.name].__set__
        lines.append(f"  raw = get({wire_name!r})")
        if f.metadata["required"]:
            lines.append(f"  if raw is None:\n   {_missing(wire_name)}")
            lines.append(f"  {setter}(h, {parse})")
        else:
            scope[f"default_{f.name}"] = f.default
            lines.append(f"  {setter}(h, default_{f.name} if raw is None else {parse})")
    lines.append(" except ValueError:\n  return checked(ext)")
    lines.append(" return h")
    return _compile(cls, lines, scope)


def _encoder(cls: type) -> Any:
    lines = ["def encode(h):", " out = {}"]
    for f, kind, _ in _parsed_fields(cls, ""):
        to_text = {str: "v", int: "str(v)", bool: '"true" if v else "false"'}[kind]
        lines.append(f" v = h.{f.name}")
        lines.append(f" if v is not None:\n  out[{f.metadata['wire']!r}] = {to_text}")
    lines.append(" return out")
    return _compile(cls, lines, {})


def _parsed_fields(cls: type, int_parse: str) -> list[tuple[dataclasses.Field[Any], type, str]]:
    """(field, type, the expression that parses its text ``raw``) for each field of ``cls``."""
    out = []
    for f, kind in _layout(cls):
        parse = {str: "raw", int: int_parse.format(wire=f.metadata["wire"]),
                 bool: "raw.strip().lower() in _TRUE"}.get(kind)
        if parse is None:
            raise TypeError(f"unsupported header field type {kind!r} for {f.name}")
        out.append((f, kind, parse))
    return out


def _missing(wire_name: str) -> str:
    return f"raise HeaderFieldError({f'the custom field <{wire_name}> is null'!r})"


def _compile(cls: type, lines: list[str], scope: dict[str, Any]) -> Any:
    scope.update({"cls": cls, "HeaderFieldError": HeaderFieldError, "_int": _parse_int,
                  "_TRUE": _TRUE})
    exec("\n".join(lines), scope)  # noqa: S102 - our own field names
    return scope[lines[0][4:lines[0].index("(")]]


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
