"""The embedded store's metrics: rmqstore.metrics.StoreCollector registered in an
application's prometheus-client registry, parsed back from the text a scrape would get; and
the disk alarm's levels, logged when they change."""

from __future__ import annotations

import logging
import time

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import rmqstore
import rmqstore.store
from rmqstore.disk_alarm import DiskAlarm, DiskThresholds
from rmqstore.metrics import StoreCollector

STORAGE = {"storage_type": "local", "storage_medium": "disk"}


def _scrape(registry: CollectorRegistry) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        assert family.documentation, family.name
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def _one(scrape: dict, name: str) -> float:
    (value,) = scrape[name].values()
    return value


def test_collector_values_follow_the_store(tmp_path, small_config) -> None:
    with rmqstore.open(tmp_path, **small_config) as store:
        registry = CollectorRegistry()
        registry.register(StoreCollector(store, {"node_id": "app-1"}))
        empty = _scrape(registry)
        assert _one(empty, "rocketmq_storage_flush_behind_bytes") == 0
        assert _one(empty, "rocketmq_storage_message_reserve_time_milliseconds") == 0
        assert set(dict(next(iter(empty["rocketmq_storage_size_bytes"]))).items()) == \
            {("node_id", "app-1"), *STORAGE.items()}
        for _ in range(10):
            store.put("T", b"x" * 50)
        time.sleep(0.02)
        written = _scrape(registry)
        behind = _one(written, "rocketmq_storage_flush_behind_bytes")
        assert behind == store.commitlog.max_offset > 0  # no flusher runs (background=False)
        assert _one(written, "rmqstore_commitlog_max_offset_bytes") == store.commitlog.max_offset
        assert _one(written, "rocketmq_storage_message_reserve_time_milliseconds") >= 20
        assert _one(written, "rocketmq_storage_dispatch_behind_bytes") == 0
        assert 0 < _one(written, "rmqstore_disk_used_ratio") < 1
        thresholds = {dict(k)["level"]: v
                      for k, v in written["rmqstore_disk_ratio_threshold"].items()}
        assert thresholds == {"max_used": 0.75, "clean_forcibly": 0.85, "warning": 0.90}
        store.flush()
        assert _one(_scrape(registry), "rocketmq_storage_flush_behind_bytes") == 0


def test_disk_alarm_levels_and_their_log(caplog) -> None:
    alarm = DiskAlarm(DiskThresholds(0.75, 0.85, 0.90), "/data")
    caplog.set_level(logging.INFO, logger="rmqstore.disk_alarm")
    assert [alarm.observe(r) for r in (0.5, 0.76, 0.76, 0.86, 0.91, 0.7)] == [0, 1, 1, 2, 3, 0]
    records = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert records == [
        ("WARNING", "disk of /data 76.0% used: above the max_used ratio 0.75"),
        ("WARNING", "disk of /data 86.0% used: above the clean_forcibly ratio 0.85"),
        ("ERROR", "disk of /data 91.0% used: above the warning ratio 0.90"),
        ("INFO", "disk of /data 70.0% used: back below the max_used ratio 0.75"),
    ]


def test_the_store_alarm_reports_the_periodic_check(tmp_path, small_config,
                                                     monkeypatch) -> None:
    """The disk check (run by the housekeeper) feeds the alarm the collector exports."""
    monkeypatch.setattr(rmqstore.store, "disk_used_ratio", lambda root: 0.87)
    with rmqstore.open(tmp_path, **small_config) as store:
        store._check_disk()
        assert store.disk_alarm.level == 2
        registry = CollectorRegistry()
        registry.register(StoreCollector(store))
        assert _one(_scrape(registry), "rmqstore_disk_alarm_level") == 2
