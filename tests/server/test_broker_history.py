"""The broker's history (server/broker/stats/history.py): TPS over the last minute per topic
and group, and each group's lag and TPS per sample, with a clock the test moves."""

from __future__ import annotations

from rmqstore.server.broker.stats.history import History
from rmqstore.server.broker.stats.traffic import Traffic


def test_rates_and_series_follow_the_counters() -> None:
    now = [1000.0]
    traffic = Traffic()
    lags = {"G": 7}
    history = History(traffic, lambda: dict(lags), clock=lambda: now[0])
    history.sample()
    traffic.stored("T", "normal", 50, 5000)
    traffic.pulled_from("G", "T", 0, 20, 2000, 20)
    now[0] += 10
    assert history.topic_tps() == {"T": 5.0}
    assert history.group_tps() == {"G": 2.0}
    history.sample()
    lags["G"] = 3
    traffic.pulled_from("G", "T", 0, 10, 1000, 30)
    now[0] += 5
    history.sample()
    assert [(p.lag, p.tps) for p in history.series("G")] == [(7, 0.0), (7, 2.0), (3, 2.0)]
    now[0] += 100
    history.sample()
    traffic.stored("T", "normal", 30, 3000)
    now[0] += 10  # the earlier samples are older than the minute: rates from the last one
    assert history.topic_tps() == {"T": 3.0}


def test_batch_sizes_count_per_message() -> None:
    traffic = Traffic()
    traffic.stored("T", "normal", 4, 8000)  # a batch of four 2000-byte messages
    flow = traffic.inflow[("T", "normal")]
    assert (flow.messages, flow.bytes, flow.sizes.count) == (4, 8000, 4)
    assert dict((le, n) for le, n in flow.sizes.cumulative())[4096.0] == 4
