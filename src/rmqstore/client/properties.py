"""Process-wide client properties: what Java system properties are to RocketMQ's client.

Java clients read a few settings with ``System.getProperty`` (set by ``-Dkey=value`` on the java
command line, in JAVA_OPTS, or by ``System.setProperty`` in code). Python has no such thing, so
the client keeps one mapping, ``system_properties``, filled at import from the ``-Dkey=value``
words of the ``RMQSTORE_CLIENT_OPTS`` environment variable and changeable in code::

    from rmqstore.client import system_properties
    system_properties["rocketmq.namesrv.addr"] = "10.0.0.1:9876;10.0.0.2:9876"

Keys and values are strings, as in Java. Clients read the mapping when they start (Java reads
it when the client object is built); an empty value counts as unset. Keys read today:
``rocketmq.namesrv.addr``, ``rocketmq.namesrv.domain``, ``rocketmq.namesrv.domain.subgroup``.
"""

from __future__ import annotations

import logging
import os
import shlex
from collections.abc import Iterator, MutableMapping

log = logging.getLogger(__name__)

OPTS_ENV = "RMQSTORE_CLIENT_OPTS"  # like JAVA_OPTS: "-Drocketmq.namesrv.addr=h:9876 ..."

# MixAll.NAMESRV_ADDR_PROPERTY and the two keys of MixAll.getWSAddr.
NAMESRV_ADDR = "rocketmq.namesrv.addr"
NAMESRV_DOMAIN = "rocketmq.namesrv.domain"
NAMESRV_DOMAIN_SUBGROUP = "rocketmq.namesrv.domain.subgroup"


def parse_opts(text: str) -> dict[str, str]:
    """The ``-Dkey=value`` words of ``text`` (shell quoting allowed; ``-Dkey`` alone is ``""``,
    as java does). Other words (``-Xmx1g``) are skipped; a ``-D`` with no key is logged and
    skipped, so a typo cannot stop the client from importing."""
    try:
        words = shlex.split(text)
    except ValueError as exc:  # unbalanced quote: fall back to plain words
        log.warning("%s: %s; reading it as plain words", OPTS_ENV, exc)
        words = text.split()
    out: dict[str, str] = {}
    for word in words:
        if not word.startswith("-D"):
            continue
        key, _, value = word[2:].partition("=")
        if not key:
            log.warning("%s: ignoring %r (no property name)", OPTS_ENV, word)
            continue
        out[key] = value
    return out


class SystemProperties(MutableMapping[str, str]):
    """A str -> str mapping that refuses other types (a typo like ``= 9876`` fails at once)."""

    def __init__(self, initial: dict[str, str] | None = None) -> None:
        self._data: dict[str, str] = {}
        for k, v in (initial or {}).items():
            self[k] = v

    def __getitem__(self, key: str) -> str:
        return self._data[key]

    def __setitem__(self, key: str, value: str) -> None:
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"system properties are str -> str, got {key!r}: {value!r}")
        self._data[key] = value

    def __delitem__(self, key: str) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"SystemProperties({self._data!r})"

    def value(self, key: str) -> str | None:
        """The value of ``key``, or None when unset or empty."""
        return self._data.get(key) or None


system_properties = SystemProperties(parse_opts(os.environ.get(OPTS_ENV, "")))
