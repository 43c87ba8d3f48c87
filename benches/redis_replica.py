"""A peer for benches/ha_catchup.py (redis_peer.py is server_bench's): a Redis replica's full
sync of about as many bytes, on loopback in the same run (Debian's redis-server; skipped when it
is not installed).

Redis's master holds N keys of 1 KiB values (DEBUG POPULATE, RDB compression off, so the RDB
is about as large as the data); a replica with an empty data set is told REPLICAOF and timed
until its INFO says the link is up and no sync is in progress: the master forks and streams
its RDB straight to the socket (repl-diskless-sync, no delay), the replica checks and loads it
straight from the socket into memory (repl-diskless-load on-empty-db), no disk on either side.
Rate: the RDB's bytes (the master's SAVE of the same data) over those seconds.

Also benches/ha_sync_cost.py's peer (RedisWaitPeer): a master and its replica, each with the
append-only file fsynced every second (as our ASYNC_FLUSH brokers), and producer processes
(`redis_replica.py --producer HOST:PORT CLIENT`, one connection each; CLIENT redis-py, or resp:
benches/resp.py, whose own CPU per send is a third of redis-py's) that take turns on stdin:
"async S" sends 1 KiB XADDs for S seconds, each awaited (the replica fed asynchronously, as
ASYNC_MASTER's slave); "sync S" pipelines each XADD with `WAIT 1 1000` in one round trip,
answered only once the replica acknowledged the write's offset (as SYNC_MASTER answers once
its slave reported the message). A WAIT answering 0 replicas is a send that failed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import redis
import resp
from bench_worker import cpu_seconds, terminate
from redis_peer import answers

REDIS_SERVER = shutil.which("redis-server")
VALUE_BYTES = 1024
START_TIMEOUT_S = 10.0
SYNC_TIMEOUT_S = 120.0


def available() -> bool:
    return REDIS_SERVER is not None


class RedisServer:
    """One redis-server process on a loopback port, its data in ``root``."""

    def __init__(self, root: Path, port: int, *options: str) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        assert REDIS_SERVER is not None
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(root),
             "--save", "", "--appendonly", "no", "--rdbcompression", "no",
             "--enable-debug-command", "local", "--logfile", str(root / "redis.log"),
             *options], stdout=subprocess.DEVNULL)
        self.client = redis.Redis("127.0.0.1", port, socket_timeout=SYNC_TIMEOUT_S)
        if not answers(self.client, self.proc, START_TIMEOUT_S):
            self.stop()
            raise SystemExit(f"redis-server did not start (see {root}/redis.log)")

    def stop(self) -> None:
        self.client.close()
        terminate(self.proc)


def synced(replica: redis.Redis) -> None:
    """Until the replica's INFO says its link is up and no sync is in progress."""
    deadline = time.monotonic() + SYNC_TIMEOUT_S
    while True:
        info = replica.info("replication")
        if info.get("master_link_status") == "up" and not info.get("master_sync_in_progress"):
            return
        if time.monotonic() > deadline:
            raise SystemExit("the Redis replica did not sync in time")
        time.sleep(0.002)


class RedisPeer:
    """A Redis master holding about ``mib`` MiB, which replicas sync from, turn after turn."""

    def __init__(self, root: Path, mib: float, ports: tuple[int, int]) -> None:
        self._root = root
        self._replica_port = ports[1]
        self.master = RedisServer(root / "master", ports[0], "--repl-diskless-sync", "yes",
                                  "--repl-diskless-sync-delay", "0")
        keys = int(mib * (1 << 20)) // VALUE_BYTES
        self.master.client.execute_command("DEBUG", "POPULATE", keys, "key", VALUE_BYTES)
        self.master.client.save()
        self.rdb_bytes = (root / "master" / "dump.rdb").stat().st_size
        (root / "master" / "dump.rdb").unlink()
        self._master_port = ports[0]

    def full_sync(self, run: int) -> tuple[float, float]:
        """Seconds for an empty replica's full sync, and the CPU seconds both servers spent
        (the master's forked child among them)."""
        replica = RedisServer(self._root / f"replica{run}", self._replica_port,
                              "--repl-diskless-load", "on-empty-db")
        try:
            cpu = -cpu_seconds(self.master.proc.pid, children=True) - cpu_seconds(replica.proc.pid)
            t0 = time.perf_counter()
            replica.client.replicaof("127.0.0.1", self._master_port)
            synced(replica.client)
            seconds = time.perf_counter() - t0
            time.sleep(0.1)  # the master reaps its forked child: its CPU counts then
            cpu += cpu_seconds(self.master.proc.pid, children=True) + cpu_seconds(replica.proc.pid)
            return seconds, cpu
        finally:
            replica.stop()
            shutil.rmtree(self._root / f"replica{run}", ignore_errors=True)

    def stop(self) -> None:
        self.master.stop()


