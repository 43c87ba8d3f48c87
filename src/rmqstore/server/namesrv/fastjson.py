"""JSON as RocketMQ's Java side writes it, and JSON as we write it.

fastjson's default output (RemotingSerializable.encode) writes a map whose keys are not strings
with the keys unquoted: ``{"brokerAddrs":{0:"10.0.0.1:10911"}}``, and a 5.x broker's
RegisterBrokerBody carries Integer-keyed maps (TopicQueueMappingInfo.currIdMap). Python's json
rejects that, so ``loads`` retries with bare keys quoted. Standard JSON takes the fast path.

We always write standard JSON (quoted keys), which fastjson and the C++ client (jsoncpp with
allowNumericKeys) both read (spec 2.16).
"""

from __future__ import annotations

import json
import re
from typing import Any

_COMPACT = (",", ":")
# A bare key right after "{" or ",": an integer (fastjson's Integer/Long keys) or an identifier.
_BARE_KEY = re.compile(r"([{,]\s*)(-?\d+|[A-Za-z_$][\w$]*)(\s*:)")


def loads(data: bytes | str) -> Any:
    """Parse standard JSON or fastjson's unquoted-key dialect; raises ValueError."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        quoted = _quote_bare_keys(text)
        if quoted == text:
            raise
        return json.loads(quoted)


def dumps(obj: Any) -> bytes:
    """Compact standard JSON, keys sorted and non-ASCII escaped, as the Java name server's
    standard-JSON mode writes it (BrowserCompatible, QuoteFieldNames, MapSortField)."""
    return json.dumps(obj, separators=_COMPACT, sort_keys=True, ensure_ascii=True).encode("ascii")


def _quote_bare_keys(text: str) -> str:
    """Quote bare object keys outside string literals."""
    out: list[str] = []
    pos = 0
    for start, end in _code_spans(text):
        out.append(text[pos:start])
        out.append(_BARE_KEY.sub(r'\1"\2"\3', text[start:end]))
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _code_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each stretch of ``text`` that is outside a string literal."""
    spans: list[tuple[int, int]] = []
    start, i, n = 0, 0, len(text)
    while i < n:
        if text[i] != '"':
            i += 1
            continue
        spans.append((start, i))
        i += 1
        while i < n and text[i] != '"':
            i += 2 if text[i] == "\\" else 1
        i += 1
        start = i
    spans.append((start, n))
    return [(s, e) for s, e in spans if s < e]
