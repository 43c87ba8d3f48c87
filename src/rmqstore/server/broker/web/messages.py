"""Message lookups for the dashboard: by id (RocketMQ's offset message id, or a UNIQ_KEY with
its topic), by key, by store time; a message's trace from the trace topic; and the DLQ resend.
Every lookup is bounded (MAX_RESULTS messages, MAX_BODY_PREVIEW bytes of each body)."""

from __future__ import annotations

import time
from typing import Any

from ....client.trace import decode_records
from ....errors import StoreError
from ....message import Message
from ....options import RecordInput
from ....store import MessageStore
from ..topics import DLQ_PREFIX, RETRY_PREFIX, BrokerTopics

MAX_RESULTS = 64
MAX_BODY_PREVIEW = 4096
PROP_RETRY_TOPIC = "RETRY_TOPIC"  # MessageConst.PROPERTY_RETRY_TOPIC
PROP_DELAY = "DELAY"
HIDDEN_PROPERTIES = frozenset({"WAIT"})


class LookupRefused(ValueError):
    """A search the dashboard cannot run: the reason goes back as a 400."""


def summary(msg: Message) -> dict[str, Any]:
    props = msg.properties
    return {"msgId": msg.msg_id, "uniqId": props.get("UNIQ_KEY", ""), "topic": msg.topic,
            "queueId": msg.queue_id, "queueOffset": msg.queue_offset,
            "tags": props.get("TAGS", ""), "keys": props.get("KEYS", ""),
            "bornTimestamp": msg.born_timestamp, "storeTimestamp": msg.store_timestamp,
            "reconsumeTimes": msg.reconsume_times, "bodySize": len(msg.body_view)}


def detail(msg: Message) -> dict[str, Any]:
    out = summary(msg)
    born, stored = msg.born_host, msg.store_host
    body = bytes(msg.body_view[:MAX_BODY_PREVIEW])
    out.update({"bornHost": f"{born[0]}:{born[1]}", "storeHost": f"{stored[0]}:{stored[1]}",
                "properties": {k: v for k, v in sorted(msg.properties.items())
                               if k not in HIDDEN_PROPERTIES},
                "body": body.decode("utf-8", "replace"),
                "bodyTruncated": len(msg.body_view) > MAX_BODY_PREVIEW})
    return out


class MessageLookup:
    def __init__(self, store: MessageStore, topics: BrokerTopics, trace_topic: str) -> None:
        self._store = store
        self._topics = topics
        self._trace_topic = trace_topic

    def by_id(self, msg_id: str, topic: str = "") -> Message | None:
        """An offset message id (32 hex digits of host and commit-log offset), else a UNIQ_KEY
        looked up in topic's index."""
        msg_id = msg_id.strip()
        if len(msg_id) == 32:
            try:
                found = self._store.get_by_id(msg_id)
            except (ValueError, StoreError):
                found = None
            if found is not None:
                return found
        if not topic:
            return None
        for msg in self._store.query(topic, msg_id, max_count=MAX_RESULTS):
            if msg.properties.get("UNIQ_KEY") == msg_id:
                return msg
        return None

    def by_key(self, topic: str, key: str, begin_ms: int = 0,
               end_ms: int | None = None) -> list[Message]:
        self._need_topic(topic)
        return self._store.query(topic, key, begin_ms, end_ms, MAX_RESULTS)

    def by_time(self, topic: str, begin_ms: int, end_ms: int) -> list[Message]:
        """Messages of every queue of topic stored within [begin_ms, end_ms], oldest first."""
        cfg = self._need_topic(topic)
        found: list[Message] = []
        for qid in range(max(cfg.read_queue_nums, cfg.write_queue_nums)):
            offset = self._store.offset_for_time(topic, qid, begin_ms)
            got = self._store.get(topic, qid, offset, MAX_RESULTS)
            found.extend(m for m in got.messages if begin_ms <= m.store_timestamp <= end_ms)
        found.sort(key=lambda m: m.store_timestamp)
        return found[:MAX_RESULTS]

    def trace(self, msg: Message) -> list[dict[str, Any]]:
        """The message's trace records (Pub, SubBefore, SubAfter, EndTransaction), oldest
        first: trace messages are indexed by the traced message's UNIQ_KEY."""
        uniq = msg.properties.get("UNIQ_KEY")
        if not uniq or self._topics.get(self._trace_topic) is None:
            return []
        out = []
        for carrier in self._store.query(self._trace_topic, uniq, max_count=MAX_RESULTS):
            for record in decode_records(carrier.body):
                if record.msg_id == uniq:
                    out.append({"type": record.type.value, "timestamp": record.timestamp_ms,
                                "group": record.group, "topic": record.topic,
                                "costTime": record.cost_ms, "success": record.success,
                                "clientHost": record.client_host,
                                "storeHost": record.store_host})
        out.sort(key=lambda r: r["timestamp"])
        return out

    def dlq(self, group: str, begin_ms: int = 0, end_ms: int | None = None) -> list[Message]:
        topic = DLQ_PREFIX + group
        if self._topics.get(topic) is None:
            return []
        return self.by_time(topic, begin_ms, end_ms if end_ms is not None else _now_ms())

    def resend(self, group: str, msg_id: str) -> dict[str, Any]:
        """Put a message of %DLQ%<group> back in %RETRY%<group>, reconsume count reset, so
        the group's consumers get it again (and only that group's)."""
        msg = self.by_id(msg_id, DLQ_PREFIX + group)
        if msg is None or msg.topic != DLQ_PREFIX + group:
            raise LookupRefused(f"no message {msg_id[:64]!r} in {DLQ_PREFIX}{group}")
        retry = RETRY_PREFIX + group
        self._topics.ensure_system(retry)
        props = dict(msg.properties)
        props.pop(PROP_DELAY, None)
        props.setdefault(PROP_RETRY_TOPIC, msg.topic)
        pending = self._store.put_record(retry, bytes(msg.body_view), 0,
                                         RecordInput.copy_of(msg, props, reconsume_times=0))
        return {"topic": retry, "msgId": pending.result.msg_id}

    def _need_topic(self, topic: str):
        cfg = self._topics.get(topic)
        if cfg is None:
            raise LookupRefused(f"no topic {topic[:130]!r} on this broker")
        return cfg


def _now_ms() -> int:
    return int(time.time() * 1000)