AOF_EVERYSEC = ("--appendonly", "yes", "--appendfsync", "everysec")
STREAM = "bench_ha"
STREAM_MAXLEN = 20_000  # entries kept (trimmed by whole nodes): memory stays ~20 MiB a server
WAIT_TIMEOUT_MS = 1000
BODY_1K = b"x" * 1024


class RedisWaitPeer:
    """A Redis master and its replica on loopback, linked, both with the AOF fsynced every
    second: ha_sync_cost's peer of a master and its slave."""

    def __init__(self, root: Path, ports: tuple[int, int]) -> None:
        self.master = RedisServer(root / "master", ports[0], *AOF_EVERYSEC)
        try:
            self.replica = RedisServer(root / "replica", ports[1], *AOF_EVERYSEC,
                                       "--replicaof", "127.0.0.1", str(ports[0]))
        except BaseException:
            self.master.stop()
            raise
        self.address = f"127.0.0.1:{ports[0]}"
        synced(self.replica.client)

    def stop(self) -> None:
        self.replica.stop()
        self.master.stop()


class WaitProducer:
    """One producer process (this file with --producer), driven turn by turn from stdin."""

    def __init__(self, address: str, client: str, err: Path) -> None:
        self._err = open(err, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, __file__, "--producer", address, client],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._err, text=True, bufsize=1)
        self.pid = self.proc.pid

    def start_turn(self, mode: str, seconds: float) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{mode} {seconds}\n")
        self.proc.stdin.flush()

    def result(self) -> dict:
        """The turn's answer: latencies (us), failed WAITs, errors, its start and end."""
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # the producer's turn is bounded by its deadline
        if not line:
            self.proc.wait(5)
            raise SystemExit("a Redis producer died: "
                             + Path(self._err.name).read_text(errors="replace")[-1000:])
        return json.loads(line)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()  # its loop ends
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            terminate(self.proc, 5)
        self._err.close()


CLIENTS = ("redis-py", "resp")


def redis_py_sends(host: str, port: int) -> dict[str, Callable[[], int]]:
    """Sends by redis-py, as its users write them: each returns its failed WAITs."""
    r = redis.Redis(host, port, socket_timeout=WAIT_TIMEOUT_MS / 1000 + 5)
    xadd = {"maxlen": STREAM_MAXLEN, "approximate": True}

    def send_async() -> int:
        r.xadd(STREAM, {b"b": BODY_1K}, **xadd)
        return 0

    def send_sync() -> int:
        pipe = r.pipeline(transaction=False)
        pipe.xadd(STREAM, {b"b": BODY_1K}, **xadd)
        pipe.execute_command("WAIT", 1, WAIT_TIMEOUT_MS)
        return resp.wait_failures(pipe.execute())

    return {"async": send_async, "sync": send_sync}


def resp_sends(host: str, port: int) -> dict[str, Callable[[], int]]:
    """The same commands, encoded once and sent on a bare socket (benches/resp.py)."""
    conn = resp.Connection(host, port, WAIT_TIMEOUT_MS / 1000 + 5)
    xadd = resp.command("XADD", STREAM, "MAXLEN", "~", STREAM_MAXLEN, "*", "b", BODY_1K)
    xadd_wait = xadd + resp.command("WAIT", 1, WAIT_TIMEOUT_MS)
    return {"async": lambda: (conn.request(xadd, 1), 0)[1],
            "sync": lambda: resp.wait_failures(conn.request(xadd_wait, 2))}


def produce(address: str, client: str) -> None:
    """A producer process: for each "MODE SECONDS" line on stdin, back-to-back sends for that
    long, then one JSON line of what they took; ends when stdin closes."""
    host, port = address.rsplit(":", 1)
    sends = (redis_py_sends if client == "redis-py" else resp_sends)(host, int(port))
    for line in sys.stdin:
        mode, seconds = line.split()
        send = sends[mode]
        lat_us, failed = [], 0
        t0 = time.monotonic()
        deadline = t0 + float(seconds)
        while time.monotonic() < deadline:
            s0 = time.perf_counter()
            failed += send()
            lat_us.append(round((time.perf_counter() - s0) * 1e6))
        sys.stdout.write(json.dumps({"lat_us": lat_us, "failed": failed, "t0": t0,
                                     "t1": time.monotonic()}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    if sys.argv[1:2] != ["--producer"] or len(sys.argv) != 4 or sys.argv[3] not in CLIENTS:
        raise SystemExit(f"usage: redis_replica.py --producer HOST:PORT {{{','.join(CLIENTS)}}}")
    produce(sys.argv[2], sys.argv[3])
