"""Latency fault avoidance (client/.../latency/MQFaultStrategy.java, LatencyFaultToleranceImpl).

After each send the broker's latency picks how long it is avoided; a failure counts as 30 s,
i.e. 600 s of avoidance. When every broker is avoided, the one available soonest is used.
"""

from __future__ import annotations

import time

# MQFaultStrategy.latencyMax / notAvailableDuration, in ms.
LATENCY_MAX_MS = (50, 100, 550, 1000, 2000, 3000, 15000)
NOT_AVAILABLE_MS = (0, 0, 30000, 60000, 120000, 180000, 600000)
ISOLATION_LATENCY_MS = 30000


# Below this latency no broker is avoided: the common case, answered with one comparison.
_FIRST_PENALISED_MS = min(limit for limit, duration in zip(LATENCY_MAX_MS, NOT_AVAILABLE_MS,
                                                           strict=True) if duration)


def not_available_ms(latency_ms: float) -> int:
    if latency_ms < _FIRST_PENALISED_MS:
        return 0
    for limit, duration in zip(reversed(LATENCY_MAX_MS), reversed(NOT_AVAILABLE_MS), strict=True):
        if latency_ms >= limit:
            return duration
    return 0


class LatencyFaultTolerance:
    """Broker name -> time (monotonic s) until which it is avoided."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}

    def update(self, broker_name: str, latency_ms: float, isolation: bool) -> None:
        if not isolation and latency_ms < _FIRST_PENALISED_MS:  # a send's common case
            self._until.pop(broker_name, None)  # available from now: as if never avoided
            return
        duration_ms = not_available_ms(ISOLATION_LATENCY_MS if isolation else latency_ms)
        if duration_ms:
            self._until[broker_name] = time.monotonic() + duration_ms / 1000
        else:
            self._until.pop(broker_name, None)

    def available(self, broker_name: str) -> bool:
        until = self._until.get(broker_name)  # only brokers being avoided have an entry
        return until is None or time.monotonic() >= until

    def least_bad(self, names: list[str]) -> str | None:
        """pickOneAtLeast: of ``names``, the one whose avoidance ends first."""
        return min(names, key=lambda n: self._until.get(n, 0.0)) if names else None
