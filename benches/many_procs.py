"""Many processes, one store (issue 23), against the embedded peers doing the same work, in one
run. Bounded: about a minute at --scale 1.

    .venv/bin/python benches/many_procs.py [--dir DIR] [--scale F] [--mode async,sync]

Rows, each in processes that start together (a barrier every process reaches once open) and
put one message per call:
- ours: a shared store (shared=True, 1 GiB segments), 100 B puts to one queue, 1 and 4
  processes; with flush="sync" each put returns once durable (group commit across processes);
- ours, a store each: 4 processes, each with a store of its own (no sharing, no lock): what
  the machine gives 4 processes' puts at that moment, the ceiling of the shared row;
- lmdb: one environment, one write transaction per put appending key = last key + 1 (a FIFO
  queue's offset), 4 processes (LMDB serialises writers with its lock in shared memory);
  async: sync=False, metasync=False; sync: sync=True;
- persist-queue: persistqueue.SQLiteQueue (SQLite in WAL mode, auto_commit: a commit per
  put), 4 processes; async: PRAGMA synchronous=OFF on its connection; sync: its default;
- sync only, the disk's floor: 1 process appending 100 B to a plain file and fdatasyncing
  after each (what one durable put at a time can reach on this disk).
Rate = messages / (last process's end - first process's start); CPU us/put = the processes'
user + system time over the messages (what the lock costs, whatever else runs on the machine);
sync, ours and the floor: puts per fdatasync (MessageStore.commitlog_syncs, in every process).
--rounds R runs the rows R times in turns and prints each row's median and range.
--own-sessions starts each process in a session of its own: where the kernel schedules by
autogroup (this VM), the processes of one session share one session's CPU on a busy machine,
and 4 processes get what 1 gets (the "a store each" row shows it); in sessions of their own
each gets a share, as processes scheduled one by one do.
--group-commit-delay-us N sets ours' group_commit_delay_us (0: each sync waiter syncs at once,
without gathering the others: what the gathering gains).
Append-to-visible latency: benches/visibility_latency.py.
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
OWN_SESSIONS = False
DELAY_ENV = "MANY_PROCS_GROUP_COMMIT_DELAY_US"


def cpu_s() -> float:
    """This process's CPU time (user + system), seconds."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def n(count: int) -> int:
    return max(1, int(count * SCALE))


# -- one process's share of a row (run in a spawned process) ----------------------------------
def ours(path: str, count: int, flush: str, go, out) -> None:
    delay = os.environ.get(DELAY_ENV)  # --group-commit-delay-us, through the spawn
    with rmqstore.open(path, shared=True, flush=flush,
                       **({"group_commit_delay_us": int(delay)} if delay else {})) as store:
        store.put("T", BODY, queue_id=0)  # warm: the topic known, the queue open
        go.wait()
        t0, c0, s0 = time.monotonic(), cpu_s(), store.commitlog_syncs
        for _ in range(count):
            store.put("T", BODY, queue_id=0)
        out.put((t0, time.monotonic(), cpu_s() - c0, store.commitlog_syncs - s0))


def ours_alone(path: str, count: int, flush: str, go, out) -> None:
    """ours, in a store of this process's own (the row's ceiling: nothing shared)."""
    own = os.path.join(path, str(os.getpid()))
    with rmqstore.open(own, flush=flush) as store:
        store.create_topic("T", 1)
    ours(own, count, flush, go, out)


