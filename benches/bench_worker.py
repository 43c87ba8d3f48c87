"""The worker side every client of the server benchmarks shares: the parent's go/stop on
stdin, JSON events on stdout, latency percentiles and what a consumer counts."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

BODY = b"x" * 100  # no NUL: the C++ binding hands bodies over as C strings
MAX_SENDS = 5_000_000  # count bound of every send loop (the deadline usually ends it first)
TS_PROP = "bts"
WARM_PROP = "bwarm"
E2E_RATE = 1000


class Control:
    """Commands from the parent on stdin: 'go' and 'stop'."""

    def __init__(self) -> None:
        self.go = threading.Event()
        self.stop = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in sys.stdin:
            word = line.strip()
            if word == "go":
                self.go.set()
            elif word == "stop":
                self.stop.set()
        self.go.set()
        self.stop.set()  # parent gone


def emit(**event: object) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def wait_event(ev: threading.Event, timeout_s: float) -> bool:
    return ev.wait(timeout_s)


def percentiles(samples_ms: list[float]) -> dict:
    if not samples_ms:
        return {"n": 0}
    s = sorted(samples_ms)

    def pct(p: float) -> float:
        return s[min(len(s) - 1, int(p / 100 * len(s)))]

    return {"n": len(s), "p50": pct(50), "p99": pct(99), "max": s[-1],
            "mean": statistics.fmean(s)}


class ConsumeState:
    """Shared by both consumers: counts, first/last arrival, e2e delays, warm-up coverage."""

    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self.expect = spec.get("expect", 0)
        self.n = 0
        self.t_first = self.t_last = None
        self.delays_ms: list[float] = []
        self.warm_queues: set[int] = set()
        self.warm_sent = False
        self.lock = threading.Lock()
        self.done = threading.Event()

    def on(self, props, queue_id: int, now_ns: int) -> None:
        with self.lock:
            if props.get(WARM_PROP):
                self.warm_queues.add(queue_id)
                if not self.warm_sent and len(self.warm_queues) >= self.spec.get("queues", 4):
                    self.warm_sent = True
                    emit(warm=True)
                return
            ts = props.get(TS_PROP)
            if ts:
                self.delays_ms.append((now_ns - int(ts)) / 1e6)
            self.n += 1
            t = now_ns / 1e9
            if self.t_first is None:
                self.t_first = t
            self.t_last = t
            if self.expect and self.n >= self.expect:
                self.done.set()

    def wait_done(self, ctl: Control) -> None:
        """Until `expect` messages (consume) or 'stop' then the measured ones (e2e)."""
        deadline = time.monotonic() + self.spec["timeout"]
        while time.monotonic() < deadline and not self.done.is_set():
            if ctl.stop.is_set():
                expect = self.spec.get("stop_expect_file")
                # after stop, wait up to 5 s for stragglers to reach the count the parent sends
                if expect and os.path.exists(expect):
                    self.expect = int(Path(expect).read_text())
                    with self.lock:
                        if self.n >= self.expect:
                            break
                    deadline = min(deadline, time.monotonic() + 5)
                else:
                    break
            time.sleep(0.01)

    def result(self) -> dict:
        out = {"n": self.n, "t0": self.t_first, "t1": self.t_last}
        if self.delays_ms:
            out["latency_ms"] = percentiles(self.delays_ms)
        return out


def terminate(proc: subprocess.Popen, timeout_s: float = 30) -> None:
    """SIGTERM, and SIGKILL if the process has not exited within ``timeout_s``."""
    proc.terminate()
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout_s)


def cpu_seconds(pid: int, children: bool = False) -> float:
    """CPU seconds (user + system, all threads) process ``pid`` has used so far; with
    ``children``, with those of its children it has reaped (a forked snapshot, say)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return sum(int(f) for f in fields[11:15 if children else 13]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def minor_faults(pid: int) -> float:
    """Minor page faults process ``pid`` (all threads) has taken so far: a write to a clean
    shared-mapping page (one a sync wrote back) takes one, a write() takes none."""
    try:
        return float(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[7])
    except (OSError, IndexError, ValueError):
        return float("nan")


def paced_e2e_sends(spec: dict, ctl: Control, send) -> None:
    """A blocking client's e2e producer: warm-up sends at E2E_RATE until the parent says go,
    then duration x E2E_RATE sends stamped with CLOCK_MONOTONIC; send(props) sends one."""
    emit(ready=True)
    deadline = time.monotonic() + 60
    while not ctl.go.is_set() and time.monotonic() < deadline:  # until the consumer is warm
        send({WARM_PROP: "1"})
        time.sleep(1 / E2E_RATE)
    time.sleep(0.3)
    total = int(spec["duration"] * E2E_RATE)
    errors = 0
    t0 = time.monotonic()
    for k in range(total):
        delay = t0 + k / E2E_RATE - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        try:
            send({TS_PROP: str(time.monotonic_ns())})
        except Exception:  # noqa: BLE001 - counted
            errors += 1
    emit(result={"n": total, "errors": errors, "t0": t0, "t1": time.monotonic()})


async def inflight_sends(duration: float, send, per_send: int, count: int,
                         inflight: int) -> None:
    """`inflight` tasks each awaiting one send() (of per_send messages) at a time: at most
    `inflight` unanswered, until `count` or `duration`; emits the result."""
    import asyncio

    issued = n = errors = 0
    t0 = time.monotonic()
    deadline = t0 + duration

    async def lane() -> None:
        nonlocal issued, n, errors
        while issued < count and errors <= 1000 and time.monotonic() < deadline:
            issued += per_send
            try:
                await send()  # bounded by the client's own timeout
                n += per_send
            except Exception:  # noqa: BLE001 - counted
                errors += 1

    await asyncio.gather(*(lane() for _ in range(inflight)))
    emit(result={"n": n, "errors": errors, "t0": t0, "t1": time.monotonic()})
