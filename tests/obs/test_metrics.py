"""/metrics of a real `rmqstore serve`, parsed with prometheus-client's parser: RocketMQ 5's
names (as its OpenTelemetry Prometheus exporter writes them), types and labels, HELP on every
family, and values that move when messages are sent, consumed, and left unconsumed."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from rmqstore.client import (
    Admin,
    ConsumeFromWhere,
    ConsumeStatus,
    Message,
    Producer,
    PushConsumer,
)

from .conftest import get, run, sample, scrape

# BrokerMetricsConstant, RemotingMetricsConstant, DefaultStoreMetricsConstant (rocketmq 5.3),
# each with the Prometheus type and the name the OpenTelemetry exporter gives it.
ROCKETMQ_FAMILIES = {
    "rocketmq_messages_in_total": "counter",
    "rocketmq_messages_out_total": "counter",
    "rocketmq_throughput_in_total": "counter",
    "rocketmq_throughput_out_total": "counter",
    "rocketmq_message_size": "histogram",
    "rocketmq_send_to_dlq_messages_total": "counter",
    "rocketmq_commit_messages_total": "counter",
    "rocketmq_rollback_messages_total": "counter",
    "rocketmq_topic_number": "gauge",
    "rocketmq_consumer_group_number": "gauge",
    "rocketmq_broker_permission": "gauge",
    "rocketmq_producer_connections": "gauge",
    "rocketmq_consumer_connections": "gauge",
    "rocketmq_consumer_lag_messages": "gauge",
    "rocketmq_consumer_lag_latency_milliseconds": "gauge",
    "rocketmq_consumer_inflight_messages": "gauge",
    "rocketmq_consumer_queueing_latency_milliseconds": "gauge",
    "rocketmq_consumer_ready_messages": "gauge",
    "rocketmq_rpc_latency_milliseconds": "histogram",
    "rocketmq_storage_size_bytes": "gauge",
    "rocketmq_storage_flush_behind_bytes": "gauge",
    "rocketmq_storage_dispatch_behind_bytes": "gauge",
    "rocketmq_storage_message_reserve_time_milliseconds": "gauge",
}
OURS = {"rmqstore_disk_used_ratio", "rmqstore_disk_alarm_level", "rmqstore_disk_ratio_threshold",
        "rmqstore_commitlog_max_offset_bytes", "rmqstore_store_writes_stopped",
        "rmqstore_commitlog_sync_failed_offset_bytes"}
COMMON = {"cluster": "DefaultCluster", "node_type": "broker", "node_id": "broker-a"}
FAST = {"consume_from_where": ConsumeFromWhere.FIRST_OFFSET, "rebalance_interval_s": 0.5,
        "heartbeat_s": 0.5, "persist_interval_s": 0.2, "broker_suspend_ms": 1000}
BODY = b"m" * 100


def declared_types(text: str) -> dict[str, str]:
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))


def test_rocketmq_names_types_and_help(obs_server) -> None:
    status, _, body = get(obs_server.url + "/metrics")
    assert status == 200
    text = body.decode()
    types = declared_types(text)
    for name, kind in ROCKETMQ_FAMILIES.items():
        assert types.get(name) == kind, (name, types.get(name))
    assert OURS <= set(types)
    assert set(types) == set(ROCKETMQ_FAMILIES) | OURS, set(types) ^ (
        set(ROCKETMQ_FAMILIES) | OURS)
    helps = dict(re.findall(r"^# HELP (\S+) (.*)$", text, re.M))
    assert set(helps) == set(types)
    assert all(h.strip() for h in helps.values())
    families = scrape(obs_server.url)
    for fam in families.values():  # every series carries RocketMQ's three common labels
        for s in fam.samples:
            assert {k: s.labels.get(k) for k in COMMON} == COMMON, s
    storage = dict(COMMON, storage_type="local", storage_medium="disk")
    assert sample(families, "rocketmq_storage_size_bytes", **storage) > 0
    assert sample(families, "rocketmq_broker_permission") == 6


def test_values_move_with_sends_and_consumes(obs_server) -> None:
    topic, group = "ObsMetricsT", "ObsMetricsG"
    url = obs_server.url

    async def produce(n: int) -> None:
        async with Producer("ObsMetricsP", obs_server.namesrv) as p:
            await p.create_topic(topic, 2)
            for i in range(n):
                await p.send(Message(topic, BODY, keys=f"k{i}"))

    run(produce(20))
    m = scrape(url)
    assert sample(m, "rocketmq_messages_in_total", topic=topic, message_type="normal",
                  is_system="false") == 20
    assert sample(m, "rocketmq_throughput_in_total", topic=topic) == 20 * len(BODY)
    assert sample(m, "rocketmq_message_size_count", topic=topic) == 20
    assert sample(m, "rocketmq_message_size_bucket", topic=topic, le="1024.0") == 20
    # each send once, whether the native send path answered it alone or with its read
    assert sample(m, "rocketmq_rpc_latency_milliseconds_count", request_code="send_message_v2",
                  response_code="success", result="success") == 20
    assert sample(m, "rocketmq_topic_number") >= 1

    received: list[bytes] = []

    async def consume() -> None:
        c = PushConsumer(group, obs_server.namesrv, **FAST)
        c.subscribe(topic)

        async def on(msgs):
            received.extend(msg.body for msg in msgs)
            return ConsumeStatus.SUCCESS
        c.on_message(on)
        async with c:
            deadline = time.monotonic() + 20
            while len(received) < 20 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            online = scrape(url)
            assert sample(online, "rocketmq_consumer_connections", consumer_group=group,
                          consume_mode="push", protocol_type="remoting") == 1
            # committed within persist_interval_s: the lag drains to 0
            while sample(scrape(url), "rocketmq_consumer_lag_messages", consumer_group=group,
                         topic=topic) != 0:
                assert time.monotonic() < deadline, "lag not 0 once consumed"
                await asyncio.sleep(0.1)

    run(consume())
    assert len(received) == 20

    async def consume_tps() -> float:
        async with Admin(obs_server.namesrv) as admin:
            return (await admin.consume_stats(group, topic)).consume_tps
    assert run(consume_tps()) > 0  # GET_CONSUME_STATS: the last minute's pulls
    m = scrape(url)
    assert sample(m, "rocketmq_messages_out_total", topic=topic, consumer_group=group,
                  is_retry="false") == 20
    assert sample(m, "rocketmq_throughput_out_total", topic=topic, consumer_group=group) > 0
    assert sample(m, "rocketmq_consumer_lag_latency_milliseconds", consumer_group=group,
                  topic=topic) == 0
    pulls = sample(m, "rocketmq_rpc_latency_milliseconds_count", request_code="pull_message",
                   response_code="success", is_long_polling="true")
    assert pulls is not None and pulls >= 1

    run(produce(5))  # the group is offline: these wait
    time.sleep(0.05)
    m = scrape(url)
    assert sample(m, "rocketmq_consumer_lag_messages", consumer_group=group, topic=topic) == 5
    assert sample(m, "rocketmq_consumer_ready_messages", consumer_group=group, topic=topic) == 5
    assert sample(m, "rocketmq_consumer_lag_latency_milliseconds", consumer_group=group,
                  topic=topic) >= 50
    assert sample(m, "rocketmq_messages_in_total", topic=topic) == 25


@pytest.mark.parametrize("exporter", ["PROM", "DISABLE"])
def test_the_http_port_from_broker_conf(tmp_path, exporter: str) -> None:
    """metricsPromExporterPort and metricsPromExporterHost in broker.conf place the port,
    metricsLabel adds labels to every series; metricsExporterType=DISABLE leaves only the
    dashboard there."""
    from rmqstore.server.testing import free_port

    from .conftest import start_server

    port = free_port()
    conf = tmp_path / "broker.conf"
    conf.write_text(f"metricsPromExporterPort={port}\nmetricsPromExporterHost=127.0.0.1\n"
                    f"metricsExporterType={exporter}\nbrokerIP1=127.0.0.1\n"
                    "metricsLabel=env:test, dc:eu-1\n")
    srv = start_server(tmp_path, "-c", str(conf), metrics_port=None)
    try:
        assert srv.url == f"http://127.0.0.1:{port}"
        assert get(srv.url + "/api/overview")[0] == 200
        if exporter == "DISABLE":
            assert get(srv.url + "/metrics")[0] == 404
            return
        families = scrape(srv.url)
        assert all(s.labels.get("env") == "test" and s.labels.get("dc") == "eu-1"
                   for fam in families.values() for s in fam.samples)
    finally:
        srv.proc.stop()
