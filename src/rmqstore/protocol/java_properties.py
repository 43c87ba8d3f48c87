"""Java .properties text, the part RocketMQ uses: broker.conf and namesrv.conf files, and the
bodies of GET_BROKER_CONFIG (26) and UPDATE_BROKER_CONFIG (25) (MixAll.properties2String and
string2Properties)."""

from __future__ import annotations

from collections.abc import Mapping


def parse_properties(text: str) -> dict[str, str]:
    """``key=value`` or ``key: value`` lines, ``#`` and ``!`` comments: key -> value, both
    stripped; a line without a separator is a key with an empty value."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#!":
            continue
        sep = min((i for i in (line.find("="), line.find(":")) if i > 0), default=-1)
        if sep < 0:
            out[line] = ""
            continue
        out[line[:sep].strip()] = line[sep + 1:].strip()
    return out


def format_properties(items: Mapping[str, object]) -> str:
    """MixAll.properties2String: ``key=value`` lines, values as Java's toString writes them."""
    return "".join(f"{k}={_java_text(v)}\n" for k, v in items.items())


def _java_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
