"""What waiting for a slave costs a send: SYNC_MASTER against ASYNC_MASTER (each with its slave)
and a master without one, in one run, driven over loopback by our client.

    .venv/bin/python benches/ha_sync_cost.py [--duration S] [--slice S] [--producers N]
                                             [--no-redis] [--redis-client C] [--json FILE]

Each configuration is a broker group of `rmqstore serve` processes (rmqstore.server.testing_ha):
its NameServer, its master and, but for the last, its slave, ASYNC_FLUSH. Its --producers
producers (4) each await 1 KiB sync sends to a 4-queue topic; the configurations take turns of
--slice seconds (the order rotated every turn, so that the machine's drift lands on all alike)
until each has sent for --duration seconds. Reported: sends/s of the whole group of producers and
per-send latency p50/p99 of each configuration, and SYNC_MASTER's against ASYNC_MASTER's;
with where each configuration's time went: CPU microseconds and context switches per send of
the producers' process, the master and the slave, and how often the producers' process and the
master were last on the same CPU. That is the run's mode on 2 CPUs: apart (same CPU in a few %
of samples, the producers' process never sleeping: ~0.02 switches per send), ASYNC_MASTER runs
in its fast mode (~23-27k sends/s at load 2); together (~90 %, ~0.7 switches per send, each
send a hand-over between the two on one CPU), in its slow one (~17k). SYNC_MASTER's pair,
which also waits for the slave, is together more often (40-95 %). Then per thread of the master
and the slave (the event loop, the native HA threads, the rest), CPU and sleeps per send: which
thread a SYNC_MASTER's extra CPU lands on, and how many wake-ups it takes.

The peer doing the same work, in the same turns (when Debian's redis-server is installed;
--no-redis leaves it out): a Redis master and its replica, AOF fsynced every second
(benches/redis_replica.py), and --producers producer processes (redis-py, or with
--redis-client resp a bare socket, benches/resp.py), each awaiting 1 KiB XADDs: "Redis async"
is XADD alone (Redis's asynchronous replication, as ASYNC_MASTER), "Redis sync" XADD and
`WAIT 1 1000` pipelined as one round trip (answered once the replica holds it, as SYNC_MASTER;
a WAIT answering 0 replicas is counted as a failure). Its producers' CPU is that of all their
processes; its master's and replica's threads are told apart too.
Six runs at --duration 5 (load 1.7-4.3): Redis's sync / async 50, 51, 54 % (resp) and 59, 58,
65 % (redis-py), under ours in every run (56, 56, 58 and 67, 59, 67 %): both add ~27 us of CPU
per send in all, Redis's replica less (+4 us against our slave's +12), its producers more
(+13 us against +4: a WAIT answer comes after the XADD's, a second wake-up).
Scratch data under /tmp/replication (or $RMQ_BENCH_DIR), deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import tempfile
import time
from pathlib import Path

import redis_replica
from proc_sample import Placement, Usage, thread_usage, usage
from redis_replica import RedisWaitPeer, WaitProducer

from rmqstore.client import Message, Producer
from rmqstore.client.producer import SendStatus
from rmqstore.server.testing_ha import HAPair

BODY = b"x" * 1024
TOPIC = "bench_ha"
MAX_TURNS = 10_000
CONFIGS = {"ASYNC_MASTER + slave": ("ASYNC_MASTER", True),
           "SYNC_MASTER + slave": ("SYNC_MASTER", True),
           "master, no slave": ("ASYNC_MASTER", False)}
REDIS = {"Redis async": "async", "Redis sync (WAIT 1)": "sync"}


def start(root: Path, role: str, slave: bool) -> HAPair:
    pair = HAPair(root, role=role)
    pair.ns_proc.start()
    pair.master_proc.start()
    pair.create_topic(TOPIC, 4)
    if slave:
        pair.start_slave()
    return pair


async def turn(producers: list[Producer], seconds: float, out: list[float]) -> float:
    """Every producer sends back to back for ``seconds``; their latencies go to ``out``;
    returns the wall time the turn took."""
    deadline = time.perf_counter() + seconds

    async def one(p: Producer) -> None:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            r = await p.send(Message(TOPIC, BODY))
            out.append(time.perf_counter() - t0)
            if r.status is not SendStatus.SEND_OK:
                raise SystemExit(f"a send answered {r.status.name}")

    t0 = time.perf_counter()
    await asyncio.gather(*(one(p) for p in producers))
    return time.perf_counter() - t0


def redis_turn(producers: list[WaitProducer], mode: str, seconds: float, out: list[float]
               ) -> tuple[float, int]:
    """Every Redis producer process sends back to back for ``seconds`` in ``mode``; their
    latencies go to ``out``; returns the turn's wall time and how many WAITs answered 0."""
    for p in producers:
        p.start_turn(mode, seconds)
    results = [p.result() for p in producers]
    failed = 0
    for r in results:
        out.extend(us / 1e6 for us in r["lat_us"])
        failed += r["failed"]
    return max(r["t1"] for r in results) - min(r["t0"] for r in results), failed


