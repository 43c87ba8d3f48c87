"""Remote address patterns of plain_acl.yml (acl/.../plain/RemoteAddressStrategyFactory.java of
rocketmq-all-4.9.7): ``globalWhiteRemoteAddresses`` entries and an account's
``whiteRemoteAddress``.

    (blank)                       matches nothing
    *   *.*.*.*   *:*:*:*:*:*:*:*   matches every address
    192.168.0.1   ::1             one address (IPv6 in any spelling)
    192.168.0.{1,2}   2::{a,b}    the last part from a list
    1.1.1.1,2.2.2.2               a list of whole addresses
    192.168.1.*   10.10.*.*       one part any value, the parts after it '*'
    192.168.1.1-200   10.1-9.*.*  one part in a range, the parts after it '*'
    2::ac5:78:*   2::ac5:78:1-200   2::ac5:78:1-200:*   IPv6: the last group (or the one
                                  before a final '*') in a hex range

Stricter than Java where Java is silently loose: a pattern it cannot place (a range in the
first part, a fixed part after the range) is refused at load instead of matching more than
written.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import lru_cache

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Matcher = Callable[[Address], bool]
EVERYWHERE = frozenset({"*", "*.*.*.*", "*:*:*:*:*:*:*:*"})


class AddressPatternError(ValueError):
    """A pattern that RemoteAddressStrategyFactory would reject, or one we refuse (see above)."""


def parse_pattern(pattern: str | None) -> Matcher:
    """The matcher of one pattern; AddressPatternError if it is malformed."""
    text = (pattern or "").strip()
    if not text:
        return _nothing
    if text in EVERYWHERE:
        return _anything
    try:
        if text.endswith("}"):
            return _one_of(_expand_braces(text))
        if "," in text:
            return _one_of([part.strip() for part in text.split(",") if part.strip()])
        if "*" in text or "-" in text:
            return _ipv6_range(text) if ":" in text else _ipv4_range(text)
        return _one_of([text])
    except ValueError as exc:
        raise AddressPatternError(f"bad address pattern {text!r}: {exc}") from None


@lru_cache(maxsize=4096)
def peer_address(peer: str) -> Address | None:
    """The address of a "host:port" peer (an IPv6 host unbracketed, as connections name it),
    an IPv4-mapped IPv6 address as IPv4; None if the host is not an address."""
    host = peer.rpartition(":")[0] if ":" in peer else peer
    try:
        addr = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _nothing(_addr: Address) -> bool:
    return False


def _anything(_addr: Address) -> bool:
    return True


def _one_of(texts: list[str]) -> Matcher:
    allowed = frozenset(ipaddress.ip_address(t) for t in texts)
    return allowed.__contains__


def _expand_braces(text: str) -> list[str]:
    """AclUtils.getAddresses: ``prefix{a,b}`` -> prefix + a, prefix + b (last part only)."""
    head, brace, tail = text.partition("{")
    sep = ":" if ":" in text else "."
    if not brace or not (head.endswith(sep) or head.endswith("::")) or "{" in tail:
        raise ValueError("'{...}' must be the whole last part")
    if sep == "." and head.count(".") != 3:
        raise ValueError("an IPv4 address has four parts")
    return [head + item.strip() for item in tail[:-1].split(",") if item.strip()]


def _octet(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 255:
        raise ValueError(f"{text} is not 0-255")
    return value


def _span(text: str, parse: Callable[[str], int]) -> tuple[int, int]:
    """'*' -> the whole range, 'a-b' -> (a, b)."""
    if text == "*":
        return parse("0"), parse("ffff" if parse is _group else "255")
    low, dash, high = text.partition("-")
    if not dash or not low:
        raise ValueError(f"{text!r} is neither '*' nor 'low-high'")
    lo, hi = parse(low), parse(high)
    if lo > hi:
        raise ValueError(f"range {text} runs backwards")
    return lo, hi


def _ipv4_range(text: str) -> Matcher:
    parts = [p.strip() for p in text.split(".")]
    if len(parts) != 4:
        raise ValueError("an IPv4 address has four parts")
    at = next(i for i, p in enumerate(parts) if "*" in p or "-" in p)
    if at == 0 or any(p != "*" for p in parts[at + 1:]):
        raise ValueError("only one part after the first may be a range, and every part "
                         "after it must be '*'")
    prefix = tuple(_octet(p) for p in parts[:at])
    lo, hi = _span(parts[at], _octet)

    def match(addr: Address) -> bool:
        if addr.version != 4:
            return False
        octets = addr.packed
        return tuple(octets[:at]) == prefix and lo <= octets[at] <= hi
    return match


def _group(text: str) -> int:
    value = int(text, 16)
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"{text} is not 0-ffff")
    return value


def _groups(prefix: str, count: int) -> tuple[int, ...]:
    """The first ``count`` groups of an IPv6 prefix that may use '::' (AclUtils.expandIP)."""
    left, double, right = prefix.partition("::")
    head = [g for g in left.split(":") if g] if left else []
    tail = [g for g in right.split(":") if g] if double else []
    missing = count - len(head) - len(tail)
    if missing < 0 or (missing and not double):
        raise ValueError(f"expected {count} groups before the range")
    return tuple(_group(g) for g in head + ["0"] * missing + tail)


def _ipv6_range(text: str) -> Matcher:
    """AclUtils.IPv6AddressCheck and v6ipProcess: '*' only at the very end, a range only in
    the last group or in the one before a final '*' (whose group is then any)."""
    head, _, last = text.rpartition(":")
    if last == "*" and "-" in head.rpartition(":")[2]:
        head, _, ranged = head.rpartition(":")
        count, (lo, hi) = 6, _span(ranged, _group)
    else:
        count, (lo, hi) = 7, _span(last, _group)
    if not head or head.endswith(":") or "*" in head or "-" in head:
        raise ValueError("'*' may only end the pattern, a range only end it or precede that "
                         "'*', and neither may follow '::'")
    prefix = _groups(head, count)

    def match(addr: Address) -> bool:
        if addr.version != 6:
            return False
        groups = [int.from_bytes(addr.packed[i:i + 2], "big") for i in range(0, 16, 2)]
        return tuple(groups[:count]) == prefix and lo <= groups[count] <= hi
    return match
