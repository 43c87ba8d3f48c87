"""Java .properties, the part RocketMQ's config files use (broker.conf, namesrv.conf,
tls.properties): ``key=value`` or ``key: value`` lines, ``#`` and ``!`` comments."""

from __future__ import annotations


def parse_properties(text: str) -> dict[str, str]:
    """key -> value, both stripped; a line without a separator is a key with an empty value."""
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
