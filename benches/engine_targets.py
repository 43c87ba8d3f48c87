"""The embedded engine against its minimums, best of several rounds (a 2-core VM is
noisy; the best round is the closest to what the code can do). Bounded: about a minute.

    .venv/bin/python benches/engine_targets.py [--dir DIR] [--scale F] [--rounds N]

--scale multiplies every count (the suite runs it at 0.01 so it cannot rot) and --rounds
replaces the number of rounds per measure.

Writes under a temporary directory (removed afterwards) with the engine's default 1 GiB
segments. The disk-limit row is os.write + fdatasync of the same bytes per batch of 128.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

import rmqstore
from rmqstore import _native

SCALE = 1.0
ROUNDS: int | None = None


def n(count: int) -> int:
    """count scaled by --scale (at least 1)."""
    return max(1, int(count * SCALE))


def best(round_fn: Callable[[], float], rounds: int) -> float:
    return max(round_fn() for _ in range(ROUNDS or rounds))


def rate(n: int, fn: Callable[[], None]) -> float:
    t = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t)


def async_rows(root: str, rows: list) -> None:
    b100, b1k = os.urandom(100), os.urandom(1024)
    with rmqstore.open(os.path.join(root, "async")) as s:
        s.create_topic("T", 4)
        s.put("T", b100, queue_id=0)
        time.sleep(0.5)  # let the warmer get ahead of the writer

        def puts() -> None:
            for _ in range(n(100_000)):
                s.put("T", b100, queue_id=0)
        rows.append(("put, 100 B, async flush", best(lambda: rate(n(100_000), puts), 7),
                     1_000_000))
        for label, body, target in (("100 B", b100, 5_000_000), ("1 KiB", b1k, 2_000_000)):
            batch = [body] * 128
            qid = 1 if label == "100 B" else 2

            def batches(batch=batch, qid=qid) -> None:
                for _ in range(n(400)):
                    s.put_batch("T", batch, queue_id=qid)
            rows.append((f"put_batch of 128, {label}, async flush",
                         best(lambda: rate(n(400) * 128, batches), 5), target))
        for _ in range(n(300)):
            s.put_batch("T", [b100] * 1000, queue_id=3)
        stored = n(300) * 1000

        def read_full() -> None:
            off = 0
            while True:
                res = s.get("T", 3, off, 1024)
                if not res.messages:
                    return
                for m in res.messages:
                    m.body
                off = res.next_offset

        def read_bodies() -> None:
            off = 0
            while True:
                b = s.get_bodies("T", 3, off, 4096)
                if not len(b):
                    return
                off = b.next_offset
        rows.append(("get in order, full messages (body read)",
                     best(lambda: rate(stored, read_full), 5), 3_000_000))
        rows.append(("get_bodies in order", best(lambda: rate(stored, read_bodies), 5),
                     10_000_000))
        seg = s.commitlog.files.files[0]
        scanned = s.commitlog.max_offset

        def scan() -> None:
            _native.scan(seg.region, seg.start, 0, True)
        rows.append(("recovery scan with CRC, GB/s",
                     best(lambda: rate(scanned, scan), 5) / 1e9, 1.0))


def sync_rows(root: str, rows: list) -> None:
    b100 = os.urandom(100)
    with rmqstore.open(os.path.join(root, "sync"), flush="sync") as s:
        batch = [b100] * 128
        s.put_batch("T", batch, queue_id=0)

        def batches() -> None:
            for _ in range(n(300)):
                s.put_batch("T", batch, queue_id=0)
        rows.append(("put_batch of 128 with fdatasync, 100 B",
                     best(lambda: rate(n(300) * 128, batches), 5), 400_000))

        def in_flight() -> None:
            last = None
            for _ in range(n(10_000)):
                last = s.put_async("T", b100)
            last.wait()
        rows.append((f"put_async, {n(10_000):,} in flight, sync flush",
                     best(lambda: rate(n(10_000), in_flight), 7), 500_000))
    fd = os.open(os.path.join(root, "raw"), os.O_RDWR | os.O_CREAT | os.O_APPEND)
    data = b"x" * (128 * (91 + 100 + 1))

    def disk() -> None:
        for _ in range(n(300)):
            os.write(fd, data)
            os.fdatasync(fd)
    rows.append(("disk limit: os.write + fdatasync per 128 x 100 B",
                 best(lambda: rate(n(300) * 128, disk), 5), None))
    os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=None, help="where the temporary stores go")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every count")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per measure")
    args = parser.parse_args()
    global SCALE, ROUNDS
    SCALE, ROUNDS = args.scale, args.rounds
    root = tempfile.mkdtemp(prefix="rmq-targets-", dir=args.dir)
    rows: list = []
    try:
        async_rows(root, rows)
        sync_rows(root, rows)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    table = Table(title=f"rmqstore engine, best rounds ({os.cpu_count()} CPUs, "
                        f"load {os.getloadavg()[0]:.2f})")
    for col in ("measure", "messages/s", "minimum", "ratio"):
        table.add_column(col, justify="right" if col != "measure" else "left")
    for label, value, target in rows:
        fmt = f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
        table.add_row(label, fmt, "" if target is None else f"{target:,}",
                      "" if target is None else f"{value / target:.2f}")
    Console().print(table)


if __name__ == "__main__":
    main()
