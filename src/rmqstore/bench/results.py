"""One row per (workload, message size, system): the figures, and rmqstore's ratio to each
peer that ran the same workload in the same invocation. With --repeat, one row per repetition
first; merge_runs then keeps the median run of each case, and each ratio is the median of the
repetitions' own ratios (ours and the peer measured close together in time)."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

OURS = "rmqstore"


@dataclass
class Row:
    workload: str
    size: int
    system: str
    role: str  # ours, peer, floor, limit
    flush: str
    batch: int = 1
    writers: int = 1
    variant: str = ""  # a second way of running the same workload (rmqstore get_bodies)
    messages: int = 0
    seconds: float = 0.0
    msgs_per_s: float = 0.0
    mb_per_s: float = 0.0  # body payload, 10^6 bytes per MB
    latency_us: dict[str, float] | None = None  # p50/p99/p999 of one call (a put or a batch)
    end_flush_s: float | None = None
    status: str = "ok"  # ok, error
    note: str = ""
    ratios: dict[str, float] = field(default_factory=dict)  # rmqstore rows: peer -> ours/peer
    rep: int = 0  # which repetition measured it (--repeat)
    runs: list[float] = field(default_factory=list)  # msgs/s of every repetition, in order
    ratio_runs: dict[str, list[float]] = field(default_factory=dict)  # peer -> per repetition

    @property
    def group(self) -> tuple[str, int, int]:
        return self.workload, self.size, self.writers

    @property
    def case(self) -> tuple:
        """What repetitions of one measurement share."""
        return self.group, self.system, self.variant

    @property
    def label(self) -> str:
        return f"{self.system} ({self.variant})" if self.variant else self.system


def make_row(workload, system, messages: int, seconds: float, payload_bytes: int | None = None,
             **extra) -> Row:
    """A row from a count and a time; payload defaults to messages x size."""
    payload = messages * workload.size if payload_bytes is None else payload_bytes
    rate = messages / seconds if seconds > 0 else 0.0
    return Row(workload.name, workload.size, system.name, system.role, workload.flush,
               batch=workload.batch, writers=workload.writers, messages=messages,
               seconds=round(seconds, 6), msgs_per_s=round(rate, 1),
               mb_per_s=round(payload / seconds / 1e6 if seconds > 0 else 0.0, 2), **extra)


def compute_ratios(rows: list[Row]) -> None:
    """Fill ratios of every ok rmqstore row against every ok peer row of the same group and
    repetition."""
    by_group: dict[tuple, list[Row]] = {}
    for r in rows:
        by_group.setdefault((r.group, r.rep), []).append(r)
    for group in by_group.values():
        others = [r for r in group if r.system != OURS and r.status == "ok" and r.msgs_per_s > 0]
        for ours in group:
            if ours.system == OURS and ours.status == "ok":
                ours.ratios = {o.label: float(f"{ours.msgs_per_s / o.msgs_per_s:.4g}")
                               for o in others}


def merge_runs(rows: list[Row]) -> list[Row]:
    """One row per case: the repetition with the median msgs/s (the lower one of an even
    count), its `runs` listing every repetition's msgs/s; ratios become the median of the
    repetitions' ratios, `ratio_runs` keeping each. Rows come in first-seen case order."""
    cases: dict[tuple, list[Row]] = {}
    for r in rows:
        cases.setdefault(r.case, []).append(r)
    merged = []
    for reps in cases.values():
        reps.sort(key=lambda r: r.rep)
        ok = [r for r in reps if r.status == "ok"]
        if not ok:
            merged.append(reps[0])
            continue
        row = sorted(ok, key=lambda r: r.msgs_per_s)[(len(ok) - 1) // 2]
        row.runs = [r.msgs_per_s for r in ok]
        peers = {p for r in ok for p in r.ratios}
        row.ratio_runs = {p: [r.ratios[p] for r in ok if p in r.ratios] for p in sorted(peers)}
        row.ratios = {p: float(f"{statistics.median(v):.4g}") for p, v in row.ratio_runs.items()}
        merged.append(row)
    return merged


@dataclass
class Report:
    options: dict
    machine: dict
    rows: list[Row]
    skipped: dict[str, str]  # peer -> why it did not run
    sweep: list[dict] = field(default_factory=list)
    recommendation: dict[str, dict] = field(default_factory=dict)
    data_dir: str = ""
    kept: bool = False
    wall_s: float = 0.0

    def to_json(self) -> dict:
        return {"tool": "rmqstore bench", "options": self.options, "machine": self.machine,
                "rows": [asdict(r) for r in self.rows], "skipped_peers": self.skipped,
                "sweep": self.sweep, "recommendation": self.recommendation,
                "data_dir": self.data_dir, "kept": self.kept, "wall_s": round(self.wall_s, 2)}

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2, default=str) + "\n")
