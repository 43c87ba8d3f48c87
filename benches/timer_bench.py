"""Timer benchmark: an embedded store with a TimerService on its thread runner.

    .venv/bin/python benches/timer_bench.py [--count N] [--spread-s S] [--burst M] [--json FILE]

1. enqueue: N timer messages (100-byte bodies) put with TimerService.put, due over S seconds
   starting after a lead time long enough to file them all; reported: put rate, and the rate at
   which the service files them into the wheel (put start to the last one filed).
2. delivery under no load: the script only waits while they come due; lateness of each message
   = its store time in the real topic - its TIMER_OUT_MS; reported: p50 / p99 / max, and how
   many were early (must be 0).
3. burst: M more messages all due at one instant; delivery throughput = M / (last store time -
   due time).

Everything is bounded: each wait has a deadline; the data directory is temporary and removed.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rmqstore import open_store
from rmqstore.timer import TimerConfig, TimerService

log = logging.getLogger("timer_bench")
BODY = b"x" * 100
TOPIC = "BenchTimer"
BURST_TOPIC = "BenchTimerBurst"


def now_ms() -> int:
    return int(time.time() * 1000)


def wait_for(pred, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.05)


def lateness(store, topic: str) -> list[int]:
    out = []
    off, end = 0, store.max_offset(topic, 0)
    while off < end:
        got = store.get(topic, 0, off, 1024)
        for m in got.messages:
            out.append(m.store_timestamp - int(m.properties["TIMER_OUT_MS"]))
        off = got.next_offset
    return out


def pct(values: list[int], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> dict:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=1_000_000, help="pending messages (default 1M)")
    ap.add_argument("--spread-s", type=float, default=120.0, help="due over this many seconds")
    ap.add_argument("--burst", type=int, default=100_000, help="messages due at one instant")
    ap.add_argument("--precision-ms", type=int, default=20)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    data = Path(tempfile.mkdtemp(prefix="timer-bench-"))
    try:
        return run(data, args)
    finally:
        shutil.rmtree(data, ignore_errors=True)


def run(data: Path, args) -> dict:
    n, burst = args.count, args.burst
    store = open_store(data, commitlog_segment_bytes=256 << 20, index_enable=False)
    timers = TimerService(store, TimerConfig(precision_ms=args.precision_ms))
    timers.start()
    try:
        # Lead: long enough to put and file everything first (measured: ~40k/s each).
        lead_ms = int(5_000 + (n + burst) / 20)
        base = now_ms() + lead_ms
        spread_ms = int(args.spread_s * 1000)
        t0 = time.perf_counter()
        for i in range(n):
            timers.put(TOPIC, BODY, deliver_at_ms=base + i * spread_ms // n, queue_id=0)
        put_s = time.perf_counter() - t0
        burst_at = base + spread_ms + 2_000
        for _ in range(burst):
            timers.put(BURST_TOPIC, BODY, deliver_at_ms=burst_at, queue_id=0)
        wait_for(lambda: timers.enqueue_offset >= n + burst, 600, "filing")
        filed_s = time.perf_counter() - t0
        filed_before_due_ms = base - now_ms()
        log.info("put %d in %.1f s; filed in %.1f s; first due in %d ms", n + burst, put_s,
                 filed_s, filed_before_due_ms)
        wait_for(lambda: store.max_offset(TOPIC, 0) >= n, args.spread_s + 120, "delivery")
        wait_for(lambda: store.max_offset(BURST_TOPIC, 0) >= burst, 300, "the burst")
    finally:
        timers.close()
    late = lateness(store, TOPIC)
    burst_late = lateness(store, BURST_TOPIC)
    store.close()
    result = {
        "count": n, "spread_s": args.spread_s, "precision_ms": args.precision_ms,
        "put_per_s": round(n / put_s),
        "filed_per_s": round((n + burst) / filed_s),
        "filed_before_due_ms": filed_before_due_ms,
        "late_p50_ms": pct(late, 0.50), "late_p99_ms": pct(late, 0.99), "late_max_ms": max(late),
        "late_mean_ms": round(statistics.fmean(late), 1),
        "early": sum(1 for x in late + burst_late if x < 0),
        "delivered": len(late),
        "burst": burst,
        "burst_per_s": round(burst / max(1, max(burst_late)) * 1000) if burst else None,
        "burst_last_ms": max(burst_late) if burst else None,
    }
    for k, v in result.items():
        print(f"{k:22s} {v}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    sys.exit(0 if main()["early"] == 0 else 1)
