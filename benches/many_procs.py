"""Many processes, one store (issue 23), against the embedded peers doing the same work, in one
run. Bounded: about a minute at --scale 1.

    .venv/bin/python benches/many_procs.py [--dir DIR] [--scale F] [--mode async,sync]

Rows, each in processes that start together (a barrier) and put one message per call:
- ours: a shared store (shared=True, 1 GiB segments), 100 B puts to one queue, 1 and 4
  processes; with flush="sync" each put returns once durable (group commit across processes);
- lmdb: one environment, one write transaction per put appending key = last key + 1 (a FIFO
  queue's offset), 4 processes (LMDB serialises writers with its lock in shared memory);
  async: sync=False, metasync=False; sync: sync=True;
- persist-queue: persistqueue.SQLiteQueue (SQLite in WAL mode, auto_commit: a commit per
  put), 4 processes; async: PRAGMA synchronous=OFF on its connection; sync: its default.
Rate = messages / (last process's end - first process's start); CPU us/put = the processes'
user + system time over the messages (what the lock costs, whatever else runs on the machine).
Then append-to-visible
latency: a writer process puts 2,000 messages 0.5 ms apart carrying their send time
(CLOCK_MONOTONIC, one clock for every process), a reader process blocked in get(timeout)
notes when each arrives.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import shutil
import statistics
import tempfile
import time

import rmqstore

BODY = os.urandom(100)
SCALE = 1.0


def cpu_s() -> float:
    """This process's CPU time (user + system), seconds."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def n(count: int) -> int:
    return max(1, int(count * SCALE))


# -- one process's share of a row (run in a spawned process) ----------------------------------
def ours(path: str, count: int, flush: str, go, out) -> None:
    with rmqstore.open(path, shared=True, flush=flush) as store:
        store.put("T", BODY, queue_id=0)  # warm: the topic known, the queue open
        go.wait()
        t0, c0 = time.monotonic(), cpu_s()
        for _ in range(count):
            store.put("T", BODY, queue_id=0)
        out.put((t0, time.monotonic(), cpu_s() - c0))


def lmdb_peer(path: str, count: int, flush: str, go, out) -> None:
    import lmdb

    env = lmdb.open(path, map_size=4 << 30, sync=flush == "sync", metasync=flush == "sync",
                    lock=True)
    go.wait()
    t0, c0 = time.monotonic(), cpu_s()
    for _ in range(count):
        with env.begin(write=True) as txn:
            cur = txn.cursor()
            key = int.from_bytes(cur.key(), "big") + 1 if cur.last() else 0
            txn.put(key.to_bytes(8, "big"), BODY, append=True)
    out.put((t0, time.monotonic(), cpu_s() - c0))
    env.close()


def pq_peer(path: str, count: int, flush: str, go, out) -> None:
    import persistqueue

    q = persistqueue.SQLiteQueue(path, auto_commit=True, multithreading=True, timeout=60)
    if flush == "async":
        q._getter.execute("PRAGMA synchronous=OFF")
        q._putter.execute("PRAGMA synchronous=OFF")
    go.wait()
    t0, c0 = time.monotonic(), cpu_s()
    for _ in range(count):
        q.put(BODY)
    out.put((t0, time.monotonic(), cpu_s() - c0))


def run_row(fn, path: str, procs: int, count: int, flush: str) -> tuple[float, float]:
    """(puts/s over all processes, CPU us per put in them)."""
    ctx = mp.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    ps = [ctx.Process(target=fn, args=(path, count, flush, go, out)) for _ in range(procs)]
    for p in ps:
        p.start()
    time.sleep(1.0 + 0.3 * procs)  # every process opened and warmed
    go.set()
    spans = [out.get(timeout=300) for _ in ps]
    for p in ps:
        p.join(timeout=60)
        if p.exitcode != 0:
            raise RuntimeError(f"{fn.__name__} process exited {p.exitcode}")
    total = procs * count
    wall = max(e for _, e, _ in spans) - min(s for s, _, _ in spans)
    return total / wall, sum(c for _, _, c in spans) / total * 1e6


# -- append-to-visible latency ------------------------------------------------------------
def latency_reader(path: str, count: int, ready, out) -> None:
    with rmqstore.Queue(path, "L", shared=True) as q, q.consumer("lat") as c:
        ready.set()
        lat = []
        for _ in range(count):
            msg = c.get(timeout=10)
            lat.append(time.monotonic_ns() - int(msg.body))
            c.ack(msg)
        out.put(lat)


def latency(path: str, count: int) -> list[int]:
    ctx = mp.get_context("spawn")
    ready, out = ctx.Event(), ctx.Queue()
    with rmqstore.Queue(path, "L", shared=True) as q:
        p = ctx.Process(target=latency_reader, args=(path, count, ready, out))
        p.start()
        ready.wait(60)
        time.sleep(0.5)
        for _ in range(count):
            q.put(b"%d" % time.monotonic_ns())
            time.sleep(0.0005)
        lat = out.get(timeout=120)
        p.join(timeout=30)
    return lat


def main() -> None:
    global SCALE
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=None)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--mode", default="async,sync")
    args = ap.parse_args()
    SCALE = args.scale
    root = tempfile.mkdtemp(prefix="many-procs-", dir=args.dir)
    counts = {  # per process, per mode: each row a few seconds here
        "async": {"ours": n(100_000), "lmdb": n(20_000), "pq": n(5_000)},
        "sync": {"ours": n(5_000), "lmdb": n(1_000), "pq": n(500)},
    }
    try:
        for mode in args.mode.split(","):
            c = counts[mode]
            rows = []

            def row(name, fn, procs, count, mode=mode):
                path = os.path.join(root, f"{name}-{mode}-{procs}")
                os.makedirs(path)
                if fn is ours:
                    with rmqstore.open(path, shared=True) as s:
                        s.create_topic("T", 1)
                rate, cpu_us = run_row(fn, path, procs, count, mode)
                shutil.rmtree(path, ignore_errors=True)
                rows.append((name, procs, rate))
                print(f"{mode:5} {name:14} {procs} procs  {rate:>12,.0f} puts/s  "
                      f"{cpu_us:8.2f} CPU us/put", flush=True)
                return rate

            one = row("ours", ours, 1, c["ours"])
            four = row("ours", ours, 4, c["ours"])
            lm = row("lmdb", lmdb_peer, 4, c["lmdb"])
            pq = row("persist-queue", pq_peer, 4, c["pq"])
            print(f"{mode}: ours 4 procs / 1 proc = {four / one:.2f}x; ours / lmdb (4 procs) = "
                  f"{four / lm:.1f}x; ours / persist-queue (4 procs) = {four / pq:.1f}x")
        path = os.path.join(root, "latency")
        lat = sorted(latency(path, n(2000)))
        q = statistics.quantiles(lat, n=100)
        print(f"append-to-visible in another process: p50 {q[49] / 1000:.0f} us, p99 "
              f"{q[98] / 1000:.0f} us, max {lat[-1] / 1000:.0f} us ({len(lat)} messages)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
