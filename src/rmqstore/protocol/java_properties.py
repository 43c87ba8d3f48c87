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
        entry = _entry(line)
        if entry is not None:
            out[entry[0]] = entry[1]
    return out


def rewrite_properties(text: str, items: Mapping[str, str]) -> str:
    """``text`` with each key of ``items`` set to its value: every line that sets the key is
    rewritten in place (comments, order and other keys stay as they were), and a key no line
    sets is appended. What Configuration.persist leaves in effect, without its rewrite of the
    whole file from memory."""
    lines = text.splitlines()
    missing = dict(items)
    for i, line in enumerate(lines):
        entry = _entry(line)
        if entry is not None and entry[0] in items:
            lines[i] = f"{entry[0]}={items[entry[0]]}"
            missing.pop(entry[0], None)
    lines.extend(f"{key}={value}" for key, value in missing.items())
    return "".join(f"{line}\n" for line in lines)


def _entry(line: str) -> tuple[str, str] | None:
    """(key, value) of one line, stripped; None for a blank line or a comment."""
    line = line.strip()
    if not line or line[0] in "#!":
        return None
    sep = min((i for i in (line.find("="), line.find(":")) if i > 0), default=-1)
    if sep < 0:
        return line, ""
    return line[:sep].strip(), line[sep + 1:].strip()


def format_properties(items: Mapping[str, object]) -> str:
    """MixAll.properties2String: ``key=value`` lines, values as Java's toString writes them."""
    return "".join(f"{k}={_java_text(v)}\n" for k, v in items.items())


def _java_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
