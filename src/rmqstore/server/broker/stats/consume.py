"""How far each consumer group is behind, per queue: the one computation behind
GET_CONSUME_STATS (208), the lag metrics (ConsumerLagCalculator of rocketmq 5.3: lag,
lag latency, in-flight, ready, queueing latency) and the dashboard's group pages.

For one (group, topic, queue):

    broker offset    the queue's max offset (next offset to be written)
    consumer offset  the group's committed offset (0 when it never committed)
    pulled offset    the next offset of the group's last answered pull (the consumer offset
                     when it has not pulled since the broker started)
    lag              broker - consumer          lag latency   now - store time at consumer
    in flight        pulled - consumer          queueing      now - store time at pulled
    ready            broker - pulled

A latency is 0 when there is nothing behind (RocketMQ reports 0 then too).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ....store import MessageStore
from ..topics import RETRY_PREFIX
from .traffic import Traffic


@dataclass(frozen=True, slots=True)
class QueueProgress:
    topic: str
    queue_id: int
    broker_offset: int
    consumer_offset: int
    pulled_offset: int
    last_timestamp_ms: int  # store time of the last consumed message; 0 if none

    @property
    def lag(self) -> int:
        return max(0, self.broker_offset - self.consumer_offset)

    @property
    def inflight(self) -> int:
        return max(0, self.pulled_offset - self.consumer_offset)

    @property
    def ready(self) -> int:
        return max(0, self.broker_offset - self.pulled_offset)


@dataclass(frozen=True, slots=True)
class GroupTopicLag:
    """One (group, topic)'s queues summed, latencies the oldest queue's: one metric series."""

    group: str
    topic: str
    lag: int
    inflight: int
    ready: int
    lag_latency_ms: int
    queueing_latency_ms: int

    @property
    def is_retry(self) -> bool:
        return self.topic.startswith(RETRY_PREFIX)


class ConsumeProgress:
    """Reads offsets from the store and pulls from Traffic; call on the broker's loop."""

    def __init__(self, store: MessageStore, traffic: Traffic) -> None:
        self._store = store
        self._traffic = traffic

    def queue(self, group: str, topic: str, queue_id: int) -> QueueProgress:
        store = self._store
        broker = max(0, store.max_offset(topic, queue_id))
        consumer = max(0, store.committed_offset(group, topic, queue_id) or 0)
        pulled = self._traffic.pulled.get((group, topic, queue_id), consumer)
        pulled = min(broker, max(pulled, consumer))
        last = self.store_time(topic, queue_id, consumer - 1) if consumer > 0 else 0
        return QueueProgress(topic, queue_id, broker, consumer, pulled, last)

    def queues(self, group: str, topic: str, queue_nums: int) -> list[QueueProgress]:
        return [self.queue(group, topic, q) for q in range(queue_nums)]

    def lag(self, group: str, topic: str, queue_nums: int,
            now_ms: int | None = None) -> GroupTopicLag:
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        lag = inflight = ready = 0
        oldest_unconsumed = oldest_unpulled = now_ms
        for p in self.queues(group, topic, queue_nums):
            lag += p.lag
            inflight += p.inflight
            ready += p.ready
            if p.lag:
                oldest_unconsumed = min(oldest_unconsumed,
                                        self.store_time(topic, p.queue_id, p.consumer_offset)
                                        or now_ms)
            if p.ready:
                oldest_unpulled = min(oldest_unpulled,
                                      self.store_time(topic, p.queue_id, p.pulled_offset)
                                      or now_ms)
        return GroupTopicLag(group, topic, lag, inflight, ready,
                             max(0, now_ms - oldest_unconsumed), max(0, now_ms - oldest_unpulled))

    def lag_sum(self, group: str, topic: str, queue_nums: int) -> int:
        """The group's lag on topic, offsets only (no message read): for frequent sampling."""
        store = self._store
        total = 0
        for q in range(queue_nums):
            broker = store.max_offset(topic, q)
            total += max(0, broker - max(0, store.committed_offset(group, topic, q) or 0))
        return total

    def committed_pairs(self) -> dict[str, set[str]]:
        """group -> topics it committed an offset of (ConsumerOffsetManager's table, read
        once: whichTopicByConsumer for every group at the cost of one pass)."""
        out: dict[str, set[str]] = {}
        for topic, group in self._store.offsets.keys():
            out.setdefault(group, set()).add(topic)
        return out

    def store_time(self, topic: str, queue_id: int, offset: int) -> int:
        """Store timestamp of the message at offset; 0 if it is gone
        (DefaultMessageStore.getMessageStoreTimeStamp)."""
        if offset < 0:
            return 0
        got = self._store.get(topic, queue_id, offset, 1)
        return got.messages[0].store_timestamp if got.messages else 0
