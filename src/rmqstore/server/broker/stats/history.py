"""The last minutes of the broker, sampled every few seconds into ring buffers: messages in
per topic, messages out and lag per consumer group. Rates (TPS) are differences between
samples; the dashboard plots each group's lag and TPS over time from the same rings.

Sampling runs on the broker's loop (``run()`` until cancelled); a sample reads counters and
offsets, never a message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .traffic import Traffic

log = logging.getLogger(__name__)

SAMPLE_INTERVAL_S = 5.0
SAMPLES_KEPT = 120  # ten minutes at 5 s
TPS_WINDOW_S = 60.0  # consumeTps and the list pages' TPS: the last minute


@dataclass(frozen=True, slots=True)
class Point:
    at_ms: int  # wall clock, for the plot's axis
    lag: int
    tps: float  # messages out per second since the previous sample


class History:
    """``lags()`` gives each group's lag summed over its topics (ConsumeProgress)."""

    def __init__(self, traffic: Traffic, lags: Callable[[], dict[str, int]],
                 interval_s: float = SAMPLE_INTERVAL_S,
                 kept: int = SAMPLES_KEPT, clock: Callable[[], float] = time.monotonic) -> None:
        self._traffic = traffic
        self._lags = lags
        self.interval_s = interval_s
        self._clock = clock
        self._kept = kept
        # (monotonic s, messages in per topic, messages out per group)
        self._totals: deque[tuple[float, dict[str, int], dict[str, int]]] = deque(maxlen=kept)
        self._series: dict[str, deque[Point]] = {}

    async def run(self) -> None:
        while True:
            try:
                self.sample()
            except Exception:  # a bug here must not end sampling for good
                log.exception("broker history sample failed")
            await asyncio.sleep(self.interval_s)

    def sample(self) -> None:
        now = self._clock()
        ins, outs = self._messages_in(), self._messages_out()
        previous = self._totals[-1] if self._totals else None
        self._totals.append((now, ins, outs))
        at_ms = int(time.time() * 1000)
        for group, lag in self._lags().items():
            series = self._series.get(group)
            if series is None:
                series = self._series[group] = deque(maxlen=self._kept)
            tps = 0.0
            if previous is not None and now > previous[0]:
                tps = (outs.get(group, 0) - previous[2].get(group, 0)) / (now - previous[0])
            series.append(Point(at_ms, lag, max(0.0, tps)))

    def series(self, group: str) -> list[Point]:
        return list(self._series.get(group, ()))

    def topic_tps(self) -> dict[str, float]:
        """Messages in per second per topic over the last minute (to now)."""
        return self._rates(1, self._messages_in())

    def group_tps(self) -> dict[str, float]:
        """Messages out per second per group over the last minute (to now): consumeTps."""
        return self._rates(2, self._messages_out())

    def _rates(self, which: int, now_counts: dict[str, int]) -> dict[str, float]:
        """Per second since the oldest sample within TPS_WINDOW_S (else the oldest there is);
        which: 1 for the samples' messages in, 2 for their messages out."""
        if not self._totals:
            return {}
        now = self._clock()
        oldest = self._totals[0]
        for sample in self._totals:
            if now - sample[0] <= TPS_WINDOW_S:
                oldest = sample
                break
        span = now - oldest[0]
        if span <= 0:
            return {}
        then: dict[str, int] = oldest[which]  # type: ignore[assignment]
        return {k: (n - then.get(k, 0)) / span for k, n in now_counts.items()}

    def _messages_in(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for (topic, _kind), flow in list(self._traffic.inflow.items()):
            out[topic] = out.get(topic, 0) + flow.messages
        return out

    def _messages_out(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for (_topic, group), flow in list(self._traffic.outflow.items()):
            out[group] = out.get(group, 0) + flow.messages
        return out
