"""Replication on loopback, embedded (no broker): how fast a replica catches up, against two
peers on the same files in the same run, and how far it lags while a writer appends 10 MiB/s.

    .venv/bin/python benches/ha_catchup.py [--mib 256] [--repeat 3] [--lag-seconds 10]
                                           [--rate-mib 10] [--batch-kib 32] [--json FILE]
                                           [--copy-flush-ms 500]

Catch-up: a master store holding --mib MiB of 1 KiB messages (64 MiB segments) runs HAService
on a thread (rmqstore.ha.Background); a replica in another process (tests/ha/follower.py),
seeded with the log's first record so that the master streams it all, connects. Timed from the
replica's first report to the report of the master's end (the replica appended and checked every
record; the master learns it as a SYNC_MASTER send would, by waiting for it); also when its
consume queues and index have it all (dispatched). The peers:

- a plain socket copy: another process asks for the same bytes, the bench sends the master's
  segment files with socket.sendfile and the receiver writes them with pwrite into segment
  files of the replica's size, each preallocated when the stream reaches it, a flusher thread
  fdatasyncing them every --copy-flush-ms (the replica's store flushes every
  StoreConfig.flush_interval_ms: both put the same bytes on disk in their turn), then
  answers; timed from its request to its answer;
- a Redis replica's full sync of about as many bytes (benches/redis_replica.py, when Debian's
  redis-server is installed; --no-redis leaves it out): an existing system's replication of a
  data set, checked and loaded, on the same machine in the same run;
- the floor of the same work in C (benches/ha_floor.c, built here with gcc and rmqstore's
  native sources): a master process sending the same files as HA frames, eight to a send, and
  a slave process taking the headers out, checking and appending every record with the very
  native call rmqstore's replica uses, reporting after every read (the replica: once drained,
  or every few MiB); no Python, no event loop, no dispatch. Timed as the replica is; its slave
  process's CPU seconds per GiB are shown beside the replica's threads'.

The four take turns --repeat times, in an order rotated every turn, each after os.sync() (no
turn pays for the writeback of the bytes another wrote); medians, with min-max, and
the replica's median against each peer's; also each turn's replica against the same turn's copy
(the median of those ratios: on a shared machine the load of the moment moves both alike), and
the CPU seconds per GiB that the replica's two processes and the copy's two ends spent (what the
load moves least; the copy's ends apart too, beside the replica's threads), and the voluntary
context switches per MiB of the HA threads (rmq-ha-*) of both ends (each a sleep: a wait for
bytes, for room, or for a thread to hand over).

Lag: then the caught-up replica stays linked while a writer thread puts 1 KiB messages paced at
--rate-mib MiB/s for --lag-seconds; each put's lag is the time from its put returning to the
replica's first report covering it, waited for as a SYNC_MASTER send waits. Reported
p50/p99/max.

Scratch data under /tmp/replication (or $RMQ_BENCH_DIR), deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import resource
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import redis_replica
from bench_worker import cpu_seconds, terminate
from disk_activity import Disk, delta
from redis_replica import RedisPeer

import rmqstore
from rmqstore._native.build import SOURCES as NATIVE_SOURCES
from rmqstore.config import StoreConfig
from rmqstore.ha import Background, HAConfig, HAService

ROOT = Path(__file__).resolve().parent.parent
FOLLOWER = ROOT / "tests" / "ha" / "follower.py"
FLOOR_C = ROOT / "benches" / "ha_floor.c"
NATIVE = ROOT / "src" / "rmqstore" / "_native"
MiB = 1 << 20
BODY = 1024
CFG = dict(commitlog_segment_bytes=64 * MiB, consumequeue_units=300_000, index_slots=100_000,
           index_entries=400_000)
CHUNK = MiB  # the plain copy's receive buffer
TIMEOUT_S = 120.0
OFFSET = struct.Struct(">q")
FLUSH_MS = StoreConfig.flush_interval_ms  # the replica's store flushes its log this often
IDLE_WAIT_S = 10.0  # at most this long for the device to go quiet before the lag phase
SLOW_S = 0.05  # the lag target: puts slower than this are counted per second of the phase


def fill(store: rmqstore.MessageStore, mib: int) -> None:
    body = os.urandom(BODY)
    store.create_topic("Bench", 4)
    store.create_topic("Lag", 4)
    for i in range(mib * MiB // (BODY * 64)):
        store.put_batch("Bench", [body] * 64, queue_id=i % 4, keys=[f"k{i}"])


def seed_replica(master: rmqstore.MessageStore, root: Path) -> int:
    """A replica holding the master's first record: the master then streams from there."""
    with rmqstore.open(root, replica=True, **CFG) as replica:
        first = master.read_log(0, 4096)
        assert first is not None
        replica.replica.append(0, first)
        return replica.replica.end