ROLES = ("producers", "master", "slave")
THREAD_ROLES = ("master", "slave")  # whose threads are told apart


class Costs:
    """What one configuration's processes spent over its turns, and its placement samples:
    ``pids`` the processes of each role (the producers may be several)."""

    def __init__(self, pids: dict[str, list[int]]) -> None:
        self.pids = pids
        self.spent = {role: Usage() for role in ROLES}
        self.placement = Placement(pids["producers"][0], pids["master"][0])
        self._before: dict[str, Usage] = {}
        # (process, thread role) -> what that thread spent: where a send's CPU goes
        self.threads: dict[tuple[str, str], Usage] = {}
        self._threads_before: dict[tuple[str, str], Usage] = {}

    @classmethod
    def of_pair(cls, pair: HAPair) -> Costs:
        return cls({"producers": [os.getpid()], "master": [pair.master_proc.pid or 0],
                    "slave": [pair.slave_proc.pid] if pair.slave_proc.pid else []})

    def _thread_usage(self) -> dict[tuple[str, str], Usage]:
        return {(role, thread): u for role in THREAD_ROLES for pid in self.pids[role]
                for thread, u in thread_usage(pid).items()}

    def _usage(self, role: str) -> Usage:
        total = Usage()
        for pid in self.pids[role]:
            u = usage(pid)
            total.cpu_s += u.cpu_s
            total.switches += u.switches
        return total

    def begin(self) -> None:
        self._before = {role: self._usage(role) for role, pids in self.pids.items() if pids}
        self._threads_before = self._thread_usage()
        self.placement.start()

    def end(self) -> None:
        self.placement.stop()
        for role, before in self._before.items():
            now = self._usage(role)
            self.spent[role].cpu_s += now.cpu_s - before.cpu_s
            self.spent[role].switches += now.switches - before.switches
        for key, now in self._thread_usage().items():
            before = self._threads_before.get(key, Usage())
            spent = self.threads.setdefault(key, Usage())
            spent.cpu_s += now.cpu_s - before.cpu_s
            spent.switches += now.switches - before.switches


