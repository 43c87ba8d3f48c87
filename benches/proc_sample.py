"""Per-process CPU, context switches and CPU placement on Linux (/proc), for benches that want
to say where a configuration's time went: what each of its processes spent per operation, and
how often two of them ran on the same CPU (a 2-CPU machine's scheduler puts them together or
apart, and a figure can change mode with it)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

TICK_S = 1 / os.sysconf("SC_CLK_TCK")


@dataclass
class Usage:
    cpu_s: float = 0.0
    switches: int = 0  # voluntary + involuntary, every thread


def _threads(pid: int) -> Iterator[tuple[str, list[str], str]]:
    """(tid, the fields of its stat after the name, its status) of each thread of ``pid``
    still running."""
    task = f"/proc/{pid}/task"
    for tid in os.listdir(task):
        try:
            with open(f"{task}/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"{task}/{tid}/status") as f:
                status = f.read()
        except OSError:  # the thread ended
            continue
        yield tid, fields, status


def usage(pid: int) -> Usage:
    """CPU seconds and context switches of every thread of ``pid`` so far."""
    u = Usage()
    for _tid, fields, status in _threads(pid):
        u.cpu_s += (int(fields[11]) + int(fields[12])) * TICK_S
        for line in status.splitlines():
            if "ctxt_switches:" in line:
                u.switches += int(line.split()[1])
    return u


def thread_usage(pid: int) -> dict[str, Usage]:
    """CPU seconds and voluntary context switches (its sleeps: a wait for bytes or a hand-over)
    of ``pid``'s threads so far, by role: "loop" the main thread (a broker's event loop), a
    native thread by the name it gives itself (rmq-ha-feed, rmq-ha-recv), "other" the rest.
    CPU from schedstat's nanoseconds where the kernel keeps them (a 10 ms tick is coarse for a
    thread that wakes per send), else user + system ticks."""
    out: dict[str, Usage] = {}
    task = f"/proc/{pid}/task"
    for tid, fields, status in _threads(pid):
        name = next((line.split(None, 1)[1].strip() for line in status.splitlines()
                     if line.startswith("Name:")), "")
        try:
            with open(f"{task}/{tid}/schedstat") as f:
                sched = f.read().split()
        except OSError:  # a kernel without schedstats (or the thread ended): ticks below
            sched = []
        role = "loop" if int(tid) == pid else name if name.startswith("rmq-") else "other"
        u = out.setdefault(role, Usage())
        u.cpu_s += (int(sched[0]) / 1e9 if sched and sched[0].isdigit()
                    else (int(fields[11]) + int(fields[12])) * TICK_S)
        u.switches += next(int(line.split()[1]) for line in status.splitlines()
                           if line.startswith("voluntary_ctxt_switches:"))
    return out


def cpu_of(pid: int) -> int:
    """The CPU ``pid``'s main thread last ran on."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[36])


@dataclass
class Placement:
    """How often, sampled every ``period_s`` while running, ``a`` and ``b`` were last on the
    same CPU."""

    a: int
    b: int
    period_s: float = 0.02
    samples: int = 0
    together: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self.samples += 1
            self.together += cpu_of(self.a) == cpu_of(self.b)