class Follower:
    """tests/ha/follower.py in its own process; ``dispatched`` follows its lines."""

    def __init__(self, root: Path, master: str) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
        self.proc = subprocess.Popen([sys.executable, str(FOLLOWER), str(root), master,
                                      json.dumps(CFG)], stdout=subprocess.PIPE, text=True,
                                     env=env)
        self.dispatched = -1
        self.dispatched_at = 0.0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip().isdigit():
                self.dispatched, self.dispatched_at = int(line), time.perf_counter()

    def stop(self) -> None:
        terminate(self.proc)


def wait_for(predicate, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.005)


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """CPU seconds each thread of process ``pid`` has used so far, with its name (the native
    HA threads name themselves rmq-ha-recv and rmq-ha-feed): the scheduler's nanoseconds on
    a CPU (schedstat's first field) where the kernel keeps them, else user + system ticks. A
    tick is 10 ms, 0.036 s/GiB of a 256 MiB catch-up: too coarse for the dispatch thread."""
    out: dict[int, tuple[str, float]] = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            head, tail = (task / "stat").read_text().rsplit(")", 1)
            sched = (task / "schedstat").read_text().split()
        except OSError:  # the thread ended meanwhile
            continue
        if sched and sched[0].isdigit():
            cpu = int(sched[0]) / 1e9
        else:  # no schedstats
            cpu = sum(int(f) for f in tail.split()[11:13]) / os.sysconf("SC_CLK_TCK")
        out[int(task.name)] = (head.split("(", 1)[1], cpu)
    return out


def ha_switches(pid: int) -> dict[int, tuple[str, int]]:
    """Voluntary context switches (sleeps: a wait for bytes, room or a hand-over) each HA
    thread (rmq-ha-*) of process ``pid`` has made so far."""
    out: dict[int, tuple[str, int]] = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            name = (task / "comm").read_text().strip()
            status = (task / "status").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        if name.startswith("rmq-ha"):
            line = next(ln for ln in status.splitlines() if ln.startswith("voluntary_ctxt"))
            out[int(task.name)] = (name, int(line.split()[1]))
    return out


def switches_by_name(before: dict[int, tuple[str, int]], after: dict[int, tuple[str, int]]
                     ) -> dict[str, int]:
    out: dict[str, int] = {}
    for tid, (name, n) in after.items():
        out[name] = out.get(name, 0) + n - before.get(tid, (name, 0))[1]
    return out


