"""The message a client sends, and the names it shares with the broker's wire.

What a consumer receives (MessageExt), the queue it comes from (MessageQueue), the stored-record
walker of pull bodies (decode_messages) and the batch body (encode_batch) are wire formats and
live in rmqstore.protocol.message; they are imported here for the client's own modules.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..protocol.message import (
    DLQ_GROUP_TOPIC_PREFIX,
    PROP_DELAY,
    PROP_KEYS,
    PROP_MAX_OFFSET,
    PROP_MAX_RECONSUME_TIMES,
    PROP_MIN_OFFSET,
    PROP_ORIGIN_MESSAGE_ID,
    PROP_RECONSUME_TIME,
    PROP_RETRY_TOPIC,
    PROP_SHARDING_KEY,
    PROP_TAGS,
    PROP_TIMER_DELAY_MS,
    PROP_TIMER_DELIVER_MS,
    PROP_UNIQ_KEY,
    PROP_WAIT,
    RETRY_GROUP_TOPIC_PREFIX,
    MessageExt,
    MessageQueue,
    decode_body,
    decode_messages,
    decode_properties,
    encode_batch,
    properties_text,
)

__all__ = [
    "DLQ_GROUP_TOPIC_PREFIX", "PROP_DELAY", "PROP_KEYS", "PROP_MAX_OFFSET",
    "PROP_MAX_RECONSUME_TIMES", "PROP_MIN_OFFSET", "PROP_ORIGIN_MESSAGE_ID",
    "PROP_RECONSUME_TIME", "PROP_RETRY_TOPIC", "PROP_SHARDING_KEY", "PROP_TAGS",
    "PROP_TIMER_DELAY_MS", "PROP_TIMER_DELIVER_MS", "PROP_UNIQ_KEY", "PROP_WAIT",
    "RETRY_GROUP_TOPIC_PREFIX", "Message", "MessageExt", "MessageQueue", "decode_body",
    "decode_messages", "decode_properties", "encode_batch", "properties_text",
]


@dataclass(slots=True)
class Message:
    """A message to send. ``properties`` holds user properties and the well-known ones
    (TAGS, KEYS, DELAY ...) as RocketMQ keeps them: one str -> str map."""

    topic: str
    body: bytes
    tags: str | None = None
    keys: str | list[str] | None = None
    flag: int = 0
    properties: dict[str, str] = field(default_factory=dict)
    delay_level: int = 0  # 1..18: 1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h
    wait_store_msg_ok: bool = True
    # Delivery at any time (RocketMQ 5 timer messages; a broker of ours or RocketMQ >= 5):
    # an absolute epoch-ms time (setDeliverTimeMs) or a delay from the broker's receipt
    # (setDelayTimeMs). One of the two; the broker refuses times beyond timerMaxDelaySec.
    deliver_time_ms: int | None = None
    delay_ms: int | None = None

    @property
    def timed(self) -> bool:
        """True when the message asks for a delivery time or delay."""
        return self.deliver_time_ms is not None or self.delay_ms is not None

    def wire_properties(self) -> dict[str, str]:
        """The properties as sent: user ones plus TAGS, KEYS, DELAY, the timer ones and WAIT."""
        props = dict(self.properties)
        if self.tags:
            props[PROP_TAGS] = self.tags
        if self.keys:
            props[PROP_KEYS] = self.keys if isinstance(self.keys, str) else " ".join(self.keys)
        if self.delay_level > 0:
            props[PROP_DELAY] = str(self.delay_level)
        if self.deliver_time_ms is not None and self.delay_ms is not None:
            raise ValueError("set deliver_time_ms or delay_ms, not both")
        if self.deliver_time_ms is not None:
            props[PROP_TIMER_DELIVER_MS] = str(int(self.deliver_time_ms))
        elif self.delay_ms is not None:
            props[PROP_TIMER_DELAY_MS] = str(int(self.delay_ms))
        props[PROP_WAIT] = "true" if self.wait_store_msg_ok else "false"
        return props
