"""RocketMQ's views of the broker's traffic, for VIEW_BROKER_STATS_DATA (315) and
GET_BROKER_RUNTIME_INFO (28): BrokerStatsManager's StatsItemSets and StoreStatsService's TPS
windows (rocketmq-all-4.9.7), read from the one set of counters the send and pull paths keep
(stats/traffic.py) and sampled here; nothing is counted twice.

Stats items, by RocketMQ's names and keys (what the dashboard and the exporter ask for):

    TOPIC_PUT_NUMS / TOPIC_PUT_SIZE    topic           messages / body bytes stored
    GROUP_GET_NUMS / GROUP_GET_SIZE    topic@group     messages / bytes pulled
    SNDBCK_PUT_NUMS                    topic@group     messages a consumer gave back
    BROKER_PUT_NUMS / BROKER_GET_NUMS  cluster name    the broker's totals

An item is a running value and the number of calls that added to it, sampled every 10 s (the
last minute), every 10 min (the last hour) and every hour (the last day); a window runs from
its oldest sample (else from the item's first call, at 0) to the value right now. Java stops at
its last sample, up to 10 s old, and answers zeros until the first.

The TPS windows of runtime info (10 s, 60 s, 600 s) come from one sample per second of the
totals (messages stored, pulls that found or missed messages, messages handed out).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from ...protocol.admin_bodies import CallSnapshot
from .stats.traffic import Traffic

TOPIC_PUT_NUMS = "TOPIC_PUT_NUMS"
TOPIC_PUT_SIZE = "TOPIC_PUT_SIZE"
GROUP_GET_NUMS = "GROUP_GET_NUMS"
GROUP_GET_SIZE = "GROUP_GET_SIZE"
SNDBCK_PUT_NUMS = "SNDBCK_PUT_NUMS"
BROKER_PUT_NUMS = "BROKER_PUT_NUMS"
BROKER_GET_NUMS = "BROKER_GET_NUMS"

MINUTE_SAMPLE_S, HOUR_SAMPLE_S, DAY_SAMPLE_S = 10, 600, 3600
WINDOWS = (("minute", 7), ("hour", 7), ("day", 25))  # StatsItem's csList sizes
TPS_WINDOWS_S = (10, 60, 600)  # StoreStatsService's putTps "10s 60s 600s"

# (value, calls, monotonic time of the first call) of one item, now
Reading = tuple[int, int, float]


class BrokerStats:
    """Runs on the broker's event loop; ``run()`` samples until cancelled."""

    def __init__(self, traffic: Traffic, cluster: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._traffic = traffic
        self._cluster = cluster
        self._clock = clock
        # (name, key) -> window -> (monotonic s, value, calls) samples
        self._samples: dict[tuple[str, str], dict[str, deque]] = {}
        self._per_second: deque[tuple[float, int, int, int, int]] = deque(
            maxlen=max(TPS_WINDOWS_S) + 1)
        self.boot_ms = int(time.time() * 1000)
        self._today: tuple[int, int, int] = (_day_start(), 0, 0)  # day, puts, gets at 00:00
        self._yesterday: tuple[int, int] = (0, 0)

    # -- reading ---------------------------------------------------------------------------
    def view(self, name: str, key: str) -> tuple[CallSnapshot, CallSnapshot, CallSnapshot] | None:
        """The minute, hour and day windows of one item; None if it never counted."""
        now = self._read(name, key)
        if now is None:
            return None
        samples = self._samples.get((name, key), {})
        return tuple(_snapshot(samples.get(w), now, self._clock())  # type: ignore[return-value]
                     for w, _ in WINDOWS)

    def tps(self) -> dict[str, str]:
        """putTps, getFoundTps, getMissTps, getTotalTps, getTransferedTps: "10s 60s 600s"."""
        now = self._totals()
        out: dict[str, list[str]] = {k: [] for k in (
            "putTps", "getFoundTps", "getMissTps", "getTotalTps", "getTransferedTps")}
        for window in TPS_WINDOWS_S:
            then = next((s for s in self._per_second if s[0] >= now[0] - window), now)
            span = now[0] - then[0]
            rates = [(now[i] - then[i]) / span if span > 0 else 0.0 for i in range(1, 5)]
            for name, rate in zip(("putTps", "getFoundTps", "getMissTps", "getTransferedTps"),
                                  rates, strict=True):
                out[name].append(f"{rate:.2f}")
            out["getTotalTps"].append(f"{rates[1] + rates[2]:.2f}")
        return {k: " ".join(v) for k, v in out.items()}

    def totals(self) -> dict[str, int]:
        """putMessageTimesTotal and putMessageSizeTotal: what the broker stored since start."""
        flows = list(self._traffic.inflow.values())
        return {"putMessageTimesTotal": sum(f.messages for f in flows),
                "putMessageSizeTotal": sum(f.bytes for f in flows)}

    def day_totals(self) -> dict[str, int]:
        """msgPut/GetTotal{YesterdayMorning,TodayMorning,TodayNow} (BrokerStats): the totals
        at the start of yesterday and of today, and now, since this broker started."""
        self._roll_day()
        t = self._traffic
        return {"msgPutTotalYesterdayMorning": self._yesterday[0],
                "msgPutTotalTodayMorning": self._today[1],
                "msgPutTotalTodayNow": t.messages_in_total(),
                "msgGetTotalYesterdayMorning": self._yesterday[1],
                "msgGetTotalTodayMorning": self._today[2],
                "msgGetTotalTodayNow": t.messages_out_total()}

    def _read(self, name: str, key: str) -> Reading | None:
        t = self._traffic
        if name in (TOPIC_PUT_NUMS, TOPIC_PUT_SIZE):
            flows = [f for (topic, _), f in list(t.inflow.items()) if topic == key]
            if not flows:
                return None
            value = sum(f.messages if name == TOPIC_PUT_NUMS else f.bytes for f in flows)
            return value, sum(f.calls for f in flows), min(f.since for f in flows)
        if name in (GROUP_GET_NUMS, GROUP_GET_SIZE):
            topic, _, group = key.partition("@")
            flow = t.outflow.get((topic, group))
            if flow is None:
                return None
            return (flow.messages if name == GROUP_GET_NUMS else flow.bytes), flow.calls, \
                flow.since
        if name == SNDBCK_PUT_NUMS:
            topic, _, group = key.partition("@")
            count = t.sent_back.get((topic, group))
            return None if count is None else (count, count, self._boot_clock())
        if name in (BROKER_PUT_NUMS, BROKER_GET_NUMS) and key == self._cluster:
            flows = list((t.inflow if name == BROKER_PUT_NUMS else t.outflow).values())
            return (sum(f.messages for f in flows), sum(f.calls for f in flows),
                    self._boot_clock())
        return None

    def _keys(self) -> list[tuple[str, str]]:
        """Every item there is now."""
        t = self._traffic
        topics = {topic for topic, _ in list(t.inflow)}
        pairs = [f"{topic}@{group}" for topic, group in list(t.outflow)]
        return ([(n, k) for k in topics for n in (TOPIC_PUT_NUMS, TOPIC_PUT_SIZE)]
                + [(n, k) for k in pairs for n in (GROUP_GET_NUMS, GROUP_GET_SIZE)]
                + [(SNDBCK_PUT_NUMS, f"{topic}@{group}") for topic, group in list(t.sent_back)]
                + [(BROKER_PUT_NUMS, self._cluster), (BROKER_GET_NUMS, self._cluster)])

    def _totals(self) -> tuple[float, int, int, int, int]:
        t = self._traffic
        return (self._clock(), t.messages_in_total(), t.pulls_found, t.pulls_missed,
                t.messages_out_total())

    def _boot_clock(self) -> float:
        return self._clock() - (time.time() - self.boot_ms / 1000)

    def _roll_day(self) -> None:
        day = _day_start()
        if day != self._today[0]:
            self._yesterday = self._today[1:]
            self._today = (day, self._traffic.messages_in_total(),
                           self._traffic.messages_out_total())

    # -- sampling --------------------------------------------------------------------------
    def sample(self, window: str) -> None:
        """A sample of every item into ``window``: minute, hour or day."""
        now = self._clock()
        size = dict(WINDOWS)[window]
        for name, key in self._keys():
            reading = self._read(name, key)
            if reading is not None:
                windows = self._samples.setdefault((name, key), {})
                windows.setdefault(window, deque(maxlen=size)).append(
                    (now, reading[0], reading[1]))

    async def run(self) -> None:
        ticks = 0
        self._per_second.append(self._totals())
        while True:
            await asyncio.sleep(1.0)
            ticks += 1
            self._per_second.append(self._totals())
            if ticks % MINUTE_SAMPLE_S == 0:
                self.sample("minute")
            if ticks % HOUR_SAMPLE_S == 0:
                self.sample("hour")
            if ticks % DAY_SAMPLE_S == 0:
                self.sample("day")
                self._roll_day()


def _snapshot(samples: deque | None, now: Reading, at: float) -> CallSnapshot:
    """StatsItem.computeStatsData from the oldest sample (else the first call, at 0) to now."""
    ts, value, calls = samples[0] if samples else (now[2], 0, 0)
    total, count, span = now[0] - value, now[1] - calls, at - ts
    return CallSnapshot(total, total / span if span > 0 else 0.0,
                        total / count if count > 0 else 0.0)


def _day_start() -> int:
    t = time.localtime()
    return int(time.mktime((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0, 0, 0, -1)))
