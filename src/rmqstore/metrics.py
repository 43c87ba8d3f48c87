"""The store's metrics as a prometheus-client collector, for an application that embeds the
store (the broker's /metrics serves the same families with its own labels):

    from prometheus_client import REGISTRY
    from rmqstore.metrics import StoreCollector
    REGISTRY.register(StoreCollector(store))

Names, units and labels are RocketMQ 5's (DefaultStoreMetricsConstant of rocketmq 5.3, as its
OpenTelemetry Prometheus exporter writes them: the unit appended), plus the disk alarm's own
and whether the store takes writes (rmqstore_store_writes_stopped, by reason).
Each scrape reads the store once (store_stats.read_store_stats); prometheus-client is imported
here only, so the engine needs it only when this module is used.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .disk_alarm import DiskThresholds
from .store_stats import WRITES_STOPPED_REASONS, StoreStats, read_store_stats

if TYPE_CHECKING:
    from .store import MessageStore

# DefaultStoreMetricsManager: every storage series carries these.
STORAGE_LABELS = {"storage_type": "local", "storage_medium": "disk"}


class StoreCollector(Collector):
    def __init__(self, store: MessageStore, labels: Mapping[str, str] | None = None) -> None:
        """labels: constant labels added to every series (e.g. {"node_id": "app-1"})."""
        self._store = store
        self._labels = dict(labels or {})

    def collect(self) -> Iterator[Metric]:
        c = self._store.config
        thresholds = DiskThresholds(c.disk_max_used_ratio, c.disk_clean_forcibly_ratio,
                                    c.disk_full_ratio)
        yield from store_families(read_store_stats(self._store), thresholds, self._labels)


def store_families(stats: StoreStats, thresholds: DiskThresholds,
                   labels: Mapping[str, str]) -> list[Metric]:
    storage = {**labels, **STORAGE_LABELS}
    out = [
        _gauge("rocketmq_storage_size", "Broker storage size: used bytes of the store's "
               "filesystem", "bytes", storage, stats.disk_used_bytes),
        _gauge("rocketmq_storage_flush_behind_bytes", "Bytes written to the commit log and "
               "not yet flushed to disk", "bytes", storage, stats.flush_behind_bytes),
        _gauge("rocketmq_storage_dispatch_behind_bytes", "Bytes of the commit log not yet "
               "dispatched to consume queues and index", "bytes", storage,
               stats.dispatch_behind_bytes),
        _gauge("rocketmq_storage_message_reserve_time", "Age of the oldest message kept",
               "milliseconds", storage, stats.reserve_time_ms),
        _gauge("rmqstore_disk_used_ratio", "Used fraction of the store's filesystem, as the "
               "disk thresholds compare it", "", labels, stats.disk_used_ratio),
        _gauge("rmqstore_disk_alarm_level", "Disk thresholds passed: 0 none, 1 "
               "diskMaxUsedSpaceRatio, 2 diskSpaceCleanForciblyRatio, 3 "
               "diskSpaceWarningLevelRatio (writes refused)", "", labels,
               stats.disk_alarm_level),
        _gauge("rmqstore_commitlog_max_offset_bytes", "Commit-log offset of the next write",
               "", labels, stats.commitlog_max_offset),
    ]
    levels = GaugeMetricFamily("rmqstore_disk_ratio_threshold", "The disk alarm's "
                               "thresholds (diskMaxUsedSpaceRatio, diskSpaceCleanForciblyRatio, "
                               "diskSpaceWarningLevelRatio)", labels=[*labels, "level"])
    for level, value in (("max_used", thresholds.max_used),
                         ("clean_forcibly", thresholds.clean_forcibly),
                         ("warning", thresholds.warning)):
        levels.add_metric([*labels.values(), level], value)
    out.append(levels)
    stopped = GaugeMetricFamily("rmqstore_store_writes_stopped", "1 while the store refuses "
                                "writes for the reason: sync_failed (a commit-log sync failed; "
                                "until reopened), disk_full (above diskSpaceWarningLevelRatio)",
                                labels=[*labels, "reason"])
    for reason in WRITES_STOPPED_REASONS:
        stopped.add_metric([*labels.values(), reason], int(reason in stats.writes_stopped))
    out.append(stopped)
    # only while stopped: no offset would be a true value before a failure
    failed = GaugeMetricFamily("rmqstore_commitlog_sync_failed_offset_bytes", "Commit-log "
                               "offset up to which the log was durable when a sync failed; "
                               "reopened, the store ends the log there", labels=list(labels))
    if stats.sync_failed_at is not None:
        failed.add_metric(list(labels.values()), stats.sync_failed_at)
    out.append(failed)
    return out


def _gauge(name: str, documentation: str, unit: str, labels: Mapping[str, str],
           value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=list(labels), unit=unit)
    family.add_metric(list(labels.values()), value)
    return family
