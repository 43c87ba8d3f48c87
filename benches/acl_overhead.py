"""What ACL costs a sync send: `rmqstore serve` with aclEnable=false and with aclEnable=true
side by side in one run, driven over loopback by our client.

    .venv/bin/python benches/acl_overhead.py [--duration S] [--slice N] [--json FILE]

Three configurations: ACL off with an unsigned producer, ACL off with a signing producer (the
client's share), ACL on with the same signing producer (the broker's check on top). One
producer each, all open at once, each awaiting its 100-byte sync sends, take turns of --slice
sends (the order rotated every turn, so that the machine's drift lands on all three alike)
until each has sent for --duration seconds (or MAX_SENDS sends). Reported: sends/s and
per-send latency p50/p99 of each, the CPU per send of its server (one server per
configuration, the whole process from /proc), and the check alone
(server/acl/access.check on a signed 100-byte SEND_MESSAGE_V2) in microseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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


async def interleaved(configs: dict[str, tuple[str, Credentials | None]], duration_s: float,
                      slice_sends: int) -> dict[str, list[float]]:
    """One producer per configuration, all open at once, taking turns ``slice_sends`` sync
    sends at a time (the order rotated each turn) until each has run ``duration_s``: the
    machine's drift lands on all of them alike. Per-send latencies, in seconds."""
    latencies: dict[str, list[float]] = {name: [] for name in configs}
    producers = {name: Producer(f"PG_bench_{i}", ns, credentials=creds)
                 for i, (name, (ns, creds)) in enumerate(configs.items())}
    for p in producers.values():
        await p.start()
    try:
        for p in producers.values():
            for _ in range(200):  # warm: route, connection, the server's first sends
                await p.send(Message(TOPIC, BODY))
        names = list(configs)
        for turn in range(MAX_SENDS // slice_sends):
            if all(sum(v) >= duration_s for v in latencies.values()):
                break
            for name in names[turn % len(names):] + names[:turn % len(names)]:
                p, out = producers[name], latencies[name]
                for _ in range(slice_sends):
                    t0 = time.perf_counter()
                    await p.send(Message(TOPIC, BODY))
                    out.append(time.perf_counter() - t0)
    finally:
        for p in producers.values():
            await p.close()
    return latencies


def cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of a process so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
    parser.add_argument("--duration", type=float, default=10.0,
                        help="seconds of sends per configuration")
    parser.add_argument("--slice", type=int, default=100, help="sends per turn")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="acl-bench-"))
    servers = []
    try:
        # one server per configuration: each gets the same sends and the same wall time, so
        # that CPU per send compares (a server's idle work is spread over its own sends only)
        plan = {"acl off, unsigned": (False, None), "acl off, signed": (False, NORMAL),
                "acl on, signed": (True, NORMAL)}
        configs, pids = {}, {}
        for i, (name, (acl, creds)) in enumerate(plan.items()):
            proc, ns = start(tmp / f"server{i}", acl=acl)
            servers.append(proc)
            configs[name], pids[name] = (ns, creds), proc.pid
        cpu0 = {name: cpu_s(pid) for name, pid in pids.items()}
        lat = asyncio.run(interleaved(configs, args.duration, args.slice))
        cpu = {name: cpu_s(pid) - cpu0[name] for name, pid in pids.items()}
        results = {}
        for name in configs:
            q = statistics.quantiles(lat[name], n=100)
            results[name] = {"sends": len(lat[name]),
                             "sends_per_s": len(lat[name]) / sum(lat[name]),
                             "p50_us": q[49] * 1e6, "p99_us": q[98] * 1e6}
        base = results["acl off, unsigned"]["sends_per_s"]
        results["check_alone_us"] = check_alone_us()
        for name in configs:
            results[name]["server_cpu_us_per_send"] = cpu[name] / len(lat[name]) * 1e6
        for name in configs:
            r = results[name]
            print(f"{name:20s} {r['sends_per_s']:9,.0f} sends/s "
                  f"({r['sends_per_s'] / base - 1:+.1%})  p50 {r['p50_us']:6.0f} us  "
                  f"p99 {r['p99_us']:6.0f} us  server CPU {r['server_cpu_us_per_send']:4.0f} "
                  f"us/send")
        print(f"check alone (signed SEND_MESSAGE_V2, 100 B): {results['check_alone_us']:.1f} us")
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    finally:
        for proc in servers:
            proc.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