def fdatasync_floor(path: str, count: int, flush: str, go, out) -> None:
    fd = os.open(os.path.join(path, "plain"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    go.wait()
    t0, c0 = time.monotonic(), cpu_s()
    for _ in range(count):
        os.write(fd, BODY)
        os.fdatasync(fd)
    out.put((t0, time.monotonic(), cpu_s() - c0, count))
    os.close(fd)


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
    out.put((t0, time.monotonic(), cpu_s() - c0, None))
    env.close()


def pq_create(path: str) -> None:
    """The queue's database, made once before its processes start: four of them creating it
    and switching it to WAL at once can wait on each other's locks (SQLite's busy timeout is
    60 s), and once, under a loaded suite, they missed the start barrier's 120 s."""
    import persistqueue

    q = persistqueue.SQLiteQueue(path, auto_commit=True, multithreading=True, timeout=60)
    q.close()


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
    out.put((t0, time.monotonic(), cpu_s() - c0, None))


def in_own_session(fn, *args) -> None:
    """fn(*args) in a session of its own: with autogroup scheduling on (Linux's default for
    desktop kernels, and this VM's: /proc/sys/kernel/sched_autogroup_enabled), the scheduler
    shares the CPU between sessions first, so processes of one session get one session's
    share on a busy machine, however many they are."""
    os.setsid()
    fn(*args)


def run_row(fn, path: str, procs: int, count: int,
            flush: str) -> tuple[float, float, float | None]:
    """(puts/s over all processes, CPU us per put in them, puts per fdatasync: sync, ours and
    the floor; None otherwise)."""
    ctx = mp.get_context("spawn")
    go, out = ctx.Barrier(procs + 1), ctx.Queue()  # passed once every process is ready
    target, args = fn, (path, count, flush, go, out)
    if OWN_SESSIONS:
        target, args = in_own_session, (fn, *args)
    ps = [ctx.Process(target=target, args=args) for _ in range(procs)]
    for p in ps:
        p.start()
    go.wait(timeout=120)
    spans = [out.get(timeout=300) for _ in ps]
    for p in ps:
        p.join(timeout=60)
        if p.exitcode != 0:
            raise RuntimeError(f"{fn.__name__} process exited {p.exitcode}")
    total = procs * count
    wall = max(e for _, e, _, _ in spans) - min(s for s, _, _, _ in spans)
    syncs = sum(n or 0 for _, _, _, n in spans)
    per_sync = total / syncs if syncs and flush == "sync" else None
    return total / wall, sum(c for _, _, c, _ in spans) / total * 1e6, per_sync


ROWS = {  # name: (function, processes, puts per process by mode), run in this order
    "ours 1": (ours, 1, {"async": 100_000, "sync": 5_000}),
    "ours 4": (ours, 4, {"async": 100_000, "sync": 5_000}),
    "ours 4, a store each": (ours_alone, 4, {"async": 100_000, "sync": 5_000}),
    "lmdb 4": (lmdb_peer, 4, {"async": 20_000, "sync": 1_000}),
    "persist-queue 4": (pq_peer, 4, {"async": 5_000, "sync": 500}),
    "plain file + fdatasync 1": (fdatasync_floor, 1, {"sync": 5_000}),
}


def row(root: str, name: str, mode: str) -> tuple[float, float, float | None]:
    fn, procs, counts = ROWS[name]
    path = tempfile.mkdtemp(dir=root)
    try:
        if fn is ours:
            with rmqstore.open(path, shared=True) as s:
                s.create_topic("T", 1)
        elif fn is pq_peer:
            pq_create(path)
        return run_row(fn, path, procs, n(counts[mode]), mode)
    finally:
        shutil.rmtree(path, ignore_errors=True)


def puts_per_sync(per_sync: float | None, rate: float) -> str:
    """puts per fdatasync, and the time from one fdatasync's start to the next's (the disk's
    sync plus the gathering and the waking of the processes it covers)."""
    if per_sync is None:
        return ""
    return f" {per_sync:5.2f} puts/fdatasync, one per {per_sync / rate * 1e6:4.0f} us"


def main() -> None:
    global SCALE, OWN_SESSIONS
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=None)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--mode", default="async,sync")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--own-sessions", action="store_true",
                    help="each process in a session of its own (see in_own_session)")
    ap.add_argument("--group-commit-delay-us", type=int, default=None,
                    help="ours: StoreConfig.group_commit_delay_us (0: a waiter syncs at once, "
                         "as before the sync's waiters gathered)")
    args = ap.parse_args()
    SCALE, OWN_SESSIONS = args.scale, args.own_sessions
    if args.group_commit_delay_us is not None:
        os.environ[DELAY_ENV] = str(args.group_commit_delay_us)
    root = tempfile.mkdtemp(prefix="many-procs-", dir=args.dir)
    try:
        for mode in args.mode.split(","):
            names = [name for name, (_, _, counts) in ROWS.items() if mode in counts]
            got: dict[str, list[tuple[float, float, float | None]]] = {n: [] for n in names}
            for r in range(args.rounds):
                for name in names:
                    rate, cpu_us, per_sync = row(root, name, mode)
                    got[name].append((rate, cpu_us, per_sync))
                    print(f"{mode:5} round {r + 1} {name:26} {rate:>10,.0f} puts/s "
                          f"{cpu_us:8.2f} CPU us/put{puts_per_sync(per_sync, rate)}  load "
                          f"{os.getloadavg()[0]:.1f}", flush=True)
                print(f"{mode:5} round {r + 1} ours 4 / " + ", / ".join(  # every round's ratios
                    f"{peer} {got['ours 4'][-1][0] / got[peer][-1][0]:.1f}x"
                    for peer in names if not peer.startswith("ours")), flush=True)
            med = {name: statistics.median(rate for rate, _, _ in v) for name, v in got.items()}
            for name, v in got.items():
                rates = sorted(rate for rate, _, _ in v)
                cpus = statistics.median(c for _, c, _ in v)
                per = [p for _, _, p in v if p is not None]
                print(f"{mode:5} median {name:26} {med[name]:>10,.0f} puts/s "
                      f"({rates[0]:,.0f}-{rates[-1]:,.0f}) {cpus:8.2f} CPU us/put"
                      f"{puts_per_sync(statistics.median(per) if per else None, med[name])}")
            four = med["ours 4"]
            print(f"{mode}: ours 4 procs / 1 proc {four / med['ours 1']:.2f}x (a store each / "
                  f"1 proc {med['ours 4, a store each'] / med['ours 1']:.2f}x); ours / lmdb "
                  f"{four / med['lmdb 4']:.1f}x; ours / persist-queue "
                  f"{four / med['persist-queue 4']:.1f}x", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
