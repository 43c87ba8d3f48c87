"""Scale: what a queue costs the store (descriptors, mappings, disk, open time) and what many
queues cost its writes and reads, with a RocksDB holding the same queues beside it.

    .venv/bin/python benches/scale_bench.py [--dir DIR] [--only NAMES] [--queues N] ...

Measures (each bounded in count and time; stores are removed afterwards):
- queues:   N queues (N/4 topics x 4 queues, one 100 B message each, default config):
            descriptors and mappings held, disk allocated (st_blocks) per queue, create time;
            then closed and reopened (all data read back from a sample of queues).
- reopen:   a store of R queues and one of 4 queues holding the same 100 B messages, closed
            cleanly, reopened in turns warm (best of 5) and cold (every file dropped from the
            page cache with posix_fadvise(DONTNEED) first).
- topics:   T topics created one by one: the mean time of the last 1,000 creations.
- puts:     100 B puts round robin over P queues against puts to 4 queues, two stores open at
            once taking turns (best of --put-rounds rounds each), in wall time and in the
            putting thread's CPU time (which other work on a shared machine disturbs less).
- coldread: one queue whose records lie in 1 MiB runs (batches) between another queue's runs,
            read in order with get_bodies after its files left the page cache, in queue bytes
            per second, against dd reading the same commit-log span cold, in turns (--read-reps
            each, who goes first alternating, both after the same eviction): the median ratio
            and its spread (this disk is shared: its rate moves by 3x within a minute), with
            what others moved through the device during each turn (/proc/diskstats) and the
            median over the turns they left alone.
RocksDB (rocksdict, default options, the `rmqstore bench` peer) holds the same messages keyed
by (queue, offset) in the queues, reopen and puts rows.

Counts default to the figures the scale issue asks for; --quick divides them by 10.
"""

from __future__ import annotations

import argparse
import mmap
import os
import shutil
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import rmqstore
from rmqstore.bench.scale import (
    BODY,
    Overrun,
    allocated,
    descriptors,
    make_topics,
    queue_names,
    read_in_order,
    reopen_once,
)

TIME_LIMIT_S = 600.0  # any one phase
STORE: dict = {}  # settings of every store (--segment-mb); the default config otherwise



def rss_mb() -> float:
    """This process's resident memory (VmRSS), in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def mappings() -> int:
    with open("/proc/self/maps") as f:
        return sum(1 for _ in f)



def drop_cache(path: Path) -> None:
    """posix_fadvise(DONTNEED) on every file under path (dirty pages written first)."""
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            try:
                fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            except OSError:
                continue
            try:
                os.fdatasync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def unmap_pages(store) -> None:
    """Drop the commit log's pages from the open store's mappings (MADV_DONTNEED on a shared
    file mapping keeps the page cache), so that drop_cache can evict them."""
    for seg in store.commitlog.files.files:
        seg.mm.madvise(mmap.MADV_DONTNEED)


def disk_read_bytes() -> int:
    """Bytes this process made the kernel read from disk (/proc/self/io)."""
    with open("/proc/self/io") as f:
        for line in f:
            if line.startswith("read_bytes:"):
                return int(line.split()[1])
    return 0




def disk_counters(path: Path) -> tuple[int, int, int]:
    """(requests read, bytes read, bytes written) of the block device holding path, all
    processes' (/proc/diskstats; zeros where it cannot be found)."""
    dev = os.stat(path).st_dev
    with open("/proc/diskstats") as f:
        for line in f:
            v = line.split()
            if (int(v[0]), int(v[1])) == (os.major(dev), os.minor(dev)):
                return int(v[3]), int(v[5]) * 512, int(v[9]) * 512
    return 0, 0, 0


def device_turn(root: Path, before: tuple[int, int, int], own: int) -> dict:
    """What the device did during a turn that read `own` bytes: its mean read request, and
    the MiB other processes moved through it meanwhile (this disk is shared)."""
    reqs, read, wrote = (b - a for a, b in zip(before, disk_counters(root), strict=True))
    return {"req KiB": read / max(reqs, 1) / 1024,
            "others MiB": max(0, read + wrote - own) / 2**20}


def bounded(deadline: float, what: str) -> None:
    if time.monotonic() > deadline:
        raise Overrun(f"{what}: over {TIME_LIMIT_S:.0f} s")


# -- rmqstore --------------------------------------------------------------------------------
def fill(root: Path, names: list[tuple[str, int]], messages: int) -> float:
    """A store holding `messages` 100 B messages spread round robin over `names`; returns the
    seconds it took."""
    deadline = time.monotonic() + TIME_LIMIT_S
    t = time.perf_counter()
    with rmqstore.open(root, **STORE) as s:
        make_topics(s, names)
        k = len(names)
        for i in range(messages):
            topic, qid = names[i % k]
            s.put(topic, BODY, queue_id=qid)
            if not i & 1023:
                bounded(deadline, "fill")
    return time.perf_counter() - t


