"""Replication on loopback, embedded (no broker): how fast a replica catches up, against a plain
socket copy of the same bytes from the same files in the same run, and how far it lags while a
writer appends 10 MiB/s.

    .venv/bin/python benches/ha_catchup.py [--mib 256] [--lag-seconds 10] [--rate-mib 10]
                                           [--batch-kib 32] [--json FILE]

Catch-up: a master store holding --mib MiB of 1 KiB messages (64 MiB segments) runs HAService
on a thread (rmqstore.ha.Background); a replica in another process (tests/ha/follower.py),
seeded with the log's first record so that the master streams it all, connects. Timed from the
replica's first report to the report of the master's end (the replica appended and checked every
record); also when its consume queues and index have it all (dispatched). The peer: another
process asks for the same bytes, the bench sends the master's segment files with
socket.sendfile and the receiver writes them with pwrite into one preallocated file, then
answers; timed from its request to its answer. Best of --repeat for both.

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
        time.sleep(0.0005)


def catch_up(master: rmqstore.MessageStore, ha: Background[HAService], tmp: Path,
             run: int) -> tuple[float, float, Follower]:
    """Seconds from the replica's first report to its report of the master's end, and to
    its dispatch of it all; the follower stays linked."""
    root = tmp / f"replica{run}"
    start = seed_replica(master, root)
    end = master.commitlog.max_offset
    service = ha.service
    follower = Follower(root, "127.0.0.1:%d" % service.address[1])
    wait_for(lambda: any(link.ack_offset >= start for link in list(service.links)),
             "the replica's first report")
    t0 = time.perf_counter()
    wait_for(lambda: any(link.ack_offset >= end for link in list(service.links)),
             "the replica's last report")
    appended = time.perf_counter() - t0
    wait_for(lambda: follower.dispatched >= end, "the replica's dispatch")
    return appended, follower.dispatched_at - t0, follower


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
        time.sleep(0.0005)
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
    parser.add_argument("--repeat", type=int, default=2, help="catch-ups (and copies) to run")
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
    try:
        master = rmqstore.open(tmp / "master", **CFG)
        fill(master, args.mib)
        size = master.commitlog.max_offset
        with Background(HAService(master, "127.0.0.1", 0, config)) as ha:
            ha_runs, plain_runs = [], []
            for run in range(args.repeat):
                plain_runs.append(plain_copy(master, tmp, run))
                appended, dispatched, follower = catch_up(master, ha, tmp, run)
                ha_runs.append((appended, dispatched))
                if run < args.repeat - 1:
                    follower.stop()
                    shutil.rmtree(tmp / f"replica{run}")
                else:
                    followers.append(follower)
                (tmp / f"plain{run}").unlink()
            lags = lag(master, ha.service, args.lag_seconds, args.rate_mib)
        master.close()
    finally:
        for follower in followers:
            follower.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    mib = size / MiB
    best_ha = min(a for a, _ in ha_runs)
    best_dispatched = min(d for _, d in ha_runs)
    best_plain = min(plain_runs)
    q = statistics.quantiles(lags, n=100)
    results = {
        "mib": round(mib, 1), "batch_kib": args.batch_kib,
        "replica_mib_s": mib / best_ha, "replica_dispatched_mib_s": mib / best_dispatched,
        "plain_copy_mib_s": mib / best_plain, "replica_vs_plain": best_plain / best_ha,
        "runs_s": {"replica": ha_runs, "plain": plain_runs},
        "lag_rate_mib_s": args.rate_mib, "lag_puts": len(lags),
        "lag_p50_ms": q[49] * 1e3, "lag_p99_ms": q[98] * 1e3, "lag_max_ms": max(lags) * 1e3,
    }
    print(f"catch-up of {mib:.0f} MiB (haTransferBatchSize {args.batch_kib} KiB): replica "
          f"{results['replica_mib_s']:.0f} MiB/s appended and reported "
          f"({results['replica_dispatched_mib_s']:.0f} MiB/s dispatched too), plain socket "
          f"copy {results['plain_copy_mib_s']:.0f} MiB/s: {results['replica_vs_plain']:.0%}")
    print(f"lag at {args.rate_mib:g} MiB/s of 1 KiB puts ({len(lags)} puts): p50 "
          f"{results['lag_p50_ms']:.1f} ms, p99 {results['lag_p99_ms']:.1f} ms, max "
          f"{results['lag_max_ms']:.1f} ms")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
