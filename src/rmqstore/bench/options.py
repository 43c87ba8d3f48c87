"""What one `rmqstore bench` invocation was asked to do, and how each case is bounded."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DURATION_S = 0.5
COUNT_SAFETY_S = 60.0  # with --count alone, a case still stops after this many seconds
DEFAULT_SEGMENT_BYTES = 128 << 20  # commitlog_segment_bytes for bench stores (see README)


@dataclass(frozen=True)
class Bound:
    """Stops a case after max_count messages or duration_s seconds, whichever comes first."""

    duration_s: float
    max_count: int | None = None

    def deadline(self) -> float:
        return time.perf_counter() + self.duration_s

    def room(self, done: int) -> int:
        """How many more messages the count bound allows (a large number when unbounded)."""
        return (1 << 62) if self.max_count is None else max(0, self.max_count - done)

    @classmethod
    def from_cli(cls, duration_s: float | None, count: int | None) -> Bound:
        if duration_s is None:
            duration_s = COUNT_SAFETY_S if count is not None else DEFAULT_DURATION_S
        return cls(duration_s, count)


@dataclass(frozen=True)
class BenchOptions:
    sizes: tuple[int, ...] = (100, 1024, 4096)
    workloads: tuple[str, ...] = ()  # empty: all of workloads.WORKLOADS
    peers: tuple[str, ...] | None = None  # None: every peer that is installed
    bound: Bound = field(default_factory=lambda: Bound(DEFAULT_DURATION_S))
    batch: int = 128
    writers: tuple[int, ...] = (1, 2, 4, 8)
    in_flight: int = 1024
    recovery_bytes: int = 64 << 20
    segment_bytes: int = DEFAULT_SEGMENT_BYTES
    sweep: bool = False
    repeat: int = 1  # run the plan this many times, the systems' order rotated each time
    data_dir: Path | None = None  # parent of the temporary directory
    keep: bool = False
    seed: int = 7
