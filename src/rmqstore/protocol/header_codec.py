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
    dec = ["def decode(ext):", " get = ext.get", " values = {}"]
    enc = ["def encode(h):", " out = {}"]
    for f, kind in _layout(cls):
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
