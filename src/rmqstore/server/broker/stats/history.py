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
        ins: dict[str, int] = {}
        for (topic, _kind), flow in list(self._traffic.inflow.items()):
            ins[topic] = ins.get(topic, 0) + flow.messages
        outs: dict[str, int] = {}
        for (_topic, group), flow in list(self._traffic.outflow.items()):
            outs[group] = outs.get(group, 0) + flow.messages
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

    def _window(self) -> tuple[tuple[float, dict[str, int], dict[str, int]], float] | None:
        """The oldest sample within TPS_WINDOW_S (else the oldest there is) and its age."""
        if not self._totals:
            return None
        now = self._clock()
        oldest = self._totals[0]
        for sample in self._totals:
            if now - sample[0] <= TPS_WINDOW_S:
                oldest = sample
                break
        return oldest, now - oldest[0]

    def topic_tps(self) -> dict[str, float]:
        """Messages in per second per topic over the last minute (to now)."""
        window = self._window()
        if window is None or window[1] <= 0:
            return {}
        (_, ins, _), span = window
        now_ins: dict[str, int] = {}
        for (topic, _kind), flow in list(self._traffic.inflow.items()):
            now_ins[topic] = now_ins.get(topic, 0) + flow.messages
        return {t: (n - ins.get(t, 0)) / span for t, n in now_ins.items()}

    def group_tps(self) -> dict[str, float]:
        """Messages out per second per group over the last minute (to now): consumeTps."""
        window = self._window()
        if window is None or window[1] <= 0:
            return {}
        (_, _, outs), span = window
        now_outs: dict[str, int] = {}
        for (_topic, group), flow in list(self._traffic.outflow.items()):
            now_outs[group] = now_outs.get(group, 0) + flow.messages
        return {g: (n - outs.get(g, 0)) / span for g, n in now_outs.items()}
