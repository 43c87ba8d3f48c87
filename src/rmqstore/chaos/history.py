"""A chaos run's history, as OpenMessaging Chaos keeps one: every enqueue and dequeue with its
outcome and times, and every fault with its window; written as JSON lines.

    {"op":"enqueue","worker":2,"key":"w2-17","status":"ok","start":3.101,"end":3.104,
     "broker":"10.0.0.2:10911","epoch":3,"queue":2,"offset":16}
    {"op":"enqueue","worker":2,"key":"w2-18","status":"fail","start":3.2,"end":6.2,
     "error":"SendFailed: ..."}
    {"op":"dequeue","key":"w2-17","queue":2,"offset":16,"broker":"10.0.0.2:10911"}
    {"op":"fault","kind":"kill-master","target":"10.0.0.1:10911","start":10.0,"heal":22.0,
     "epoch_before":2}

status: ok (SEND_OK), fail (not stored, or an error before the broker answered: the message
may still be stored, which the checker allows), unknown (stored but not acknowledged:
FLUSH_SLAVE_TIMEOUT and the like). Times are seconds on the run's clock (time.time() minus
its start), so that the controllers' log lines (wall clock) can be placed on it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(slots=True)
class Enqueue:
    worker: int
    key: str
    status: str
    start: float
    end: float
    broker: str | None = None
    epoch: int | None = None
    queue: int | None = None
    offset: int | None = None
    error: str | None = None
    op: str = "enqueue"


@dataclass(slots=True)
class Dequeue:
    key: str
    queue: int
    offset: int
    broker: str
    op: str = "dequeue"


@dataclass(slots=True)
class Fault:
    kind: str
    target: str
    start: float
    heal: float | None = None
    epoch_before: int | None = None
    notes: dict = field(default_factory=dict)
    op: str = "fault"


@dataclass(slots=True)
class History:
    t0: float  # wall-clock seconds the run's clock starts at
    enqueues: list[Enqueue] = field(default_factory=list)
    dequeues: list[Dequeue] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)

    def write(self, path: Path) -> None:
        with open(path, "w") as out:
            for record in (*self.faults, *self.enqueues, *self.dequeues):
                out.write(json.dumps(asdict(record), separators=(",", ":")) + "\n")

    @classmethod
    def read(cls, path: Path, t0: float = 0.0) -> History:
        h = cls(t0)
        kinds = {"enqueue": (Enqueue, h.enqueues), "dequeue": (Dequeue, h.dequeues),
                 "fault": (Fault, h.faults)}
        for line in Path(path).read_text().splitlines():
            obj = json.loads(line)
            kind, target = kinds[obj["op"]]
            target.append(kind(**obj))
        return h
