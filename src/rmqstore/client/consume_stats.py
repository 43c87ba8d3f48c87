"""What a push consumer counts per topic for GET_CONSUMER_RUNNING_INFO's statusTable
(ConsumerStatsManager of rocketmq-all-4.9.7): pulls and their round-trip time, messages
consumed and failed, and consumption time, as rates over the last minute.

    ConsumeStatus {"consumeFailedMsgs","consumeFailedTPS","consumeOKTPS","consumeRT",
                   "pullRT","pullTPS"}

Touched on the consumer's event loop only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

WINDOW_S = 60.0

_FIELDS = ("pulled", "pull_ms", "pulls", "ok", "failed", "consume_ms", "consumes")


@dataclass(slots=True)
class _Counters:
    pulled: int = 0
    pull_ms: float = 0.0
    pulls: int = 0
    ok: int = 0
    failed: int = 0
    consume_ms: float = 0.0
    consumes: int = 0

    def values(self) -> tuple:
        return tuple(getattr(self, f) for f in _FIELDS)


class ConsumeStats:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._now: dict[str, _Counters] = {}
        self._then: dict[str, tuple[float, tuple]] = {}  # the window's start sample

    def pulled(self, topic: str, count: int, rt_ms: float) -> None:
        c = self._topic(topic)
        c.pulled += count
        c.pull_ms += rt_ms
        c.pulls += 1

    def consumed(self, topic: str, ok: int, failed: int, rt_ms: float) -> None:
        c = self._topic(topic)
        c.ok += ok
        c.failed += failed
        c.consume_ms += rt_ms
        c.consumes += 1

    def status(self, topic: str) -> dict[str, float]:
        """ConsumeStatus of ``topic`` over the window (from its first count, at first)."""
        c = self._topic(topic)
        now = self._clock()
        start, old = self._then[topic]
        if now - start > WINDOW_S:  # the next window starts here
            self._then[topic] = (now, c.values())
        d = dict(zip(_FIELDS, (a - b for a, b in zip(c.values(), old, strict=True)),
                     strict=True))
        span = max(now - start, 1e-3)
        return {"consumeFailedMsgs": d["failed"], "consumeFailedTPS": d["failed"] / span,
                "consumeOKTPS": d["ok"] / span,
                "consumeRT": d["consume_ms"] / d["consumes"] if d["consumes"] else 0.0,
                "pullRT": d["pull_ms"] / d["pulls"] if d["pulls"] else 0.0,
                "pullTPS": d["pulled"] / span}

    def _topic(self, topic: str) -> _Counters:
        c = self._now.get(topic)
        if c is None:
            c = self._now[topic] = _Counters()
            self._then[topic] = (self._clock(), c.values())
        return c
