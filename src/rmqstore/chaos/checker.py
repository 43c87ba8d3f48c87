"""The checks of a chaos run, over its history and what the cluster holds at the end:

    no acked loss       every SEND_OK'd key is dequeued (OpenChaos' QueueChecker, Jepsen's
                        total-queue); duplicates are counted, not failed (at-least-once)
    order               a queue's acknowledged keys come out in the order they were acknowledged
                        (each producer sends one queue in order)
    no stale ack        no SEND_OK from a master of epoch e for a send started after the
                        controller decided a newer epoch (controllers log each decision)
    one master an epoch every epoch has one master: the controllers' decisions and the acks'
                        (epoch, broker) pairs agree
    epochs increase     the decided master epochs, in time order, strictly increase
    replicas identical  after healing, every broker's commit log and epoch file are the same
                        (SHA-256 over the log bytes)
    RTO                 per fault: from injection to the first SEND_OK of a newer epoch (a
                        master fault), or the sends that failed during it (the others)
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .faults import MASTER_FAULTS
from .history import Enqueue, Fault, History

_DECIDED = re.compile(r"controller: (\S+) master (\S+) epoch (\d+) .* decided at (\d+) ms")


@dataclass(frozen=True, slots=True)
class Decision:
    t: float  # on the run's clock
    broker_name: str
    master: int | None
    epoch: int


def decisions(logs: list[Path], broker_name: str, t0: float) -> list[Decision]:
    """Every master-epoch decision the controllers logged, in time order."""
    found = []
    for path in logs:
        try:
            text = path.read_text(errors="replace")
        except FileNotFoundError:
            continue
        for m in _DECIDED.finditer(text):
            if m.group(1) == broker_name:
                master = None if m.group(2) == "None" else int(m.group(2))
                found.append(Decision(int(m.group(4)) / 1000 - t0, m.group(1), master,
                                      int(m.group(3))))
    found.sort(key=lambda d: (d.t, d.epoch))
    return found


@dataclass(slots=True)
class Report:
    acked: int = 0
    failed: int = 0
    unknown: int = 0
    dequeued: int = 0
    lost: list[str] = field(default_factory=list)
    duplicates: int = 0
    order_violations: list[str] = field(default_factory=list)
    stale_acks: list[str] = field(default_factory=list)
    epoch_violations: list[str] = field(default_factory=list)
    replicas_identical: bool | None = None
    identical_after_s: float | None = None  # from the last write to three equal logs
    replica_notes: list[str] = field(default_factory=list)
    faults: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.order_violations or self.stale_acks or
                    self.epoch_violations) and self.replicas_identical is not False


def check(history: History, decided: list[Decision]) -> Report:
    r = Report()
    oks = [e for e in history.enqueues if e.status == "ok"]
    r.acked, r.unknown = len(oks), sum(e.status == "unknown" for e in history.enqueues)
    r.failed = sum(e.status == "fail" for e in history.enqueues)
    seen = Counter(d.key for d in history.dequeues)
    r.dequeued = len(seen)
    r.duplicates = sum(n - 1 for n in seen.values())
    r.lost = sorted(e.key for e in oks if e.key not in seen)
    _check_order(history, oks, r)
    _check_epochs(oks, decided, r)
    starts = [f.start for f in history.faults] + [float("inf")]
    r.faults = [_fault_outcome(f, history.enqueues, starts[i + 1])
                for i, f in enumerate(history.faults)]
    return r


def _check_order(history: History, oks: list[Enqueue], r: Report) -> None:
    position: dict[tuple[int, str], int] = {}
    for d in history.dequeues:
        position.setdefault((d.queue, d.key), d.offset)
    by_worker: dict[int, list[Enqueue]] = defaultdict(list)
    for e in sorted(oks, key=lambda e: e.end):
        by_worker[e.worker].append(e)
    for worker, acks in by_worker.items():
        last = -1
        for e in acks:
            at = position.get((e.queue, e.key)) if e.queue is not None else None
            if at is None:
                continue  # lost: reported as such
            if at < last:
                r.order_violations.append(f"worker {worker}: {e.key} at offset {at} before "
                                          f"an earlier ack's {last}")
            last = max(last, at)


def _check_epochs(oks: list[Enqueue], decided: list[Decision], r: Report) -> None:
    epochs = [d.epoch for d in decided]
    for a, b in zip(epochs, epochs[1:], strict=False):
        if b <= a:
            r.epoch_violations.append(f"epoch {b} decided after {a}")
    master_of: dict[int, int | None] = {}
    for d in decided:
        if d.epoch in master_of and master_of[d.epoch] != d.master:
            r.epoch_violations.append(f"epoch {d.epoch}: masters {master_of[d.epoch]} and "
                                      f"{d.master}")
        master_of[d.epoch] = d.master
    brokers_of: dict[int, set[str]] = defaultdict(set)
    for e in oks:
        if e.epoch is not None and e.broker is not None:
            brokers_of[e.epoch].add(e.broker)
    for epoch, brokers in sorted(brokers_of.items()):
        if len(brokers) > 1:
            r.epoch_violations.append(f"epoch {epoch} acknowledged by {sorted(brokers)}")
    # the first time each epoch was superseded
    superseded: dict[int, float] = {}
    for d in decided:
        for epoch in {e.epoch for e in oks if e.epoch is not None}:
            if epoch < d.epoch and epoch not in superseded:
                superseded[epoch] = d.t
    for e in oks:
        t = superseded.get(e.epoch) if e.epoch is not None else None
        if t is not None and e.start > t:
            r.stale_acks.append(f"{e.key}: SEND_OK by epoch {e.epoch} ({e.broker}), sent at "
                                f"{e.start:.3f} s, after a newer epoch at {t:.3f} s")


def _fault_outcome(f: Fault, enqueues: list[Enqueue], next_start: float) -> dict:
    """RTO of a master fault; the failed sends and whether the master changed, of any. A send
    still in flight when the next fault was injected is that fault's: killing a master resets
    the connections of the sends waiting on it, though they began before."""
    end = min((f.heal if f.heal is not None else f.start) + 5.0, next_start)
    window = [e for e in enqueues if f.start <= e.start < end or e.start < f.start <= e.end]
    failed = [e for e in window if e.status != "ok" and e.end < next_start]
    out = {"kind": f.kind, "target": f.target, "start": round(f.start, 3),
           "failed_sends": len(failed), **f.notes}
    if failed:  # why, in short: a long run keeps no history of a run whose checks passed
        why = Counter((e.error or e.status)[:80] for e in failed)
        out["failures"] = [f"{n} x {text}" for text, n in why.most_common(3)]
    newer = [e for e in enqueues if e.status == "ok" and e.end >= f.start and
             e.epoch is not None and f.epoch_before is not None and e.epoch > f.epoch_before]
    first = min(newer, key=lambda e: e.end) if newer else None
    if f.kind in MASTER_FAULTS:
        out["rto_s"] = round(first.end - f.start, 3) if first is not None else None
    else:
        out["role_changed"] = first is not None and first.end <= end
    return out


def log_digest(store: Path, end: int) -> str:
    """SHA-256 of a store's commit-log bytes [its first segment, end), read from disk."""
    h = hashlib.sha256()
    segments = sorted(p for p in (store / "commitlog").iterdir() if p.name.isdigit())
    for seg in segments:
        start = int(seg.name)
        if start >= end:
            break
        with open(seg, "rb") as f:
            h.update(f.read(end - start if end - start < seg.stat().st_size else
                            seg.stat().st_size))
    return h.hexdigest()
