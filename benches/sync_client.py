"""The blocking client against what blocking Python code would use instead: one thread sends
100-byte messages one at a time, each awaited, over loopback.

    .venv/bin/python benches/sync_client.py [--duration S] [--slice S] [--json FILE]

In turns of --slice seconds until each has sent for --duration seconds:
- sync     rmqstore.client.sync.Producer (the asyncio client on a loop thread of its own)
- aio      rmqstore.client.Producer awaited from asyncio, the same broker (what the hand-over
           between the caller's thread and the loop's costs)
- redis-py XADD to a redis-server (Debian's redis-server, appendfsync everysec), when installed
Our broker is a NameServer and a broker (`rmqstore serve`, ASYNC_FLUSH). Reported per client:
sends/s, and the CPU microseconds per send of this process (the caller and, for sync, its loop
thread) and of the server. Scratch data under /tmp/sync-client (or $RMQ_BENCH_DIR), deleted at
the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from proc_sample import usage
from redis_peer import RedisServer, redis_server_path

from rmqstore.client import Message, Producer
from rmqstore.client import sync as sync_client
from rmqstore.server.testing_ha import HAPair

TOPIC = "bench_sync"
BODY = b"x" * 100
MAX_TURNS = 10_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Turns:
    """A client's running totals over its turns."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.sends = 0
        self.wall_s = self.cpu_s = self.server_cpu_s = 0.0

    def turn(self, sends_for: Callable[[float], int], seconds: float) -> None:
        """sends_for(seconds) sends for that long and says how many it sent."""
        server0, cpu0, t0 = usage(self.server_pid).cpu_s, time.process_time(), \
            time.perf_counter()
        n = sends_for(seconds)
        self.wall_s += time.perf_counter() - t0
        self.cpu_s += time.process_time() - cpu0
        self.server_cpu_s += usage(self.server_pid).cpu_s - server0
        self.sends += n

    @staticmethod
    def each(send: Callable[[], object]) -> Callable[[float], int]:
        """sends_for of a client whose every send is one blocking call."""
        def sends_for(seconds: float) -> int:
            deadline = time.perf_counter() + seconds
            n = 0
            while time.perf_counter() < deadline:
                send()
                n += 1
            return n
        return sends_for

    def result(self) -> dict[str, float]:
        return {"sends_per_s": self.sends / self.wall_s,
                "client_cpu_us": self.cpu_s * 1e6 / self.sends,
                "server_cpu_us": self.server_cpu_s * 1e6 / self.sends}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0,
                        help="seconds of sends per client")
    parser.add_argument("--slice", type=float, default=1.0, help="seconds per turn")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    base = Path(os.environ.get("RMQ_BENCH_DIR", "/tmp/sync-client"))
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="sync-client-", dir=base))
    pair = HAPair(tmp / "broker", role="ASYNC_MASTER")
    redis: RedisServer | None = None
    loop = asyncio.new_event_loop()
    blocking = aio = None
    try:
        pair.ns_proc.start()
        pair.master_proc.start()
        pair.create_topic(TOPIC, 4)
        broker_pid = pair.master_proc.pid or 0
        blocking = sync_client.Producer("PG_bench_sync", pair.namesrv)
        blocking.start()
        aio = Producer("PG_bench_aio", pair.namesrv)
        loop.run_until_complete(aio.start())

        async def aio_for(seconds: float) -> int:
            deadline = time.perf_counter() + seconds
            n = 0
            while time.perf_counter() < deadline:
                await aio.send(Message(TOPIC, BODY))
                n += 1
            return n

        clients: dict[str, tuple[Callable[[float], int], Turns]] = {
            "sync": (Turns.each(lambda: blocking.send(Message(TOPIC, BODY))), Turns(broker_pid)),
        }
        if redis_server_path() is not None:
            redis = RedisServer("async", tmp, free_port())
            r = redis.client
            clients["redis-py"] = (Turns.each(lambda: r.xadd(TOPIC, {b"b": BODY})),
                                   Turns(redis.proc.pid))
        # asyncio through run_until_complete per send (a blocking call in the caller's own
        # thread), and awaited in one task (what the loop itself costs a send)
        clients["aio"] = (Turns.each(
            lambda: loop.run_until_complete(aio.send(Message(TOPIC, BODY)))), Turns(broker_pid))
        clients["aio, in one task"] = (lambda s: loop.run_until_complete(aio_for(s)),
                                       Turns(broker_pid))
        names = list(clients)
        for sends_for, _ in clients.values():  # warm: routes, connections, the first sends
            sends_for(0.2)
        for k in range(MAX_TURNS):
            if all(turns.wall_s >= args.duration for _, turns in clients.values()):
                break
            for name in names[k % len(names):] + names[:k % len(names)]:
                sends_for, turns = clients[name]
                turns.turn(sends_for, args.slice)
        results = {name: turns.result() for name, (_, turns) in clients.items()}
    finally:
        if blocking is not None:
            blocking.close()
        if aio is not None:
            loop.run_until_complete(aio.close())
        loop.close()
        if redis is not None:
            redis.stop()
        pair.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    for name, r in results.items():
        print(f"{name:18s} {r['sends_per_s']:8,.0f} sends/s  CPU per send: client "
              f"{r['client_cpu_us']:6.1f} us, server {r['server_cpu_us']:5.1f} us")
    if "redis-py" in results:
        ratio = results["sync"]["sends_per_s"] / results["redis-py"]["sends_per_s"]
        print(f"sync Producer / redis-py XADD: {ratio:.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
