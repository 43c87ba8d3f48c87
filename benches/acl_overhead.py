"""What ACL costs a sync send: `rmqstore serve` with aclEnable=false and with aclEnable=true
side by side in one run, driven over loopback by our client.

    .venv/bin/python benches/acl_overhead.py [--duration S] [--rounds N] [--json FILE]

Three configurations, each round running each in turn (so that drift of the machine spreads
over all three): ACL off with an unsigned producer, ACL off with a signing producer (the
client's share), ACL on with the same signing producer (the broker's check on top). Each is one
producer awaiting each 100-byte send, for --duration seconds or MAX_SENDS sends. Reported:
sends/s (median of rounds) and per-send latency p50/p99 over all rounds, and the check alone
(server/acl/access.check on a signed 100-byte SEND_MESSAGE_V2) in microseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import tempfile
import time
import timeit
from pathlib import Path

from rmqstore.client import Credentials, Message, Producer
from rmqstore.protocol import RemotingCommand, RequestCode
from rmqstore.protocol.acl_signature import sign_request
from rmqstore.server import testing
from rmqstore.server.acl import check, parse_rules

BODY = b"x" * 100
MAX_SENDS = 1_000_000
TOPIC = "bench_acl"
NORMAL = Credentials("bench-producer", "bench-producer-secret")
ADMIN = Credentials("bench-admin", "bench-admin-secret")
# A normal account allowed the one topic, as RocketMQ's shipped file has one, and the admin
# account the broker signs its registrations with.
ACL_TEXT = f"""\
accounts:
  - accessKey: {NORMAL.access_key}
    secretKey: {NORMAL.secret_key}
    defaultTopicPerm: DENY
    defaultGroupPerm: SUB
    topicPerms: [{TOPIC}=PUB|SUB]
  - accessKey: {ADMIN.access_key}
    secretKey: {ADMIN.secret_key}
    admin: true
"""


def start(root: Path, acl: bool) -> tuple[testing.ServeProcess, str]:
    root.mkdir()
    ns, broker = testing.free_port(), testing.free_broker_port()
    args = ["--data", str(root / "data"), "--namesrv-port", str(ns), "--broker-port",
            str(broker), "--http-port", "0"]
    if acl:
        (root / "plain_acl.yml").write_text(ACL_TEXT)
        (root / "broker.conf").write_text(
            f"aclEnable=true\naclFile={root / 'plain_acl.yml'}\n"
            f"aclAccessKey={ADMIN.access_key}\naclSecretKey={ADMIN.secret_key}\n")
        args += ["-c", str(root / "broker.conf")]
    proc = testing.ServeProcess(args, root / "serve.log").start()
    namesrv = f"127.0.0.1:{ns}"
    testing.create_topic(f"127.0.0.1:{broker}", TOPIC, credentials=ADMIN)
    testing.wait_until(lambda: testing.route(namesrv, TOPIC, ADMIN), 10, what="route")
    return proc, namesrv


async def sync_sends(namesrv: str, credentials: Credentials | None,
                     duration_s: float) -> tuple[int, list[float]]:
    latencies: list[float] = []
    async with Producer("PG_bench", namesrv, credentials=credentials) as p:
        for _ in range(200):  # warm: route, connection, the server's first sends
            await p.send(Message(TOPIC, BODY))
        deadline = time.perf_counter() + duration_s
        while len(latencies) < MAX_SENDS:
            t0 = time.perf_counter()
            await p.send(Message(TOPIC, BODY))
            t1 = time.perf_counter()
            latencies.append(t1 - t0)
            if t1 >= deadline:
                break
    return len(latencies), latencies


def check_alone_us(repeat: int = 50_000) -> float:
    rules = parse_rules(ACL_TEXT)
    request = RemotingCommand.request(RequestCode.SEND_MESSAGE_V2, {
        "a": "PG_bench", "b": TOPIC, "c": "TBW102", "d": "4", "e": "0", "f": "0",
        "g": "1700000000000", "h": "0", "i": "UNIQ_KEY\x01C0A8000100002A9F\x02", "j": "0",
        "k": "false", "m": "false"}, BODY)
    sign_request(request, NORMAL)
    assert check(rules, request, "127.0.0.1:40000") is None
    return min(timeit.repeat(lambda: check(rules, request, "127.0.0.1:40000"),
                             number=repeat, repeat=5)) / repeat * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="acl-bench-"))
    servers = []
    try:
        off, off_ns = start(tmp / "off", acl=False)
        servers.append(off)
        on, on_ns = start(tmp / "on", acl=True)
        servers.append(on)
        configs = {"acl off, unsigned": (off_ns, None), "acl off, signed": (off_ns, NORMAL),
                   "acl on, signed": (on_ns, NORMAL)}
        rates: dict[str, list[float]] = {name: [] for name in configs}
        lat: dict[str, list[float]] = {name: [] for name in configs}
        for _ in range(args.rounds):
            for name, (ns, creds) in configs.items():
                n, samples = asyncio.run(sync_sends(ns, creds, args.duration))
                rates[name].append(n / sum(samples))
                lat[name] += samples
        results = {}
        for name in configs:
            q = statistics.quantiles(lat[name], n=100)
            results[name] = {"sends_per_s": statistics.median(rates[name]),
                             "p50_us": q[49] * 1e6, "p99_us": q[98] * 1e6}
        base = results["acl off, unsigned"]["sends_per_s"]
        results["check_alone_us"] = check_alone_us()
        for name in configs:
            r = results[name]
            print(f"{name:20s} {r['sends_per_s']:9,.0f} sends/s "
                  f"({r['sends_per_s'] / base - 1:+.1%})  p50 {r['p50_us']:6.0f} us  "
                  f"p99 {r['p99_us']:6.0f} us")
        print(f"check alone (signed SEND_MESSAGE_V2, 100 B): {results['check_alone_us']:.1f} us")
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    finally:
        for proc in servers:
            proc.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
