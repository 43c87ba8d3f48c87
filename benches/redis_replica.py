"""A peer for benches/ha_catchup.py (redis_peer.py is server_bench's): a Redis replica's full
sync of about as many bytes, on loopback in the same run (Debian's redis-server; skipped when it
is not installed).

Redis's master holds N keys of 1 KiB values (DEBUG POPULATE, RDB compression off, so the RDB
is about as large as the data); a replica with an empty data set is told REPLICAOF and timed
until its INFO says the link is up and no sync is in progress: the master forks and streams
its RDB straight to the socket (repl-diskless-sync, no delay), the replica checks and loads it
straight from the socket into memory (repl-diskless-load on-empty-db), no disk on either side.
Rate: the RDB's bytes (the master's SAVE of the same data) over those seconds.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis
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
            deadline = time.monotonic() + SYNC_TIMEOUT_S
            while True:
                info = replica.client.info("replication")
                if info.get("master_link_status") == "up" and \
                        not info.get("master_sync_in_progress"):
                    break
                if time.monotonic() > deadline:
                    raise SystemExit("the Redis replica did not sync in time")
                time.sleep(0.002)
            seconds = time.perf_counter() - t0
            time.sleep(0.1)  # the master reaps its forked child: its CPU counts then
            cpu += cpu_seconds(self.master.proc.pid, children=True) + cpu_seconds(replica.proc.pid)
            return seconds, cpu
        finally:
            replica.stop()
            shutil.rmtree(self._root / f"replica{run}", ignore_errors=True)

    def stop(self) -> None:
        self.master.stop()