def run_queue_wait(pid: int) -> dict[str, float]:
    """Seconds each HA thread (rmq-ha-*) of process ``pid`` has waited on a run queue so far,
    runnable but not running (/proc/PID/task/TID/schedstat, second field): on a saturated
    machine, what every wake-up between a put and its acknowledgement pays."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            name = (task / "comm").read_text().strip()
            waited = int((task / "schedstat").read_text().split()[1]) / 1e9
        except (OSError, IndexError, ValueError):  # ended meanwhile; no schedstats
            continue
        if name.startswith("rmq-ha"):
            out[name] = out.get(name, 0.0) + waited
    return out


def by_name(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]
            ) -> dict[str, float]:
    """CPU seconds per thread name between two thread_cpu snapshots; the busiest unnamed
    thread of the replica's process apart (the dispatch thread; the receive thread of a build
    that names none)."""
    spent = sorted(((name, cpu - before.get(tid, (name, 0.0))[1])
                    for tid, (name, cpu) in after.items()), key=lambda t: -t[1])
    out: dict[str, float] = {}
    for name, cpu in spent:
        key = name if name.startswith("rmq-ha") else "others"
        if key == "others" and "busiest unnamed" not in out:
            key = "busiest unnamed"
        out[key] = out.get(key, 0.0) + cpu
    return out


class AckClock:
    """When the master first heard a report (its handler, on the loop's thread), and when a
    report covered ``end`` (a wait for it, as a SYNC_MASTER send's): nothing polls."""

    def __init__(self, service: HAService, end: int, loop, pid: Callable[[], int]) -> None:
        self.first = self.last = 0.0
        self.cpu = 0.0  # CPU seconds of both processes from the first report to the last
        # the replica's, by thread name, meanwhile, and the master's sender (rmq-ha-feed)
        self.threads: dict[str, float] = {}
        self._threads_at: dict[int, tuple[str, float]] = {}
        self.switches: dict[str, int] = {}  # voluntary, both processes' HA threads
        self._switches_at: list[dict[int, tuple[str, int]]] = []
        self._feed_at: dict[int, tuple[str, float]] = {}  # the master's threads
        self._pid = pid
        self.done = threading.Event()
        self._service = service
        self._on_ack = service.on_ack
        service.on_ack = self._ack  # type: ignore[method-assign]
        loop.call_soon_threadsafe(service.when_replicated, end, self._covered)

    def _ack(self, offset: int) -> None:
        if not self.first:
            self.first = time.perf_counter()
            self.cpu = -cpu_seconds(os.getpid()) - cpu_seconds(self._pid())
            self._threads_at = thread_cpu(self._pid())
            self._feed_at = thread_cpu(os.getpid())
            self._switches_at = [ha_switches(self._pid()), ha_switches(os.getpid())]
        self._on_ack(offset)

    def _covered(self, ok: bool) -> None:
        if ok:
            self.last = time.perf_counter()
            self.cpu += cpu_seconds(os.getpid()) + cpu_seconds(self._pid())
            self.threads = by_name(self._threads_at, thread_cpu(self._pid()))
            master = by_name(self._feed_at, thread_cpu(os.getpid()))
            self.threads["master rmq-ha-feed"] = master.get("rmq-ha-feed", 0.0)
            for at, pid in zip(self._switches_at, (self._pid(), os.getpid()), strict=True):
                for name, n in switches_by_name(at, ha_switches(pid)).items():
                    self.switches[name] = self.switches.get(name, 0) + n
        self.done.set()

    def wait(self) -> float:
        if not self.done.wait(TIMEOUT_S) or not self.last:
            raise SystemExit("timed out waiting for the replica's last report")
        self._service.on_ack = self._on_ack  # type: ignore[method-assign]
        return self.last - self.first


def catch_up(master: rmqstore.MessageStore, ha: Background[HAService], tmp: Path,
             run: int) -> tuple[float, float, float, dict[str, float], dict[str, int], Follower]:
    """Seconds from the replica's first report to its report of the master's end, and to
    its dispatch of it all, the CPU seconds both processes spent until that report, and the
    replica's by thread; the follower stays linked."""
    root = tmp / f"replica{run}"
    seed_replica(master, root)
    end = master.commitlog.max_offset
    service = ha.service
    follower: Follower | None = None
    clock = AckClock(service, end, ha.call(asyncio.get_running_loop),
                     lambda: follower.proc.pid if follower else os.getpid())
    follower = Follower(root, "127.0.0.1:%d" % service.address[1])
    appended = clock.wait()
    wait_for(lambda: follower.dispatched >= end, "the replica's dispatch")
    return (appended, follower.dispatched_at - clock.first, clock.cpu, clock.threads,
            clock.switches, follower)


def receive(port: int, root: str, size: int, segment: int, flush_ms: int) -> None:
    """The plain copy's receiving process: ask, read ``size`` bytes into segment files of
    ``segment`` bytes under ``root``, each created and preallocated when the stream reaches
    it, and fdatasync'd every ``flush_ms`` by a flusher thread (0: never), as the replica's
    store does its own (StoreConfig.flush_interval_ms, flushIntervalCommitLog); answer."""
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    fds: list[int] = []
    stop = threading.Event()

    def flush() -> None:  # the segments written since the last flush: the last, and full ones
        done = 0
        while not stop.wait(flush_ms / 1000):
            todo = len(fds)
            for fd in fds[done:todo]:
                os.fdatasync(fd)
            done = max(todo - 1, 0)

    flusher = threading.Thread(target=flush, daemon=True)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        cpu = time.process_time()
        if flush_ms > 0:
            flusher.start()
        sock.sendall(OFFSET.pack(0))
        got = 0
        while got < size:
            at = got % segment
            if at == 0:
                fd = os.open(Path(root) / f"{got:020d}", os.O_RDWR | os.O_CREAT, 0o644)
                os.posix_fallocate(fd, 0, segment)
                fds.append(fd)
            n = sock.recv_into(view, min(CHUNK, size - got, segment - at))
            if not n:
                raise SystemExit("the sender closed early")
            os.pwrite(fds[-1], view[:n], at)
            got += n
        sock.sendall(OFFSET.pack(got))
        stop.set()
        if flush_ms > 0:
            flusher.join()
        print(time.process_time() - cpu, flush=True)  # its CPU seconds, for the sender
    for fd in fds:
        os.close(fd)


def plain_copy(master: rmqstore.MessageStore, tmp: Path, run: int,
               flush_ms: int) -> tuple[float, float, float]:
    """Seconds to send the master's segment files to another process that writes them as the
    replica does (segment files, flushed every ``flush_ms``), and the CPU seconds each end
    spent: the sender's thread, the receiving process."""
    files = [(seg.path, seg.wrote) for seg in master.commitlog.files.files]
    size = sum(n for _, n in files)
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        root = tmp / f"plain{run}"
        root.mkdir()
        proc = subprocess.Popen([sys.executable, __file__, "--receive", str(port), str(root),
                                 str(size), str(CFG["commitlog_segment_bytes"]),
                                 str(flush_ms)], stdout=subprocess.PIPE, text=True)
        try:
            server.settimeout(TIMEOUT_S)
            conn, _ = server.accept()
            with conn:
                conn.settimeout(TIMEOUT_S)
                conn.recv(OFFSET.size, socket.MSG_WAITALL)
                t0, cpu = time.perf_counter(), time.thread_time()
                for path, n in files:
                    with open(path, "rb") as f:
                        conn.sendfile(f, 0, n)
                answer = conn.recv(OFFSET.size, socket.MSG_WAITALL)
                elapsed, cpu = time.perf_counter() - t0, time.thread_time() - cpu
            assert OFFSET.unpack(answer)[0] == size
        finally:
            out, _ = proc.communicate(timeout=TIMEOUT_S)
            assert proc.returncode == 0
    return elapsed, cpu, float(out)


def build_floor(tmp: Path) -> Path:
    """benches/ha_floor.c with rmqstore's native sources, optimised as the module is."""
    exe = tmp / "ha_floor"
    # the cffi module's plain-C sources (messages.c is C API: it needs Python.h)
    sources = [str(FLOOR_C), *(str(NATIVE / name) for name in NATIVE_SOURCES)]
    subprocess.run(["gcc", "-O3", "-std=c11", "-D_GNU_SOURCE", "-pthread", "-I", str(NATIVE),
                    "-o", str(exe), *sources], check=True, timeout=TIMEOUT_S)
    return exe


def c_floor(master: rmqstore.MessageStore, exe: Path, tmp: Path, run: int
            ) -> tuple[float, float]:
    """Seconds the C floor's slave takes from its first report to its report of the end, and
    the CPU seconds its slave process spent (its one thread: what the replica's receive
    thread does, but for the dispatch)."""
    files = [f"{seg.path}:{seg.start}:{seg.wrote}" for seg in master.commitlog.files.files]
    port = free_port()
    out = tmp / f"floor{run}"
    out.mkdir()
    sender = subprocess.Popen([str(exe), "master", str(port), *files], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert sender.stdout is not None and sender.stdout.readline().strip() == "listening"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        receiver = subprocess.run([str(exe), "slave", str(port), str(out),
                                   str(CFG["commitlog_segment_bytes"]), "0"], timeout=TIMEOUT_S)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        assert receiver.returncode == 0
        seconds = float(sender.stdout.readline())
        assert sender.wait(TIMEOUT_S) == 0
    finally:
        sender.kill()
    shutil.rmtree(out)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return seconds, cpu


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def lag(master: rmqstore.MessageStore, ha: Background[HAService], seconds: float,
        rate_mib: float) -> tuple[list[float], list[float], list[float]]:
    """Per put, seconds from its return to the first report covering it (a wait for it, as a
    SYNC_MASTER send's), and when it returned (seconds into the phase); the longest put in
    each second of the phase."""
    service, loop = ha.service, ha.call(asyncio.get_running_loop)
    puts: list[float] = []
    longest: list[float] = []
    acks: dict[int, float] = {}
    done = threading.Event()

    def covered(i: int, ok: bool) -> None:  # on the loop's thread
        if ok:
            acks[i] = time.perf_counter()
        if len(acks) == len(puts) and last.is_set():
            done.set()

    last = threading.Event()
    body = os.urandom(BODY)
    per_s = rate_mib * MiB / BODY
    log = master.commitlog
    t0 = time.perf_counter()
    while (now := time.perf_counter()) - t0 < seconds:
        due = int((now - t0) * per_s)
        while len(puts) < due:
            began = time.perf_counter()
            master.put("Lag", body, queue_id=len(puts) % 4)
            puts.append(time.perf_counter())
            second = int(began - t0)  # the longest put by second: a put holds the GIL, and
            if second >= len(longest):  # the acknowledgements wait for the loop's thread
                longest.extend([0.0] * (second + 1 - len(longest)))
            longest[second] = max(longest[second], puts[-1] - began)
            end = log.max_offset  # this writer's record's end
            loop.call_soon_threadsafe(service.when_replicated, end,
                                      functools.partial(covered, len(puts) - 1))
        time.sleep(0.005)
    last.set()
    loop.call_soon_threadsafe(lambda: covered(-1, False))  # all may be in already
    if not done.wait(TIMEOUT_S):
        raise SystemExit("timed out waiting for the last report")
    return [acks[i] - t for i, t in enumerate(puts)], [t - t0 for t in puts], longest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=256, help="MiB the replica catches up on")
    parser.add_argument("--repeat", type=int, default=3, help="turns of the three")
    parser.add_argument("--lag-seconds", type=float, default=10.0)
    parser.add_argument("--rate-mib", type=float, default=10.0, help="MiB/s put while lagging")
    parser.add_argument("--batch-kib", type=int, default=32, help="haTransferBatchSize")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--no-redis", action="store_true", help="leave the Redis peer out")
    parser.add_argument("--copy-flush-ms", type=int, default=FLUSH_MS,
                        help="the plain copy's fdatasync interval (0: never)")
    parser.add_argument("--receive", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receive:
        port, path, size, segment, flush_ms = args.receive
        receive(int(port), path, int(size), int(segment), int(flush_ms))
        return
    base = Path(os.environ.get("RMQ_BENCH_DIR", "/tmp/replication"))
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="ha-catchup-", dir=base))
    disk = Disk(tmp)
    config = HAConfig(transfer_batch_bytes=args.batch_kib * 1024,
                      slave_timeout_ms=int(TIMEOUT_S * 1000))
    followers: list[Follower] = []
    runs: dict[str, list[float]] = {"replica": [], "dispatched": [], "plain": [], "floor": []}
    cpu: dict[str, list[float]] = {"replica": [], "plain": [], "plain sender": [],
                                   "plain receiver": [], "floor slave": []}
    threads: dict[str, list[float]] = {}  # the replica's CPU seconds by thread name, per turn
    switches: dict[str, list[int]] = {}  # the HA threads' voluntary switches, per turn
    redis: RedisPeer | None = None
    try:
        exe = build_floor(tmp)
        master = rmqstore.open(tmp / "master", **CFG)
        fill(master, args.mib)
        size = master.commitlog.max_offset
        if redis_replica.available() and not args.no_redis:
            redis = RedisPeer(tmp / "redis", size / MiB, (free_port(), free_port()))
            runs["redis"], cpu["redis"] = [], []
        names = ["plain", "floor", "replica", *(["redis"] if redis is not None else [])]
        for run in range(args.repeat):
            # the order rotates every turn: what one leaves behind (the pages a Redis replica
            # frees, the dirty pages a copy wrote) lands on each in turn
            order = names[run % len(names):] + names[:run % len(names)]
            # an HAService of its own per turn: what its slaves acknowledged starts at 0
            ha = Background(HAService(master, "127.0.0.1", 0, config)).start()
            follower = None
            for name in order:
                # every turn starts with no dirty page of another's in the page cache: none
                # pays for the writeback of the bytes a turn before it wrote
                os.sync()
                if name == "plain":
                    seconds, sender, receiver = plain_copy(master, tmp, run,
                                                           args.copy_flush_ms)
                    runs["plain"].append(seconds)
                    cpu["plain"].append(sender + receiver)
                    cpu["plain sender"].append(sender)
                    cpu["plain receiver"].append(receiver)
                    shutil.rmtree(tmp / f"plain{run}")
                elif name == "floor":
                    seconds, cpu_s = c_floor(master, exe, tmp, run)
                    runs["floor"].append(seconds)
                    cpu["floor slave"].append(cpu_s)
                elif name == "redis":
                    assert redis is not None
                    seconds, cpu_s = redis.full_sync(run)
                    runs["redis"].append(seconds * size / redis.rdb_bytes)  # per our bytes
                    cpu["redis"].append(cpu_s * size / redis.rdb_bytes)
                else:
                    appended, dispatched, cpu_s, spent, slept, follower = catch_up(
                        master, ha, tmp, run)
                    for name, n in slept.items():
                        switches.setdefault(name, []).append(n)
                    cpu["replica"].append(cpu_s)
                    for name, seconds in spent.items():
                        threads.setdefault(name, []).append(seconds)
                    runs["replica"].append(appended)
                    runs["dispatched"].append(dispatched)
            assert follower is not None
            if run == args.repeat - 1:  # the caught-up replica stays linked for the lag
                followers.append(follower)
                # the lag measures replication, not the writeback of the turns' bytes: they
                # are on disk (or deleted) and the device quiet before the writer starts
                os.sync()
                idle_s = disk.wait_idle(timeout_s=IDLE_WAIT_S)
                before = disk.sample()
                pids = (os.getpid(), follower.proc.pid)
                waits = [run_queue_wait(pid) for pid in pids]
                lags, starts, longest = lag(master, ha, args.lag_seconds, args.rate_mib)
                during = delta(before, disk.sample())
                # the share of the phase each HA thread spent runnable but not running
                waited = {name: (s - waits[i].get(name, 0.0)) / args.lag_seconds
                          for i, pid in enumerate(pids)
                          for name, s in run_queue_wait(pid).items()}
            else:
                follower.stop()
                shutil.rmtree(tmp / f"replica{run}")
            ha.close()
        master.close()
    finally:
        for follower in followers:
            follower.stop()
        if redis is not None:
            redis.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    mib = size / MiB
    rates = {name: spread([mib / t for t in times]) for name, times in runs.items()}

    def turns(name: str) -> dict[str, float]:
        """Each turn's rate against the same turn's plain copy."""
        return spread([p / t for t, p in zip(runs[name], runs["plain"], strict=True)])

    q = statistics.quantiles(lags, n=100)
    slow_by_second = [0] * (int(args.lag_seconds) + 1)
    for took, at in zip(lags, starts, strict=True):
        if took > SLOW_S:
            slow_by_second[min(int(at), len(slow_by_second) - 1)] += 1
    results = {
        "mib": round(mib, 1), "batch_kib": args.batch_kib, "repeat": args.repeat,
        "mib_s": rates, "runs_s": runs,
        "replica_vs_plain": rates["replica"]["median"] / rates["plain"]["median"],
        # each turn's replica against the same turn's copy: the load of the moment cancels
        "turns_replica_vs_plain": turns("replica"),
        "turns_redis_vs_plain": turns("redis") if redis is not None else None,
        "cpu_s_per_gib": {name: spread([c * 1024 / mib for c in v]) for name, v in cpu.items()},
        "replica_thread_cpu_s_per_gib": {name: spread([c * 1024 / mib for c in v])
                                         for name, v in threads.items()},
        "ha_voluntary_switches_per_mib": {name: spread([n / mib for n in v])
                                          for name, v in switches.items()},
        "replica_vs_floor": rates["replica"]["median"] / rates["floor"]["median"],
        "floor_vs_plain": rates["floor"]["median"] / rates["plain"]["median"],
        "lag_rate_mib_s": args.rate_mib, "lag_puts": len(lags),
        "lag_p50_ms": q[49] * 1e3, "lag_p99_ms": q[98] * 1e3, "lag_max_ms": max(lags) * 1e3,
        # when the slow puts came (a burst at the start: what the turns left behind) and what
        # the device did meanwhile (others' writes and discards on a shared machine)
        "lag_slow_by_second": slow_by_second,
        "lag_longest_put_ms_by_second": [round(t * 1e3, 1) for t in longest],
        "lag_idle_wait_s": idle_s, "lag_disk": during, "lag_run_queue_share": waited,
    }

    def show(name: str) -> str:
        r = rates[name]
        return f"{r['median']:.0f} MiB/s ({r['min']:.0f}-{r['max']:.0f})"

    print(f"catch-up of {mib:.0f} MiB (haTransferBatchSize {args.batch_kib} KiB), medians of "
          f"{args.repeat} turns: replica {show('replica')} appended, checked and reported "
          f"({show('dispatched')} dispatched too); C floor of the same work {show('floor')}; "
          f"plain socket copy {show('plain')}")
    print(f"replica: {results['replica_vs_floor']:.0%} of the C floor, "
          f"{results['replica_vs_plain']:.0%} of the plain copy (the floor: "
          f"{results['floor_vs_plain']:.0%} of it)")
    turns = results["turns_replica_vs_plain"]
    per_gib = results["cpu_s_per_gib"]
    print(f"turn by turn, replica / plain copy: median {turns['median']:.0%} "
          f"({turns['min']:.0%}-{turns['max']:.0%}); CPU seconds per GiB, both ends: replica "
          f"{per_gib['replica']['median']:.2f}, plain copy {per_gib['plain']['median']:.2f}")
    spent = sorted(results["replica_thread_cpu_s_per_gib"].items(),
                   key=lambda t: -t[1]["median"])
    print("CPU seconds per GiB by thread, the replica's and the master's sender (medians): "
          + ", ".join(f"{name} {v['median']:.2f}" for name, v in spent)
          + f"; the C floor's slave process {per_gib['floor slave']['median']:.2f}; the plain "
          f"copy's sendfile sender {per_gib['plain sender']['median']:.2f}, its receiving "
          f"process {per_gib['plain receiver']['median']:.2f}")
    print("voluntary context switches per MiB by HA thread (medians): "
          + ", ".join(f"{name} {v['median']:.1f}"
                      for name, v in sorted(results["ha_voluntary_switches_per_mib"].items())))
    if redis is not None:
        print(f"Redis replica's full sync of {redis.rdb_bytes / MiB:.0f} MiB (diskless both "
              f"ways): {show('redis')}; turn by turn against the copy: median "
              f"{results['turns_redis_vs_plain']['median']:.0%} "
              f"({results['turns_redis_vs_plain']['min']:.0%}-"
              f"{results['turns_redis_vs_plain']['max']:.0%}); CPU seconds per GiB "
              f"{per_gib['redis']['median']:.2f}")
    print(f"lag at {args.rate_mib:g} MiB/s of 1 KiB puts ({len(lags)} puts): p50 "
          f"{results['lag_p50_ms']:.1f} ms, p99 {results['lag_p99_ms']:.1f} ms, max "
          f"{results['lag_max_ms']:.1f} ms")
    quiet = (f"idle after {idle_s:.1f} s" if idle_s < IDLE_WAIT_S
             else f"never idle in {idle_s:.0f} s")
    print(f"  puts over {SLOW_S * 1e3:.0f} ms by second of the phase: {slow_by_second}; the "
          f"device before it: {quiet}; "
          f"during it: {during['written_mib']:.0f} MiB written, {during['discarded_mib']:.0f} "
          f"MiB discarded, {during['flushes']} flushes (the bench's and any other's)")
    print("  the longest put by second (ms): "
          + ", ".join(f"{t * 1e3:.0f}" for t in longest)
          + "; share of the phase each HA thread waited for a CPU: "
          + ", ".join(f"{name} {share:.0%}" for name, share in sorted(waited.items())))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
