"""Append-to-visible latency between two processes (issue 23): ours against Redis and a pipe
doing the same work, in turns, in one run. Bounded: about a minute at the defaults.

    .venv/bin/python benches/visibility_latency.py [--dir DIR] [--count N] [--rounds R]
                                                   [--burn P]

A writer process sends N messages 0.5 ms apart, each carrying its send time (CLOCK_MONOTONIC,
one clock for every process); a reader process, blocked until the next one arrives, notes how
long after its send it got it. Three transports, each round in turns:
- ours: put to a shared store (shared=True), the reader in Consumer.get(timeout);
- ours-wake: the same puts, the reader in MessageStore.wait_for_message alone (the futex
  wake-up and one word read, no message read), the send time passed in shared memory: the
  part of ours that is the wake-up across processes, against the pipe's;
- redis: LPUSH to Debian's redis-server on loopback (redis_peer.RedisServer: the append-only
  file with appendfsync everysec, as our store's async flush), the reader in BLPOP, as a job
  queue on Redis waits (redis-py in both processes);
- pipe: a write to a FIFO, the reader in os.read: the kernel's own wake-up of a blocked
  process, with nothing stored (the floor every transport adds its work to).
--burn P runs P processes spinning on the CPU meanwhile (a loaded machine, on purpose), so
the quiet and the loaded figures come from the same build. Each row: median over the rounds
of each round's p50 and p99, and the spread of the p99s.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from redis_peer import RedisServer

from rmqstore.server.testing import free_port

GAP_S = 0.0005
RECORD = 20  # a pipe message: the send time, zero-padded


# -- readers (each in a spawned process): note each message's delay, in ns ----------------
def ours_reader(path: str, count: int, ready, out) -> None:
    import rmqstore

    with rmqstore.Queue(path, "L", shared=True) as q, q.consumer("lat") as c:
        ready.set()
        lat = []
        for _ in range(count):
            msg = c.get(timeout=10)
            lat.append(time.monotonic_ns() - int(msg.body))
            c.ack(msg)
        out.put(lat)


def wake_reader(target: tuple, count: int, ready, out) -> None:
    """ours, the wake-up alone: MessageStore.wait_for_message (a futex on the control file,
    then the queue's published count read), nothing read; the send time comes through shared
    memory, written before each put."""
    import rmqstore

    path, stamp = target
    with rmqstore.open(path, shared=True) as store:
        ready.set()
        lat = []
        for offset in range(1, count + 1):  # the writer's first put is its warm-up
            if not store.wait_for_message("L", 0, offset, 10):
                break
            lat.append(time.monotonic_ns() - stamp.value)
        out.put(lat)


def redis_reader(port: int, count: int, ready, out) -> None:
    import redis

    r = redis.Redis(port=port)
    ready.set()
    lat = []
    for _ in range(count):
        _, body = r.blpop("L", timeout=10)
        lat.append(time.monotonic_ns() - int(body))
    out.put(lat)


def pipe_reader(path: str, count: int, ready, out) -> None:
    fd = os.open(path, os.O_RDWR)  # RDWR: open does not wait for the writer
    ready.set()
    lat = []
    for _ in range(count):
        body = os.read(fd, RECORD)
        lat.append(time.monotonic_ns() - int(body))
    os.close(fd)
    out.put(lat)


def burner(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


# -- writers (this process) ------------------------------------------------------------------
def measure(reader, target, count: int, send) -> list[int]:
    """Start reader(target, count, ...) in a process, send count messages with send(body)."""
    ctx = mp.get_context("spawn")
    ready, out = ctx.Event(), ctx.Queue()
    p = ctx.Process(target=reader, args=(target, count, ready, out))
    p.start()
    if not ready.wait(60):
        raise RuntimeError(f"{reader.__name__} did not start")
    time.sleep(0.3)  # the reader blocked in its wait
    for _ in range(count):
        send(b"%d" % time.monotonic_ns())
        time.sleep(GAP_S)
    lat = out.get(timeout=120)
    p.join(timeout=30)
    return lat


def ours(root: str, count: int) -> list[int]:
    import rmqstore

    path = tempfile.mkdtemp(dir=root)
    try:
        with rmqstore.Queue(path, "L", shared=True) as q:
            return measure(ours_reader, path, count, q.put)
    finally:
        shutil.rmtree(path, ignore_errors=True)


def ours_wake(root: str, count: int) -> list[int]:
    import rmqstore

    path = tempfile.mkdtemp(dir=root)
    stamp = mp.get_context("spawn").Value("q", 0, lock=False)

    def send(body: bytes) -> None:
        stamp.value = int(body)
        store.put("L", body, queue_id=0)

    try:
        with rmqstore.open(path, shared=True) as store:
            store.create_topic("L", 1)
            store.put("L", b"0", queue_id=0)
            return measure(wake_reader, (path, stamp), count, send)
    finally:
        shutil.rmtree(path, ignore_errors=True)


def redis_peer(port: int, count: int) -> list[int]:
    import redis

    r = redis.Redis(port=port)
    r.delete("L")
    return measure(redis_reader, port, count, lambda body: r.lpush("L", body))


def pipe_peer(root: str, count: int) -> list[int]:
    path = os.path.join(root, "fifo")
    os.mkfifo(path)
    fd = os.open(path, os.O_RDWR)
    try:
        return measure(pipe_reader, path, count,
                       lambda body: os.write(fd, body.rjust(RECORD, b"0")))
    finally:
        os.close(fd)
        os.unlink(path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=None)
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--burn", type=int, default=0, help="CPU-spinning processes meanwhile")
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="visibility-", dir=args.dir)
    port = free_port()
    server = RedisServer("async", Path(root), port)
    burners = []
    try:
        if args.burn:  # bounded: they stop by themselves after the longest run could last
            ctx = mp.get_context("spawn")
            burners = [ctx.Process(target=burner, args=(600.0,)) for _ in range(args.burn)]
            for b in burners:
                b.start()
        rows: dict[str, list[tuple[float, float]]] = {
            "ours": [], "ours-wake": [], "redis": [], "pipe": []}
        for _ in range(args.rounds):
            for name, run, target in (("ours", ours, root), ("ours-wake", ours_wake, root),
                                      ("redis", redis_peer, port), ("pipe", pipe_peer, root)):
                q = statistics.quantiles(run(target, args.count), n=100)
                rows[name].append((q[49] / 1000, q[98] / 1000))
        load = os.getloadavg()[0]
        for name, got in rows.items():
            p99s = sorted(p99 for _, p99 in got)
            print(f"{name:9} p50 {statistics.median(p50 for p50, _ in got):6.0f} us  p99 "
                  f"{statistics.median(p99s):7.0f} us  (p99 {p99s[0]:.0f}-{p99s[-1]:.0f} us "
                  f"over {len(got)} rounds of {args.count}; --burn {args.burn}, load {load:.1f})",
                  flush=True)
    finally:
        for b in burners:
            b.kill()
            b.join()
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