async def interleaved(namesrvs: dict[str, str], redis_producers: list[WaitProducer],
                      duration_s: float, slice_s: float, n: int, costs: dict[str, Costs]
                      ) -> tuple[dict[str, list[float]], dict[str, float], dict[str, int]]:
    """Turns of every configuration, ours (by NameServer) and Redis's (when its producers are
    given), until each has sent for ``duration_s``: latencies, walls and failed sends of each."""
    names = list(namesrvs) + (list(REDIS) if redis_producers else [])
    latencies: dict[str, list[float]] = {name: [] for name in names}
    walls = dict.fromkeys(names, 0.0)
    failed = dict.fromkeys(names, 0)
    producers = {name: [Producer(f"PG_ha_bench_{k}", ns) for k in range(n)]
                 for name, ns in namesrvs.items()}
    for group in producers.values():
        for p in group:
            await p.start()
    try:
        for group in producers.values():  # warm: routes, connections, the first sends
            await turn(group, 0.5, [])
        for mode in REDIS.values() if redis_producers else ():
            await asyncio.to_thread(redis_turn, redis_producers, mode, 0.5, [])
        for k in range(MAX_TURNS):
            if all(w >= duration_s for w in walls.values()):
                break
            for name in names[k % len(names):] + names[:k % len(names)]:
                costs[name].begin()
                if name in REDIS:
                    wall, fails = await asyncio.to_thread(redis_turn, redis_producers,
                                                          REDIS[name], slice_s, latencies[name])
                    walls[name] += wall
                    failed[name] += fails
                else:
                    walls[name] += await turn(producers[name], slice_s, latencies[name])
                costs[name].end()
    finally:
        for group in producers.values():
            for p in group:
                await p.close()
    return latencies, walls, failed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=15.0,
                        help="seconds of sends per configuration")
    parser.add_argument("--slice", type=float, default=1.0, help="seconds per turn")
    parser.add_argument("--producers", type=int, default=4)
    parser.add_argument("--no-redis", action="store_true", help="leave the Redis peer out")
    parser.add_argument("--redis-client", choices=redis_replica.CLIENTS, default="redis-py",
                        help="the Redis producers' client: redis-py, or resp (a bare socket, "
                             "commands encoded once: the server's cost with little client's)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    base = Path(os.environ.get("RMQ_BENCH_DIR", "/tmp/replication"))
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="ha-sync-cost-", dir=base))
    pairs: list[HAPair] = []
    redis: RedisWaitPeer | None = None
    redis_producers: list[WaitProducer] = []
    try:
        namesrvs, costs = {}, {}
        for i, (name, (role, slave)) in enumerate(CONFIGS.items()):
            pairs.append(start(tmp / f"group{i}", role, slave))
            namesrvs[name] = pairs[-1].namesrv
            costs[name] = Costs.of_pair(pairs[-1])
        if redis_replica.available() and not args.no_redis:
            redis = RedisWaitPeer(tmp / "redis", (free_port(), free_port()))
            redis_producers = [WaitProducer(redis.address, args.redis_client,
                                            tmp / f"redis-producer{k}.err")
                               for k in range(args.producers)]
            for name in REDIS:
                costs[name] = Costs({"producers": [p.pid for p in redis_producers],
                                     "master": [redis.master.proc.pid],
                                     "slave": [redis.replica.proc.pid]})
        lat, walls, failed = asyncio.run(interleaved(namesrvs, redis_producers, args.duration,
                                                     args.slice, args.producers, costs))
    finally:
        for producer in redis_producers:
            producer.close()
        if redis is not None:
            redis.stop()
        for pair in pairs:
            pair.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    results: dict[str, dict] = {}
    for name, samples in lat.items():
        q = statistics.quantiles(samples, n=100)
        spent, placement = costs[name].spent, costs[name].placement
        sends = len(samples) - failed[name]
        results[name] = {"sends": sends, "failed": failed[name],
                         "sends_per_s": sends / walls[name],
                         "p50_ms": q[49] * 1e3, "p99_ms": q[98] * 1e3,
                         "cpu_us_per_send": {r: spent[r].cpu_s * 1e6 / len(samples)
                                             for r in ROLES},
                         "switches_per_send": {r: spent[r].switches / len(samples)
                                               for r in ROLES},
                         "same_cpu": placement.together / max(placement.samples, 1),
                         "threads": {f"{role} {thread}": [u.cpu_s * 1e6 / len(samples),
                                                          u.switches / len(samples)]
                                     for (role, thread), u in sorted(costs[name].threads.items())
                                     if u.cpu_s or u.switches}}

    def versus(sync: str, async_: str) -> dict[str, float]:
        return {"throughput": results[sync]["sends_per_s"] / results[async_]["sends_per_s"],
                "p99_added_ms": results[sync]["p99_ms"] - results[async_]["p99_ms"]}

    results["sync_vs_async"] = versus("SYNC_MASTER + slave", "ASYNC_MASTER + slave")
    if redis is not None:
        results["redis_sync_vs_async"] = versus(*reversed(REDIS))
    names = list(lat)
    for name in names:
        r = results[name]
        fails = f"  {r['failed']} WAITs answered 0" if name == "Redis sync (WAIT 1)" else ""
        print(f"{name:22s} {r['sends_per_s']:8,.0f} sends/s from {args.producers} producers  "
              f"p50 {r['p50_ms']:5.2f} ms  p99 {r['p99_ms']:5.2f} ms{fails}")
    print("CPU us / context switches per send (producers, master, slave); producers and "
          "master on one CPU:")
    for name in names:
        r = results[name]
        cpu, sw = r["cpu_us_per_send"], r["switches_per_send"]
        print(f"  {name:22s} " + "  ".join(f"{cpu[k]:5.1f}/{sw[k]:4.2f}" for k in ROLES)
              + f"  {r['same_cpu']:4.0%}")
    print("CPU us / sleeps (voluntary switches) per send of each thread of master and slave "
          "(loop: the main thread; other: the rest but ours):")
    for name in names:
        threads = results[name]["threads"]
        print(f"  {name:22s} " + "  ".join(f"{t} {cpu:.1f}/{sleeps:.2f}"
                                           for t, (cpu, sleeps) in threads.items()))
    s = results["sync_vs_async"]
    print(f"SYNC_MASTER: {s['throughput']:.0%} of ASYNC_MASTER's sends/s, p99 "
          f"{s['p99_added_ms']:+.2f} ms")
    if redis is not None:
        s = results["redis_sync_vs_async"]
        print(f"Redis XADD + WAIT 1: {s['throughput']:.0%} of XADD's sends/s, p99 "
              f"{s['p99_added_ms']:+.2f} ms")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
