"""The engine's view of the commit-log record: what the native parser hands back, the size
arithmetic, and RocketMQ's topic rule. The record's bytes, flags and property codec have one
home, rmqstore.protocol.message, which the broker's wire shares; they are imported from there.
"""

from __future__ import annotations

import re
from enum import IntEnum

from .errors import InvalidPropertyError, InvalidTopicError
from .protocol import message as _wire
from .protocol.message import (  # noqa: F401 - the engine imports the layout from here
    COMPRESSION_LZ4,
    COMPRESSION_MASK,
    COMPRESSION_SHIFT,
    COMPRESSION_ZLIB,
    FIXED_OVERHEAD,
    MAGIC_BLANK,
    MAGIC_V1,
    MAX_PROPERTIES_BYTES,
    MAX_TOPIC_CHARS,
    NAME_VALUE_SEPARATOR,
    PROP_KEYS,
    PROP_TAGS,
    PROP_UNIQ_KEY,
    PROPERTY_SEPARATOR,
    SYSFLAG_BORNHOST_V6,
    SYSFLAG_COMPRESSED,
    SYSFLAG_STOREHOST_V6,
    SYSFLAG_TX_COMMIT,
    SYSFLAG_TX_MASK,
    SYSFLAG_TX_PREPARED,
    SYSFLAG_TX_ROLLBACK,
    decode_host,
    decode_properties,
    encode_host,
    make_msg_id,
    parse_msg_id,
)

END_FILE_MIN_BLANK = 8

_TOPIC_RE = re.compile(r"^[%|a-zA-Z0-9_-]+$")


class RecordField(IntEnum):
    """Positions in the tuple the native parser returns."""

    SIZE = 0
    QUEUE_ID = 1
    FLAG = 2
    QUEUE_OFFSET = 3
    PHYSICAL_OFFSET = 4
    SYSFLAG = 5
    BORN_TIMESTAMP = 6
    STORE_TIMESTAMP = 7
    RECONSUME_TIMES = 8
    PREPARED_OFFSET = 9
    BODY_POS = 10
    BODY_LEN = 11
    TOPIC_POS = 12
    TOPIC_LEN = 13
    PROPS_POS = 14
    PROPS_LEN = 15


def record_size(body_len: int, topic_len: int, props_len: int, sysflag: int = 0) -> int:
    """CommitLog.calMsgLength."""
    extra = ((12 if sysflag & SYSFLAG_BORNHOST_V6 else 0)
             + (12 if sysflag & SYSFLAG_STOREHOST_V6 else 0))
    return FIXED_OVERHEAD + extra + body_len + topic_len + props_len


def check_topic(topic: str) -> bytes:
    """RocketMQ's topic rule (Validators.checkTopic): [%|a-zA-Z0-9_-]{1,127}. The rule keeps a
    topic from ever naming a path outside the store. Returns the encoded topic."""
    if not isinstance(topic, str) or not topic:
        raise InvalidTopicError("topic must be a non-empty str")
    if len(topic) > MAX_TOPIC_CHARS:
        raise InvalidTopicError(f"topic longer than {MAX_TOPIC_CHARS} characters: "
                                f"{topic[:40]!r}...")
    if not _TOPIC_RE.match(topic):
        raise InvalidTopicError(f"topic {topic!r} has characters outside [%|a-zA-Z0-9_-]")
    return topic.encode("ascii")


def encode_properties(props: dict[str, str]) -> bytes:
    """The stored PROPERTIES bytes; InvalidPropertyError where protocol says PropertyError."""
    try:
        return _wire.encode_properties(props)
    except _wire.PropertyError as exc:
        raise InvalidPropertyError(str(exc)) from None
