"""What the broker counts, for VIEW_BROKER_STATS_DATA (315) and GET_BROKER_RUNTIME_INFO (28):
BrokerStatsManager's StatsItemSets and StoreStatsService's TPS windows (rocketmq-all-4.9.7).

Stats items, by RocketMQ's names and keys (what the dashboard and the exporter ask for):

    TOPIC_PUT_NUMS / TOPIC_PUT_SIZE    topic           messages / body bytes stored
    GROUP_GET_NUMS / GROUP_GET_SIZE    topic@group     messages / bytes pulled
    SNDBCK_PUT_NUMS                    topic@group     messages a consumer gave back
    BROKER_PUT_NUMS / BROKER_GET_NUMS  cluster name    the broker's totals

Each item keeps a running value and the number of calls that added to it, sampled every 10 s
(the last minute), every 10 min (the last hour) and every hour (the last day); a window's
answer runs from its oldest sample to the value right now (Java stops at its last sample, up
to 10 s old). Counting costs a send two dict updates; sampling runs on the broker's loop.

The TPS windows of runtime info (10 s, 60 s, 600 s) come from one sample per second of the
store's totals (puts, gets that found or missed messages, messages handed out).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ...protocol.admin_bodies import CallSnapshot

TOPIC_PUT_NUMS = "TOPIC_PUT_NUMS"
TOPIC_PUT_SIZE = "TOPIC_PUT_SIZE"
GROUP_GET_NUMS = "GROUP_GET_NUMS"
GROUP_GET_SIZE = "GROUP_GET_SIZE"
SNDBCK_PUT_NUMS = "SNDBCK_PUT_NUMS"
BROKER_PUT_NUMS = "BROKER_PUT_NUMS"
BROKER_GET_NUMS = "BROKER_GET_NUMS"

MINUTE_SAMPLE_S, HOUR_SAMPLE_S, DAY_SAMPLE_S = 10, 600, 3600
TPS_WINDOWS_S = (10, 60, 600)  # StoreStatsService's putTps "10s 60s 600s"


@dataclass(slots=True)
class StatsItem:
    value: int = 0
    times: int = 0
    # (monotonic seconds, value, times) samples
    minute: deque = field(default_factory=lambda: deque(maxlen=7))
    hour: deque = field(default_factory=lambda: deque(maxlen=7))
    day: deque = field(default_factory=lambda: deque(maxlen=25))

    def snapshot(self, samples: deque, now: float) -> CallSnapshot:
        """StatsItem.computeStatsData from the oldest sample to now."""
        if not samples:
            return CallSnapshot(0, 0.0, 0.0)
        ts, value, times = samples[0]
        total, calls, span = self.value - value, self.times - times, now - ts
        return CallSnapshot(total, total / span if span > 0 else 0.0,
                            total / calls if calls > 0 else 0.0)


class BrokerStats:
    """Runs on the broker's event loop; ``run()`` samples until cancelled."""

    def __init__(self, cluster: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._cluster = cluster
        self._clock = clock
        self._sets: dict[str, dict[str, StatsItem]] = {}
        # The items a send or a pull adds to, found with one lookup (the send path's cost).
        self._put_items: dict[str, tuple[StatsItem, StatsItem, StatsItem]] = {}
        self._get_items: dict[str, tuple[StatsItem, StatsItem, StatsItem]] = {}
        # store totals (StoreStatsService): puts, gets found, gets missed, messages handed out
        self.put_times = 0
        self.put_bytes = 0
        self.get_found = 0
        self.get_miss = 0
        self.get_transferred = 0
        self._per_second: deque[tuple[float, int, int, int, int]] = deque(
            maxlen=max(TPS_WINDOWS_S) + 1)
        self.boot_ms = int(time.time() * 1000)
        self._today: tuple[int, int, int] = (_day_start(), 0, 0)  # day, puts, gets at 00:00
        self._yesterday: tuple[int, int] = (0, 0)

    # -- counting ------------------------------------------------------------------------
    def put(self, topic: str, count: int, size: int) -> None:
        """Messages stored (SendMessageProcessor: incTopicPutNums/Size, incBrokerPutNums)."""
        self.put_times += count
        self.put_bytes += size
        items = self._put_items.get(topic) or self._triple(
            self._put_items, topic, TOPIC_PUT_NUMS, TOPIC_PUT_SIZE, BROKER_PUT_NUMS)
        _count(items, count, size)

    def got(self, group: str, topic: str, count: int, size: int) -> None:
        """A pull (PullMessageProcessor: incGroupGetNums/Size, incBrokerGetNums)."""
        if count <= 0:
            self.get_miss += 1
            return
        self.get_found += 1
        self.get_transferred += count
        key = f"{topic}@{group}"
        items = self._get_items.get(key) or self._triple(
            self._get_items, key, GROUP_GET_NUMS, GROUP_GET_SIZE, BROKER_GET_NUMS)
        _count(items, count, size)

    def sent_back(self, group: str, topic: str) -> None:
        item = self._item(SNDBCK_PUT_NUMS, f"{topic}@{group}")
        item.value += 1
        item.times += 1

    def _triple(self, cache: dict, key: str, nums: str, size: str,
                broker: str) -> tuple[StatsItem, StatsItem, StatsItem]:
        """The message, byte and broker-total items one call adds to, kept in ``cache``."""
        items = cache[key] = (self._item(nums, key), self._item(size, key),
                              self._item(broker, self._cluster))
        return items

    def _item(self, name: str, key: str) -> StatsItem:
        items = self._sets.setdefault(name, {})
        item = items.get(key)
        if item is None:
            item = items[key] = StatsItem()
            first = (self._clock(), 0, 0)  # every window counts from the item's first use
            item.minute.append(first)
            item.hour.append(first)
            item.day.append(first)
        return item

    # -- reading ---------------------------------------------------------------------------
    def view(self, name: str, key: str) -> tuple[CallSnapshot, CallSnapshot, CallSnapshot] | None:
        """The minute, hour and day windows of one item; None if it never counted."""
        item = self._sets.get(name, {}).get(key)
        if item is None:
            return None
        now = self._clock()
        return (item.snapshot(item.minute, now), item.snapshot(item.hour, now),
                item.snapshot(item.day, now))

    def tps(self) -> dict[str, str]:
        """putTps, getFoundTps, getMissTps, getTotalTps, getTransferedTps: "10s 60s 600s"."""
        now = (self._clock(), self.put_times, self.get_found, self.get_miss,
               self.get_transferred)
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

    def day_totals(self) -> dict[str, int]:
        """msgPut/GetTotal{YesterdayMorning,TodayMorning,TodayNow} (BrokerStats): the totals
        at the start of yesterday and of today, and now, since this broker started."""
        self._roll_day()
        return {"msgPutTotalYesterdayMorning": self._yesterday[0],
                "msgPutTotalTodayMorning": self._today[1], "msgPutTotalTodayNow": self.put_times,
                "msgGetTotalYesterdayMorning": self._yesterday[1],
                "msgGetTotalTodayMorning": self._today[2],
                "msgGetTotalTodayNow": self.get_transferred}

    def _roll_day(self) -> None:
        day = _day_start()
        if day != self._today[0]:
            self._yesterday = self._today[1:]
            self._today = (day, self.put_times, self.get_transferred)

    # -- sampling --------------------------------------------------------------------------
    def sample_second(self) -> None:
        self._per_second.append((self._clock(), self.put_times, self.get_found, self.get_miss,
                                 self.get_transferred))

    def sample(self, window: str) -> None:
        """Append a sample of every item to ``window``: minute, hour or day."""
        now = self._clock()
        for items in self._sets.values():
            for item in items.values():
                getattr(item, window).append((now, item.value, item.times))

    async def run(self) -> None:
        ticks = 0
        self.sample_second()
        while True:
            await asyncio.sleep(1.0)
            ticks += 1
            self.sample_second()
            if ticks % MINUTE_SAMPLE_S == 0:
                self.sample("minute")
            if ticks % HOUR_SAMPLE_S == 0:
                self.sample("hour")
            if ticks % DAY_SAMPLE_S == 0:
                self.sample("day")
                self._roll_day()


def _count(items: tuple[StatsItem, StatsItem, StatsItem], count: int, size: int) -> None:
    """One call adding ``count`` messages of ``size`` bytes: to the message and byte items of
    its key and to the broker's total."""
    nums, sizes, broker = items
    nums.value += count
    nums.times += 1
    sizes.value += size
    sizes.times += 1
    broker.value += count
    broker.times += 1


def _day_start() -> int:
    t = time.localtime()
    return int(time.mktime((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0, 0, 0, -1)))
