"""The broker's /metrics: RocketMQ 5's broker metrics (BrokerMetricsConstant,
BrokerMetricsManager, RemotingMetricsManager of rocketmq 5.3) under the names its
OpenTelemetry Prometheus exporter writes (unit appended, counters ending in _total), with the
three labels every RocketMQ series carries (cluster, node_type, node_id), so that a Grafana
board made for RocketMQ 5 reads them; then the store's families (rmqstore.metrics).

A scrape builds every family from the broker's state on a thread (web/server.py), reading
the loop's tables only through copies made in one C-level call (list(d.items()) and the like,
atomic under the GIL) and the store, which any thread may read: counters from stats.Traffic,
lag from stats.ConsumeProgress, connections from the ClientManager.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from ....disk_alarm import DiskThresholds
from ....metrics import store_families
from ....store import MessageStore
from ....store_stats import read_store_stats
from ..config import BrokerConfig
from ..handlers.clients import ClientManager
from ..stats import Statistics
from ..stats.buckets import Buckets
from ..subgroups import SubscriptionGroupManager
from ..topics import BrokerTopics
from . import labels as L
from .rpc import RpcLatency

LAG = ("consumer_group", "topic", "is_retry", "is_system")


@dataclass(frozen=True)
class BrokerState:
    """What a scrape reads."""

    config: BrokerConfig
    store: MessageStore
    topics: BrokerTopics
    groups: SubscriptionGroupManager
    clients: ClientManager
    stats: Statistics
    rpc: RpcLatency


class BrokerCollector(Collector):
    def __init__(self, state: BrokerState) -> None:
        self._s = state
        c = state.config
        self._common = {"cluster": c.cluster_name, "node_type": "broker",
                        "node_id": c.broker_name, **dict(c.metrics_labels)}

    def collect(self) -> Iterator[Metric]:
        yield from self._traffic()
        yield from self._tables()
        yield from self._connections()
        yield from self._lag()
        yield from self._rpc()
        store = self._s.store
        c = store.config
        yield from store_families(read_store_stats(store), DiskThresholds(
            c.disk_max_used_ratio, c.disk_clean_forcibly_ratio, c.disk_full_ratio), self._common)

    # -- families -----------------------------------------------------------------------
    def _traffic(self) -> Iterator[Metric]:
        t = self._s.stats.traffic
        keys = ("topic", "message_type", "is_system")
        msgs_in = self._counter("rocketmq_messages_in", "Messages stored", keys)
        bytes_in = self._counter("rocketmq_throughput_in", "Body bytes stored", keys)
        sizes = self._histogram("rocketmq_message_size", "Size of the messages stored",
                                ("topic", "message_type"))
        for (topic, kind), flow in list(t.inflow.items()):
            values = [topic, kind, L.is_system(topic)]
            self._add(msgs_in, values, flow.messages)
            self._add(bytes_in, values, flow.bytes)
            self._add_buckets(sizes, [topic, kind], flow.sizes)
        keys = ("topic", "consumer_group", "is_retry", "is_system")
        msgs_out = self._counter("rocketmq_messages_out", "Messages handed to consumers", keys)
        bytes_out = self._counter("rocketmq_throughput_out", "Bytes handed to consumers", keys)
        for (topic, group), flow in list(t.outflow.items()):
            values = [topic, group, L.flag(topic.startswith("%RETRY%")),
                      L.is_system(topic, group)]
            self._add(msgs_out, values, flow.messages)
            self._add(bytes_out, values, flow.bytes)
        dlq = self._counter("rocketmq_send_to_dlq_messages", "Messages sent to a dead letter "
                            "queue after their last retry", ("consumer_group", "topic",
                                                            "is_system"))
        for (group, topic), n in list(t.dlq.items()):
            self._add(dlq, [group, topic, L.is_system(topic, group)], n)
        commits = self._counter("rocketmq_commit_messages", "Transaction messages committed",
                                ("topic",))
        for topic, n in list(t.commits.items()):
            self._add(commits, [topic], n)
        rollbacks = self._counter("rocketmq_rollback_messages", "Transaction messages rolled "
                                  "back", ("topic",))
        for topic, n in list(t.rollbacks.items()):
            self._add(rollbacks, [topic], n)
        return [msgs_in, bytes_in, sizes, msgs_out, bytes_out, dlq, commits, rollbacks]

    def _tables(self) -> Iterator[Metric]:
        s = self._s
        yield self._gauge_of("rocketmq_topic_number", "Topics of this broker",
                             len(s.topics.all_configs()))
        yield self._gauge_of("rocketmq_consumer_group_number", "Subscription groups of this "
                             "broker", len(s.groups.all().get("subscriptionGroupTable", {})))
        yield self._gauge_of("rocketmq_broker_permission", "brokerPermission (2 write, 4 "
                             "read, 6 both)", s.config.broker_permission)

    def _connections(self) -> Iterator[Metric]:
        producers: dict[tuple[str, ...], int] = {}
        for members in list(self._s.clients.producers.values()):
            for client in list(members.values()):
                key = (L.language(client.language), L.version_desc(client.version),
                       L.PROTOCOL_REMOTING)
                producers[key] = producers.get(key, 0) + 1
        family = self._gauge("rocketmq_producer_connections", "Producer connections",
                             ("language", "version", "protocol_type"))
        for key, n in producers.items():
            self._add(family, list(key), n)
        yield family
        consumers: dict[tuple[str, ...], int] = {}
        for group, info in list(self._s.clients.consumers.items()):
            mode = L.CONSUME_MODES.get(info.consume_type, info.consume_type.lower())
            for client in list(info.clients.values()):
                key = (group, L.language(client.language), L.version_desc(client.version),
                       mode, L.PROTOCOL_REMOTING, L.flag(L.is_system_group(group)))
                consumers[key] = consumers.get(key, 0) + 1
        family = self._gauge("rocketmq_consumer_connections", "Consumer connections",
                             ("consumer_group", "language", "version", "consume_mode",
                              "protocol_type", "is_system"))
        for key, n in consumers.items():
            self._add(family, list(key), n)
        yield family

    def _lag(self) -> Iterator[Metric]:
        families = {
            "lag": self._gauge("rocketmq_consumer_lag_messages", "Messages stored and not yet "
                               "committed by the group", LAG),
            "lag_latency_ms": self._gauge("rocketmq_consumer_lag_latency", "Age of the oldest "
                                          "message the group has not committed", LAG,
                                          "milliseconds"),
            "inflight": self._gauge("rocketmq_consumer_inflight_messages", "Messages pulled "
                                    "and not yet committed", LAG),
            "queueing_latency_ms": self._gauge("rocketmq_consumer_queueing_latency",
                                               "Age of the oldest message not yet pulled", LAG,
                                               "milliseconds"),
            "ready": self._gauge("rocketmq_consumer_ready_messages", "Messages not yet "
                                 "pulled", LAG),
        }
        now_ms = int(time.time() * 1000)
        for lag in self._s.stats.group_lags(now_ms):
            values = [lag.group, lag.topic, L.flag(lag.is_retry),
                      L.is_system(lag.topic, lag.group)]
            for attr, family in families.items():
                self._add(family, values, getattr(lag, attr))
        return families.values()

    def _rpc(self) -> Iterator[Metric]:
        family = self._histogram("rocketmq_rpc_latency", "Time from a request's arrival to "
                                 "its answer", ("protocol_type", "request_code",
                                                "response_code", "is_long_polling", "result"),
                                 "milliseconds")
        for key, buckets in list(self._s.rpc.series.items()):
            self._add_buckets(family, [L.PROTOCOL_REMOTING, *key], buckets)
        yield family

    # -- helpers: every series carries the common labels first ----------------------------
    def _names(self, keys: tuple[str, ...]) -> list[str]:
        return [*self._common, *keys]

    def _counter(self, name: str, doc: str, keys: tuple[str, ...]) -> CounterMetricFamily:
        return CounterMetricFamily(name, doc, labels=self._names(keys))

    def _gauge(self, name: str, doc: str, keys: tuple[str, ...],
               unit: str = "") -> GaugeMetricFamily:
        return GaugeMetricFamily(name, doc, labels=self._names(keys), unit=unit)

    def _gauge_of(self, name: str, doc: str, value: float) -> GaugeMetricFamily:
        family = self._gauge(name, doc, ())
        self._add(family, [], value)
        return family

    def _histogram(self, name: str, doc: str, keys: tuple[str, ...],
                   unit: str = "") -> HistogramMetricFamily:
        return HistogramMetricFamily(name, doc, labels=self._names(keys), unit=unit)

    def _add(self, family: CounterMetricFamily | GaugeMetricFamily, values: list[str],
             value: float) -> None:
        family.add_metric([*self._common.values(), *values], value)

    def _add_buckets(self, family: HistogramMetricFamily, values: list[str],
                     buckets: Buckets) -> None:
        cumulative = [(floatToGoString(bound), n) for bound, n in buckets.cumulative()]
        family.add_metric([*self._common.values(), *values], cumulative, buckets.total)