def queues_row(root: Path, n: int) -> dict:
    names = queue_names(n)
    fd0, maps0 = descriptors(), mappings()
    deadline = time.monotonic() + TIME_LIMIT_S
    t = time.perf_counter()
    s = rmqstore.open(root, **STORE)
    firsts = []
    try:
        make_topics(s, names)
        topics_s = time.perf_counter() - t
        for i, (topic, qid) in enumerate(names):
            t1 = time.perf_counter()
            s.put(topic, BODY, queue_id=qid)
            firsts.append(time.perf_counter() - t1)
            if not i & 1023:
                bounded(deadline, "queues")
        created = time.perf_counter() - t
        s.flush()
        fds, maps = descriptors() - fd0, mappings() - maps0
        rss = rss_mb()
    finally:
        s.close()
    cq = allocated(root / "consumequeue")
    t = time.perf_counter()
    with rmqstore.open(root, **STORE) as s:
        opened = time.perf_counter() - t
        reopen_fds = descriptors() - fd0
        step = max(1, n // 1000)
        for topic, qid in names[::step]:
            assert bytes(s.get_bodies(topic, qid, 0, 4)[0]) == BODY
        read_fds, read_maps = descriptors() - fd0, mappings() - maps0
    firsts.sort()
    return {"queues": n, "create s": created, "of it topics s": topics_s,
            "first put ms p50/p99/max": f"{1e3 * firsts[len(firsts) // 2]:.2f}/"
                                        f"{1e3 * firsts[len(firsts) * 99 // 100]:.2f}/"
                                        f"{1e3 * firsts[-1]:.1f}",
            "fds": fds, "maps": maps, "RSS MB": rss,
            "cq disk/queue B": cq / n, "store disk GB": allocated(root) / 1e9,
            "reopen s": opened, "fds after reopen": reopen_fds,
            "fds/maps after reading": f"{read_fds}/{read_maps}"}



def reopen_rows(base: Path, n: int, messages: int) -> list[dict]:
    """Both stores filled, then reopened in turns (warm: best of 5 each), then cold once each
    (every file dropped from the page cache first)."""
    roots = {count: base / f"reopen-{count}" for count in (4, n)}
    for count, root in roots.items():
        fill(root, queue_names(count), messages)
    warm = {count: [] for count in roots}
    for _ in range(5):
        for count, root in roots.items():
            warm[count].append(reopen_once(root, **STORE))
    rows = []
    for count, root in roots.items():
        drop_cache(root)
        rows.append({"queues": count, "messages": messages, "warm s": min(warm[count]),
                     "cold s": reopen_once(root, **STORE), "disk GB": allocated(root) / 1e9})
        shutil.rmtree(root)
    return rows


def topics_row(root: Path, n: int) -> dict:
    deadline = time.monotonic() + TIME_LIMIT_S
    last = []
    with rmqstore.open(root, **STORE) as s:
        for i in range(n):
            t = time.perf_counter()
            s.create_topic(f"Topic{i:06d}", 4)
            last.append(time.perf_counter() - t)
            if not i & 255:
                bounded(deadline, "topics")
    tail = last[-1000:]
    last.sort()
    return {"topics": n, "mean of last 1000, ms": 1000 * sum(tail) / len(tail),
            "max of last 1000, ms": 1000 * max(tail),
            "p99 / max of all, ms": f"{1000 * last[len(last) * 99 // 100]:.3f} / "
                                    f"{1000 * last[-1]:.1f}"}


def puts_rows(base: Path, n: int, puts: int, rounds: int = 5) -> list[dict]:
    """Two stores open at once, one with 4 queues and one with n, every queue made before the
    clock starts; rounds of `puts` round-robin puts taken in turns (5 each, the best kept), so
    that a busy machine slows both alike."""
    stores = {}
    try:
        for count in (4, n):
            names = queue_names(count)
            s = stores[count] = (rmqstore.open(base / f"puts-{count}", **STORE), names)
            make_topics(s[0], names)
            for topic, qid in names:
                s[0].put(topic, BODY, queue_id=qid)
        best = {count: 0.0 for count in stores}
        best_cpu = {count: 0.0 for count in stores}
        for _ in range(rounds):
            for count, (s, names) in stores.items():
                put, k = s.put, len(names)
                t, cpu = time.perf_counter(), time.thread_time()
                for i in range(puts):
                    topic, qid = names[i % k]
                    put(topic, BODY, queue_id=qid)
                best[count] = max(best[count], puts / (time.perf_counter() - t))
                best_cpu[count] = max(best_cpu[count], puts / (time.thread_time() - cpu))
    finally:
        for s, _ in stores.values():
            s.close()
    return [{"queues": count, "puts/s": best[count], "puts per CPU-second": best_cpu[count]}
            for count in stores] + \
        [{"ratio": best[4] / best[n], "CPU ratio": best_cpu[4] / best_cpu[n]}]


def coldread_row(root: Path, mib: int, reps: int) -> list[dict]:
    """Queue A and queue B take turns writing 1 MiB batches; A is read back cold with
    get_bodies and dd reads the segment's span of A's runs cold, in turns (which goes first
    alternates), each after the same eviction (every file of the store out of the page
    cache, the open store's mappings of them emptied first)."""
    batch = [BODY] * ((1 << 20) // (len(BODY) + 91))
    with rmqstore.open(root, **STORE) as s:
        s.create_topic("R", 2)
        for i in range(mib):
            s.put_batch("R", batch, queue_id=i % 2)
        a_count = s.max_offset("R", 0)
        record = s.get("R", 0, 1, 1).messages[0].commitlog_offset - \
            s.get("R", 0, 0, 1).messages[0].commitlog_offset
    segment = sorted((root / "commitlog").iterdir())[0]
    queue_bytes = a_count * record
    read_bytes = min(segment.stat().st_size, 2 * queue_bytes) >> 20 << 20

    def read_all(s) -> tuple[float, float]:
        t, cpu = time.perf_counter(), time.thread_time()
        assert read_in_order(s, "R", 0, a_count) == a_count
        return time.perf_counter() - t, time.thread_time() - cpu

    def ours() -> dict:
        with rmqstore.open(root, **STORE) as s:
            unmap_pages(s)  # what the open mapped in (a mapped page is not dropped)
            drop_cache(root)
            io0, dev0 = disk_read_bytes(), disk_counters(root)
            took, cpu = read_all(s)
            io = disk_read_bytes() - io0
            device = device_turn(root, dev0, io)
            warm, _ = read_all(s)  # the reader's own pace now, the disk aside
        # Per reader CPU-second too: on a loaded machine a reader gets a share of a CPU and
        # waits for it, not for the disk (its warm pace is then no faster than its cold one).
        return {"queue MB/s": queue_bytes / took / 1e6, "reader CPU/wall": cpu / took,
                "queue MB per CPU-s": queue_bytes / cpu / 1e6,
                "warm MB/s": queue_bytes / warm / 1e6, "disk read MiB": io / 2**20,
                **{f"ours {k}": v for k, v in device.items()}}

    def dd() -> dict:
        drop_cache(root)
        dev0, t = disk_counters(root), time.perf_counter()
        subprocess.run(["dd", f"if={segment}", "of=/dev/null", "bs=1M",
                        f"count={read_bytes >> 20}"], check=True, capture_output=True)
        took = time.perf_counter() - t
        device = device_turn(root, dev0, read_bytes)
        return {"dd MB/s": read_bytes / took / 1e6, **{f"dd {k}": v for k, v in device.items()}}

    rows = []
    for rep in range(reps):
        first, second = (ours, dd) if rep % 2 == 0 else (dd, ours)
        row = {"rep": rep, "first": first.__name__, **first(), **second()}
        row["ratio"] = row["queue MB/s"] / row["dd MB/s"]
        rows.append(row)
    ratios = sorted(r["ratio"] for r in rows)
    # Turns where others moved under a tenth of what the turn read, in both halves: the
    # ratio where the disk was ours alone (its own rate still moves: a virtual disk)
    quiet = sorted(r["ratio"] for r in rows
                   if r["ours others MiB"] < 0.1 * r["disk read MiB"]
                   and r["dd others MiB"] < 0.1 * read_bytes / 2**20)
    rows.append({"queue MiB": queue_bytes / 2**20, "median ratio": ratios[len(ratios) // 2],
                 "min": ratios[0], "max": ratios[-1], "quiet turns": len(quiet),
                 "their median": quiet[len(quiet) // 2] if quiet else float("nan"),
                 "median warm/dd": sorted(r["warm MB/s"] / r["dd MB/s"] for r in rows)[reps // 2],
                 "median per-CPU-s/dd": sorted(r["queue MB per CPU-s"] / r["dd MB/s"]
                                               for r in rows)[reps // 2],
                 "median dd MB/s": sorted(r["dd MB/s"] for r in rows)[len(rows) // 2]})
    return rows


# -- RocksDB beside it ---------------------------------------------------------------------
def rocks_key(q: int, off: int) -> bytes:
    return struct.pack(">IQ", q, off)


def rocks_rows(base: Path, n: int, messages: int, puts: int) -> dict:
    import rocksdict

    root = base / "rocksdb"
    fd0 = descriptors()
    opts = rocksdict.Options(raw_mode=True)
    db = rocksdict.Rdict(str(root), options=opts)
    t = time.perf_counter()
    for i in range(messages):
        db.put(rocks_key(i % n, i // n), BODY)
    fill_s = time.perf_counter() - t
    offsets = [0] * n
    best = 0.0
    for _ in range(3 if puts else 0):
        t = time.perf_counter()
        for i in range(puts):
            q = i % n
            db.put(rocks_key(q, 1 << 40 | offsets[q]), BODY)
            offsets[q] += 1
        best = max(best, puts / (time.perf_counter() - t))
    db.flush(True)
    fds = descriptors() - fd0
    db.close()
    warm = []
    for _ in range(5):
        t = time.perf_counter()
        rocksdict.Rdict(str(root), options=opts).close()
        warm.append(time.perf_counter() - t)
    drop_cache(root)
    t = time.perf_counter()
    rocksdict.Rdict(str(root), options=opts).close()
    cold = time.perf_counter() - t
    row = {"queues": n, "messages": messages + 3 * puts, "fill s": fill_s,
           "puts/s round robin": best, "fds": fds, "disk MB": allocated(root) / 1e6,
           "reopen warm s": min(warm), "reopen cold s": cold}
    shutil.rmtree(root)
    return row


# -- driver ----------------------------------------------------------------------------------
def show(title: str, rows: list[dict]) -> None:
    print(f"\n{title}")
    for row in rows:
        print("  " + ", ".join(f"{k}: {_fmt(v)}" for k, v in row.items()))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:,.4f}" if v < 10 else f"{v:,.0f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def run(name: str, base: Path, fn: Callable[[Path], object]) -> None:
    root = base / name
    try:
        out = fn(root)
        show(name, out if isinstance(out, list) else [out])
    except Overrun as exc:
        print(f"\n{name}: {exc}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=None, help="where the temporary stores go")
    parser.add_argument("--only", default="queues,reopen,topics,puts,coldread,rocksdb")
    parser.add_argument("--queues", type=int, default=100_000, help="queues row: N")
    parser.add_argument("--reopen-queues", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=100_000, help="reopen and rocksdb rows")
    parser.add_argument("--topics", type=int, default=16_000)
    parser.add_argument("--put-queues", type=int, default=10_000)
    parser.add_argument("--puts", type=int, default=200_000)
    parser.add_argument("--put-rounds", type=int, default=5,
                        help="puts row: rounds of each (more: steadier on a loaded machine)")
    parser.add_argument("--read-mib", type=int, default=512, help="coldread: MiB written")
    parser.add_argument("--read-reps", type=int, default=7, help="coldread: turns of each")
    parser.add_argument("--quick", action="store_true", help="every count / 10")
    parser.add_argument("--segment-mb", type=int, default=None,
                        help="commit-log segment size of every store (default: 1 GiB)")
    args = parser.parse_args()
    if args.segment_mb:
        STORE["commitlog_segment_bytes"] = args.segment_mb << 20
    if args.quick:
        for k in ("queues", "reopen_queues", "messages", "topics", "put_queues", "puts",
                  "read_mib"):
            setattr(args, k, max(4, getattr(args, k) // 10))
    only = set(args.only.split(","))
    base = Path(tempfile.mkdtemp(prefix="rmq-scale-", dir=args.dir))
    print(f"rmqstore scale bench: {os.cpu_count()} CPUs, ulimit -n "
          f"{os.sysconf('SC_OPEN_MAX')}, load {os.getloadavg()[0]:.2f}, under {base}")
    try:
        if "queues" in only:
            run("queues", base, lambda r: queues_row(r, args.queues))
        if "reopen" in only:
            run("reopen", base, lambda r: reopen_rows(r, args.reopen_queues, args.messages))
        if "topics" in only:
            run("topics", base, lambda r: topics_row(r, args.topics))
        if "puts" in only:
            run("puts", base, lambda r: puts_rows(r, args.put_queues, args.puts,
                                                   args.put_rounds))
        if "coldread" in only:
            run("coldread", base, lambda r: coldread_row(r, args.read_mib, args.read_reps))
        if "rocksdb" in only:  # the queues row's queues, then the reopen and puts rows'
            run("rocksdb", base, lambda r: [rocks_rows(r, args.queues, args.queues, 0),
                                            rocks_rows(r, args.reopen_queues, args.messages,
                                                       args.puts)])
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
