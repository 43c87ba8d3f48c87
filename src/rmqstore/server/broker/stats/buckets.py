"""Fixed-bound histograms that cost a count a bisect and two additions (the send path's
histograms must not take prometheus-client's lock per message); the exporter turns them into
cumulative Prometheus buckets when scraped."""

from __future__ import annotations

from bisect import bisect_left


class Buckets:
    """Counts per upper bound (``le``, inclusive, as Prometheus' buckets), plus +Inf and a
    sum. Only the event loop records; a scrape reads a consistent enough copy."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def observe_many(self, value: float, times: int) -> None:
        self.counts[bisect_left(self.bounds, value)] += times
        self.total += value * times

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[float, int]]:
        """[(le, observations <= le), ..., (inf, all)]."""
        out, running = [], 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out
