"""What the block device under a path did (Linux /proc/diskstats): bytes written and discarded,
flushes, requests in flight; and a bounded wait for it to go idle. A bench states the disk load
its figure was measured under, and can start a latency phase on a quiet device (on a shared
machine the other sessions' I/O still lands: that is what the reported deltas show)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

SECTOR = 512
DISKSTATS = Path("/proc/diskstats")


@dataclass(frozen=True)
class Sample:
    written: int = 0     # bytes
    discarded: int = 0   # bytes
    flushes: int = 0
    in_flight: int = 0


class Disk:
    """The device holding ``path`` (a partition's own counters when it is on one)."""

    def __init__(self, path: Path) -> None:
        dev = os.stat(path).st_dev
        self.id = (os.major(dev), os.minor(dev))

    def _rows(self) -> list[list[str]]:
        try:
            lines = DISKSTATS.read_text().splitlines()
        except OSError:
            return []
        return [f for f in map(str.split, lines) if (int(f[0]), int(f[1])) == self.id]

    def sample(self) -> Sample:
        """Its counters now; zeros when /proc/diskstats has no row for it (not a block
        device: tmpfs, overlay)."""
        rows = self._rows()
        if not rows:
            return Sample()
        f = rows[-1]
        # fields after the name: 7 write sectors, 9 in flight, 14 discard sectors, 16 flushes
        at = 3
        discarded = int(f[at + 13]) * SECTOR if len(f) > at + 13 else 0
        flushes = int(f[at + 15]) if len(f) > at + 15 else 0
        return Sample(int(f[at + 6]) * SECTOR, discarded, flushes, int(f[at + 8]))

    def wait_idle(self, quiet_s: float = 0.3, timeout_s: float = 30.0) -> float:
        """Wait until nothing is in flight and nothing was written or discarded for quiet_s,
        at most timeout_s; the seconds waited (timeout_s: never idle, the load of others)."""
        t0 = time.monotonic()
        last, since = self.sample(), time.monotonic()
        while time.monotonic() - t0 < timeout_s:
            time.sleep(0.05)
            now = self.sample()
            busy = (now.in_flight or now.written != last.written
                    or now.discarded != last.discarded)
            if busy:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                return time.monotonic() - t0
        return timeout_s


def delta(before: Sample, after: Sample) -> dict[str, float]:
    """MiB written and discarded, and flushes, between two samples."""
    return {"written_mib": (after.written - before.written) / (1 << 20),
            "discarded_mib": (after.discarded - before.discarded) / (1 << 20),
            "flushes": after.flushes - before.flushes}
