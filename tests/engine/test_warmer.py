"""The commit log's Warmer: how often it looks at the appender's mapped-bytes counter."""

from __future__ import annotations

import itertools
import time

from rmqstore.warm import IDLE_INTERVAL_S, Warmer


class NoSegment:
    """A log with no segment yet: the warmer looks at the counter and finds nothing to warm."""

    def last(self) -> None:
        return None


class Counter:
    """The appender's mapped-bytes counter, moving (mapped appends between every two looks)
    or still (an idle or pwrite-only store); counts the looks."""

    def __init__(self) -> None:
        self.looks = 0
        self.moving = False
        self._bytes = itertools.count()

    def __call__(self) -> int:
        self.looks += 1
        return next(self._bytes) if self.moving else 0


def looks(still_s: float, moving_s: float) -> tuple[int, int]:
    """The looks of a warmer whose counter stays still for still_s, then moves for moving_s."""
    counter = Counter()
    warmer = Warmer(NoSegment(), 1 << 20, counter)  # type: ignore[arg-type]
    warmer.start()
    try:
        time.sleep(still_s)
        still = counter.looks
        counter.moving = True
        time.sleep(moving_s)
    finally:
        warmer.stop()
    return still, counter.looks - still


def test_an_idle_warmer_backs_off_to_its_idle_interval() -> None:
    """Nothing through the mapping: the interval doubles from 2 ms to IDLE_INTERVAL_S, so a
    second costs about 50 looks, not 500."""
    still, _ = looks(1.0, 0.0)
    assert still <= 1.0 / IDLE_INTERVAL_S + 15, still


def test_appends_through_the_mapping_bring_the_short_interval_back() -> None:
    """After an idle spell, the first look that finds the counter moved goes back to 2 ms."""
    _, moving = looks(0.3, 1.0)
    assert moving >= 3 / IDLE_INTERVAL_S, moving  # 2 ms apart: 500 on an idle machine
