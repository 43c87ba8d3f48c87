"""What the broker observes of itself, in one place for /metrics, the dashboard and the admin
requests that report it (GET_CONSUME_STATS):

    traffic.py   messages and bytes in and out, DLQ and transaction counts, pulled offsets
    consume.py   consume progress per queue: lag, in-flight, ready, and their latencies
    history.py   ring buffers sampled every few seconds: TPS per topic and group, lag over time
    buckets.py   the cheap fixed-bound histograms the counters use
"""

from __future__ import annotations

import time

from ....store import MessageStore
from ..handlers.clients import ClientManager
from ..topics import BrokerTopics
from .consume import ConsumeProgress, GroupTopicLag, QueueProgress
from .history import History, Point
from .traffic import Traffic, message_type

__all__ = ["ConsumeProgress", "GroupTopicLag", "History", "Point", "QueueProgress",
           "Statistics", "Traffic", "message_type"]


class Statistics:
    """The broker's traffic counters, consume progress and history; on the broker's loop."""

    def __init__(self, store: MessageStore, topics: BrokerTopics,
                 clients: ClientManager) -> None:
        self.traffic = Traffic()
        self.progress = ConsumeProgress(store, self.traffic)
        self._topics = topics
        self._clients = clients
        self.history = History(self.traffic, self.lag_totals)
        self.boot_ms = int(time.time() * 1000)

    def group_topics(self) -> dict[str, set[str]]:
        """group -> topics it consumes: those it committed offsets of, and those its online
        members subscribe (ConsumerLagCalculator's two sources)."""
        pairs = self.progress.committed_pairs()
        for group, info in list(self._clients.consumers.items()):
            if info.clients:
                pairs.setdefault(group, set()).update(info.subscriptions)
        return pairs

    def group_lags(self, now_ms: int | None = None) -> list[GroupTopicLag]:
        """Every (group, topic)'s lag, for the metrics."""
        out = []
        for group, topics in sorted(self.group_topics().items()):
            for topic in sorted(topics):
                cfg = self._topics.get(topic)
                if cfg is not None:
                    out.append(self.progress.lag(group, topic, cfg.read_queue_nums, now_ms))
        return out

    def lag_totals(self) -> dict[str, int]:
        """group -> its lag summed over its topics, offsets only (the history's samples)."""
        out = {}
        for group, topics in self.group_topics().items():
            total = 0
            for topic in topics:
                cfg = self._topics.get(topic)
                if cfg is not None:
                    total += self.progress.lag_sum(group, topic, cfg.read_queue_nums)
            out[group] = total
        return out
