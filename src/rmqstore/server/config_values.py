"""Typed readers of the values a broker.conf, a namesrv.conf or a command-line flag gives: each
takes the text and returns the value, or raises ValueError whose text says what was expected
("expected an integer within [0, 65535]"), which the caller prefixes with the key and the
value to make the one line `rmqstore serve` prints.

Stricter than Java's: Boolean.parseBoolean reads ``treu`` as false and Integer.parseInt a port
of 70000 as a port; here both are refused.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from pathlib import Path

Reader = Callable[[str], object]

MAX_PORT = 65535


def boolean(raw: str) -> bool:
    text = raw.strip().lower()
    if text not in ("true", "false"):
        raise ValueError("expected true or false")
    return text == "true"


def integer(lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    """An integer within [lo, hi] (either bound may be open)."""
    def read(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(f"expected an integer{_bounds(lo, hi)}") from None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ValueError(f"expected an integer{_bounds(lo, hi)}")
        return value
    return read


def number(lo: float, hi: float) -> Callable[[str], float]:
    def read(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError(f"expected a number within [{lo:g}, {hi:g}]") from None
        if not lo <= value <= hi:
            raise ValueError(f"expected a number within [{lo:g}, {hi:g}]")
        return value
    return read


def _bounds(lo: int | None, hi: int | None) -> str:
    if lo is not None and hi is not None:
        return f" within [{lo}, {hi}]"
    if lo is not None:
        return f" of at least {lo}"
    if hi is not None:
        return f" of at most {hi}"
    return ""


port = integer(0, MAX_PORT)


def choice(*names: str) -> Callable[[str], str]:
    def read(raw: str) -> str:
        if raw.strip() not in names:
            raise ValueError(f"expected one of {', '.join(names)}")
        return raw.strip()
    return read


def ip_address(raw: str) -> str:
    """An IP address (no host name: it is what clients are told to connect to)."""
    try:
        return str(ipaddress.ip_address(raw.strip()))
    except ValueError:
        raise ValueError("expected an IP address such as 10.0.0.5") from None


def host_port(raw: str) -> str:
    """``host:port`` (IPv6 as ``[::1]:port``), the port within [1, 65535]."""
    text = raw.strip()
    host, sep, port_text = text.rpartition(":")
    if text.startswith("["):
        host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port_text.isdigit() or not 1 <= int(port_text) <= MAX_PORT:
        raise ValueError(f"expected host:port, such as 127.0.0.1:9876, not {text!r}")
    return text


def addresses(raw: str) -> tuple[str, ...]:
    """``host:port;host:port`` (RocketMQ's namesrvAddr), at least one."""
    found = tuple(host_port(a) for a in raw.split(";") if a.strip())
    if not found:
        raise ValueError("expected host:port[;host:port...]")
    return found


def path(raw: str) -> Path:
    if not raw.strip():
        raise ValueError("expected a path")
    return Path(raw.strip()).expanduser()


def text(raw: str) -> str:
    return raw.strip()
