"""Replication on loopback, embedded (no broker): how fast a replica catches up, against two
peers on the same files in the same run, and how far it lags while a writer appends 10 MiB/s.

    .venv/bin/python benches/ha_catchup.py [--mib 256] [--repeat 3] [--lag-seconds 10]
                                           [--rate-mib 10] [--batch-kib 32] [--json FILE]

Catch-up: a master store holding --mib MiB of 1 KiB messages (64 MiB segments) runs HAService
on a thread (rmqstore.ha.Background); a replica in another process (tests/ha/follower.py),
seeded with the log's first record so that the master streams it all, connects. Timed from the
replica's first report to the report of the master's end (the replica appended and checked every
record); also when its consume queues and index have it all (dispatched). The peers:

- a plain socket copy: another process asks for the same bytes, the bench sends the master's
  segment files with socket.sendfile and the receiver writes them with pwrite into one
  preallocated file, then answers; timed from its request to its answer;
- the floor of the same work in C (benches/ha_floor.c, built here with gcc and rmqstore's
  native sources): a master process sending the same files as HA frames, eight to a send, and
  a slave process taking the headers out, checking and appending every record with the very
  native call rmqstore's replica uses, reporting after every read; no Python, no event loop,
  no dispatch. Timed as the replica is.

The three take turns --repeat times; medians, with min-max, and the replica's median against
each peer's.

Lag: then the caught-up replica stays linked while a writer thread puts 1 KiB messages paced at
--rate-mib MiB/s for --lag-seconds; each put's lag is the time from its put returning to the
replica's first report covering it (what a SYNC_MASTER send waits for). Reported p50/p99/max.

Scratch data under /tmp/replication (or $RMQ_BENCH_DIR), deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import rmqstore
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
        self.proc.terminate()
        try:
            self.proc.wait(30)
        finally:
            self.proc.kill()


def wait_for(predicate, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.005)


class AckClock:
    """When the master first heard a report, and when one covered ``end``: timed in the
    HAService's own report handler (the loop's thread), so nothing polls while it runs."""

    def __init__(self, service: HAService, end: int) -> None:
        self.first = self.last = 0.0
        self.done = threading.Event()
        self._service, self._end = service, end
        self._on_ack = service.on_ack
        service.on_ack = self._ack  # type: ignore[method-assign]

    def _ack(self, offset: int) -> None:
        now = time.perf_counter()
        if not self.first:
            self.first = now
        if offset >= self._end and not self.last:
            self.last = now
            self.done.set()
        self._on_ack(offset)

    def wait(self) -> float:
        if not self.done.wait(TIMEOUT_S):
            raise SystemExit("timed out waiting for the replica's last report")
        self._service.on_ack = self._on_ack  # type: ignore[method-assign]
        return self.last - self.first


def catch_up(master: rmqstore.MessageStore, ha: Background[HAService], tmp: Path,
             run: int) -> tuple[float, float, Follower]:
    """Seconds from the replica's first report to its report of the master's end, and to
    its dispatch of it all; the follower stays linked."""
    root = tmp / f"replica{run}"
    seed_replica(master, root)
    end = master.commitlog.max_offset
    service = ha.service
    clock = AckClock(service, end)
    follower = Follower(root, "127.0.0.1:%d" % service.address[1])
    appended = clock.wait()
    wait_for(lambda: follower.dispatched >= end, "the replica's dispatch")
    return appended, follower.dispatched_at - clock.first, follower


def receive(port: int, path: str, size: int) -> None:
    """The plain copy's receiving process: ask, read ``size`` bytes into ``path``, answer."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    os.posix_fallocate(fd, 0, size)
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(OFFSET.pack(0))
        got = 0
        while got < size:
            n = sock.recv_into(view, min(CHUNK, size - got))
            if not n:
                raise SystemExit("the sender closed early")
            os.pwrite(fd, view[:n], got)
            got += n
        sock.sendall(OFFSET.pack(got))
    os.close(fd)


def plain_copy(master: rmqstore.MessageStore, tmp: Path, run: int) -> float:
    """Seconds to send the master's segment files to another process that writes them."""
    files = [(seg.path, seg.wrote) for seg in master.commitlog.files.files]
    size = sum(n for _, n in files)
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        proc = subprocess.Popen([sys.executable, __file__, "--receive", str(port),
                                 str(tmp / f"plain{run}"), str(size)])
        try:
            server.settimeout(TIMEOUT_S)
            conn, _ = server.accept()
            with conn:
                conn.settimeout(TIMEOUT_S)
                conn.recv(OFFSET.size, socket.MSG_WAITALL)
                t0 = time.perf_counter()
                for path, n in files:
                    with open(path, "rb") as f:
                        conn.sendfile(f, 0, n)
                answer = conn.recv(OFFSET.size, socket.MSG_WAITALL)
                elapsed = time.perf_counter() - t0
            assert OFFSET.unpack(answer)[0] == size
        finally:
            assert proc.wait(TIMEOUT_S) == 0
    return elapsed


def build_floor(tmp: Path) -> Path:
    """benches/ha_floor.c with rmqstore's native sources, optimised as the module is."""
    exe = tmp / "ha_floor"
    sources = [str(FLOOR_C), *sorted(str(p) for p in NATIVE.glob("*.c"))]
    subprocess.run(["gcc", "-O3", "-std=c11", "-D_GNU_SOURCE", "-pthread", "-I", str(NATIVE),
                    "-o", str(exe), *sources], check=True, timeout=TIMEOUT_S)
    return exe


