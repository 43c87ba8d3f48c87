"""What a put stores besides its topic, queue and body.

PutOptions is the embedded API's: a message's optional fields, one value that put, put_async,
put_batch and the delay/timer services take (their keyword arguments build one). RecordInput
is the fuller form the broker and the store's own services hand to MessageStore.put_record:
properties as they will be stored, and the fields only they set (the producer's address and
sysFlag, a unit's tags code that is not a tag's hash).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from . import _native
from .message import Message
from .record import PROP_KEYS, PROP_TAGS

_CACHE_MAX = 4096
_tags_cache: dict[str, int] = {}


class PutOptions(NamedTuple):
    """A message's optional fields (RocketMQ's Message). Immutable, so one value can serve
    many puts; put(..., tags="new") builds one from its keyword arguments."""

    tags: str | None = None
    keys: Iterable[str] | str = ()  # each indexed; a key holding spaces is several keys
    properties: Mapping[str, str] | None = None
    flag: int = 0  # the producer's opaque int
    born_timestamp: int | None = None  # the producer's clock, ms; None: the store time
    reconsume_times: int = 0

    def record(self) -> RecordInput:
        """The record these options describe: TAGS and KEYS join the properties, and the
        unit's tags code is the hash of ``tags`` (0 without)."""
        props = dict(self.properties) if self.properties else {}
        tags = self.tags
        if tags:
            props[PROP_TAGS] = tags
        keys = [self.keys] if isinstance(self.keys, str) else list(self.keys)
        if keys:
            props[PROP_KEYS] = " ".join(keys)
        # Positional: a put with options pays for this on every call.
        return RecordInput(props, None, tags_code(tags) if tags else 0, self.flag,
                           self.born_timestamp, self.reconsume_times)


def put_options(options: PutOptions | None, fields: dict[str, Any]) -> PutOptions:
    """The options of a put given either ``options`` or keyword ``fields`` (TypeError for
    both, or for a field PutOptions does not have)."""
    if options is None:
        return PutOptions(**fields)
    if fields:
        raise TypeError(f"give options or keyword fields, not both ({', '.join(fields)})")
    return options


@dataclass(slots=True)
class RecordInput:
    """One message as the broker and the store's services (delay levels, timers,
    transactions) store it. ``properties`` are stored as they are; TAGS, KEYS and UNIQ_KEY
    among them say the unit's tags code and the index keys."""

    properties: dict[str, str]
    # The properties' encoding when the caller has the bytes already (a producer's text kept
    # as sent); it must decode to ``properties``. None: the store encodes them.
    encoded: bytes | None = None
    tags_code: int | None = None  # None: the hash of TAGS; delay levels put a delivery time
    flag: int = 0
    born_timestamp: int | None = None  # None: the store time
    reconsume_times: int = 0
    born_host: tuple[str, int] | None = None  # the producer's address; None: the store host
    sysflag: int = 0  # the producer's: a body flagged compressed is stored as given

    @classmethod
    def copy_of(cls, msg: Message, properties: dict[str, str], *, sysflag: int | None = None,
                reconsume_times: int | None = None) -> RecordInput:
        """``msg`` stored again with ``properties``: same flag, born time and host, sysflag and
        reconsume times unless given. Its stored body goes with it, so a compressed body stays
        compressed under the same sysflag."""
        return cls(properties, flag=msg.flag, born_timestamp=msg.born_timestamp,
                   reconsume_times=msg.reconsume_times if reconsume_times is None
                   else reconsume_times,
                   born_host=msg.born_host, sysflag=msg.sysflag if sysflag is None else sysflag)


def tags_code(tags: str) -> int:
    """The consume-queue unit's tags code of a tag: Java's String.hashCode (cached: tags
    repeat)."""
    code = _tags_cache.get(tags)
    if code is None:
        code = _native.java_hash(tags)
        if len(_tags_cache) >= _CACHE_MAX:
            _tags_cache.clear()
        _tags_cache[tags] = code
    return code
