"""The interface every benchmarked system implements, and which systems can run here.

A system owns one directory per (message size, flush mode). Calls come from one thread except
put_each, which the `writers` workload calls from several threads at once.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

Msg = tuple[int, int, bytes]  # (queue, queue offset, body)


class System(Protocol):
    name: str
    role: str  # "ours", "peer", "floor" or "limit"
    mapping: str  # how the workloads map onto it (goes into the JSON and README)

    def open(self, root: Path, sync: bool, size: int) -> None:
        """Create a fresh store under root; sync: every put call returns once durable."""

    def put_each(self, msgs: Sequence[Msg]) -> None:
        """One call (one transaction) per message."""

    def put_batch(self, queue: int, offset: int, bodies: list[bytes]) -> None:
        """All bodies in one call or transaction, at consecutive offsets of one queue."""

    def put_window(self, offset: int, bodies: list[bytes]) -> None:
        """The in_flight workload: store all, return once all are durable."""

    def finish(self) -> None:
        """The end flush: everything written so far made durable."""

    def read_in_order(self, counts: list[int], deadline: float, limit: int) -> tuple[int, int]:
        """Read queues 0.. in order (counts[q] messages each), every body as a Python object;
        stop at deadline (perf_counter) or after limit messages. Returns (messages, bytes)."""

    def random_handles(self, samples: list[tuple[int, int]], rng: random.Random) -> list:
        """Untimed: whatever read_random needs to find each sampled (queue, offset)."""

    def read_random(self, handles: list) -> int:
        """Point-read every handle; returns the bytes read."""

    def close(self) -> None: ...


# name -> (module, class, import needed); the order is the table's column order.
REGISTRY: dict[str, tuple[str, str, str | None]] = {
    "rmqstore": ("ours", "RmqStore", None),
    "lmdb": ("peers_kv", "Lmdb", "lmdb"),
    "rocksdb": ("peers_kv", "RocksDb", "rocksdict"),
    "sqlite": ("peers_kv", "Sqlite", "sqlite3"),
    "floor": ("peers_raw", "MmapFloor", None),
    "disk": ("peers_raw", "DiskLimit", None),
}
PEERS = tuple(n for n in REGISTRY if n != "rmqstore")


def load(names: tuple[str, ...] | None, segment_bytes: int
         ) -> tuple[list[System], dict[str, str]]:
    """rmqstore plus the requested peers (all when names is None) that can be imported here;
    the others are returned as {name: reason} and skipped."""
    wanted = ["rmqstore"] + [n for n in PEERS if names is None or n in names]
    unknown = [n for n in names or () if n not in REGISTRY]
    if unknown:
        raise ValueError(f"unknown peer(s): {', '.join(unknown)}; known: {', '.join(PEERS)}")
    systems: list[System] = []
    skipped: dict[str, str] = {}
    for name in wanted:
        module, cls, needs = REGISTRY[name]
        if needs is not None:
            try:
                importlib.import_module(needs)
            except ImportError as exc:
                skipped[name] = f"not installed ({exc.name}); pip install 'rmqstore[bench]'"
                continue
        mod = importlib.import_module(f"{__package__}.{module}")
        system = getattr(mod, cls)(segment_bytes) if name == "rmqstore" else getattr(mod, cls)()
        systems.append(system)
    return systems, skipped