def c_floor(master: rmqstore.MessageStore, exe: Path, tmp: Path, run: int) -> float:
    """Seconds the C floor's slave takes from its first report to its report of the end."""
    files = [f"{seg.path}:{seg.start}:{seg.wrote}" for seg in master.commitlog.files.files]
    port = free_port()
    out = tmp / f"floor{run}"
    out.mkdir()
    sender = subprocess.Popen([str(exe), "master", str(port), *files], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert sender.stdout is not None and sender.stdout.readline().strip() == "listening"
        receiver = subprocess.run([str(exe), "slave", str(port), str(out),
                                   str(CFG["commitlog_segment_bytes"]), "0"], timeout=TIMEOUT_S)
        assert receiver.returncode == 0
        seconds = float(sender.stdout.readline())
        assert sender.wait(TIMEOUT_S) == 0
    finally:
        sender.kill()
    shutil.rmtree(out)
    return seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def lag(master: rmqstore.MessageStore, service: HAService, seconds: float,
        rate_mib: float) -> list[float]:
    """Per put, seconds from its return to the first report covering it."""
    acks: list[tuple[float, int]] = []
    on_ack = service.on_ack

    def record(offset: int) -> None:  # on the loop's thread
        acks.append((time.perf_counter(), offset))
        on_ack(offset)

    service.on_ack = record  # type: ignore[method-assign]
    puts: list[tuple[float, int]] = []
    body = os.urandom(BODY)
    per_s = rate_mib * MiB / BODY
    log = master.commitlog
    t0 = time.perf_counter()
    sent = 0
    while (now := time.perf_counter()) - t0 < seconds:
        due = int((now - t0) * per_s)
        while sent < due:
            master.put("Lag", body, queue_id=sent % 4)
            puts.append((time.perf_counter(), log.max_offset))  # this writer's record's end
            sent += 1
        time.sleep(0.005)
    end = master.commitlog.max_offset
    wait_for(lambda: bool(acks) and acks[-1][1] >= end, "the last report")
    service.on_ack = on_ack  # type: ignore[method-assign]
    out, i = [], 0
    for t_put, put_end in puts:  # both in offset order
        while acks[i][1] < put_end:
            i += 1
        out.append(acks[i][0] - t_put)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=256, help="MiB the replica catches up on")
    parser.add_argument("--repeat", type=int, default=3, help="turns of the three")
    parser.add_argument("--lag-seconds", type=float, default=10.0)
    parser.add_argument("--rate-mib", type=float, default=10.0, help="MiB/s put while lagging")
    parser.add_argument("--batch-kib", type=int, default=32, help="haTransferBatchSize")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--receive", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receive:
        port, path, size = args.receive
        receive(int(port), path, int(size))
        return
    base = Path(os.environ.get("RMQ_BENCH_DIR", "/tmp/replication"))
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="ha-catchup-", dir=base))
    config = HAConfig(transfer_batch_bytes=args.batch_kib * 1024)
    followers: list[Follower] = []
    runs: dict[str, list[float]] = {"replica": [], "dispatched": [], "plain": [], "floor": []}
    try:
        exe = build_floor(tmp)
        master = rmqstore.open(tmp / "master", **CFG)
        fill(master, args.mib)
        size = master.commitlog.max_offset
        with Background(HAService(master, "127.0.0.1", 0, config)) as ha:
            for run in range(args.repeat):
                runs["plain"].append(plain_copy(master, tmp, run))
                (tmp / f"plain{run}").unlink()
                runs["floor"].append(c_floor(master, exe, tmp, run))
                appended, dispatched, follower = catch_up(master, ha, tmp, run)
                runs["replica"].append(appended)
                runs["dispatched"].append(dispatched)
                if run < args.repeat - 1:
                    follower.stop()
                    shutil.rmtree(tmp / f"replica{run}")
                else:
                    followers.append(follower)
            lags = lag(master, ha.service, args.lag_seconds, args.rate_mib)
        master.close()
    finally:
        for follower in followers:
            follower.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    mib = size / MiB
    rates = {name: spread([mib / t for t in times]) for name, times in runs.items()}
    q = statistics.quantiles(lags, n=100)
    results = {
        "mib": round(mib, 1), "batch_kib": args.batch_kib, "repeat": args.repeat,
        "mib_s": rates, "runs_s": runs,
        "replica_vs_plain": rates["replica"]["median"] / rates["plain"]["median"],
        "replica_vs_floor": rates["replica"]["median"] / rates["floor"]["median"],
        "floor_vs_plain": rates["floor"]["median"] / rates["plain"]["median"],
        "lag_rate_mib_s": args.rate_mib, "lag_puts": len(lags),
        "lag_p50_ms": q[49] * 1e3, "lag_p99_ms": q[98] * 1e3, "lag_max_ms": max(lags) * 1e3,
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
    print(f"lag at {args.rate_mib:g} MiB/s of 1 KiB puts ({len(lags)} puts): p50 "
          f"{results['lag_p50_ms']:.1f} ms, p99 {results['lag_p99_ms']:.1f} ms, max "
          f"{results['lag_max_ms']:.1f} ms")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
