"""The benchmarks kept runnable, so a changed internal breaks the suite rather than a later
benchmark session: `make bench`'s micro-benchmarks each once, untimed (--benchmark-disable),
in a child pytest; server_bench.py, timer_bench.py, engine_targets.py and ha_catchup.py on a
tiny load."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

BENCHES = Path(__file__).resolve().parents[2] / "benches"


def test_every_micro_benchmark_runs_once(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--benchmark-disable",
         "--basetemp", str(tmp_path / "t"), str(BENCHES)],
        cwd=BENCHES, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout


def run_script(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCHES / name), *args], cwd=BENCHES,
                          capture_output=True, text=True, timeout=240)


def test_server_bench_on_a_tiny_load(tmp_path):
    out = tmp_path / "server.json"
    proc = run_script("server_bench.py", "--flush", "async", "--duration", "0.3", "--clients",
                      "aio,raw,floor,cfloor", "--scenarios", "sync_x1,batch", "--json", str(out))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    results = json.loads(out.read_text())["results"]["async"]
    for client in ("aio", "raw", "floor", "cfloor"):
        (run,) = results[client]["sync_x1"]
        assert run["rate"] > 0 and run["errors"] == 0 and run["server_us_per_msg"] >= 0
    # every server's CPU per send side by side, the C floor's among them
    assert "CPU us per send" in proc.stdout and "C floor (server_floor.c)" in proc.stdout
    (batch,) = results["aio"]["batch"]  # only our Producer sends batches
    assert batch["rate"] > 0 and batch["errors"] == 0


def test_server_bench_runs_redis_streams_beside_our_client(tmp_path):
    """The Redis peer stores what it acknowledges (XLEN), consumes it back through a group,
    and the ratio table compares it with our client in the same run."""
    out = tmp_path / "server.json"
    proc = run_script("server_bench.py", "--flush", "sync", "--duration", "0.3", "--clients",
                      "aio,redis", "--scenarios", "sync_x1,consume", "--consume-count", "2000",
                      "--json", str(out))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    results = json.loads(out.read_text())["results"]["sync"]
    (send,) = results["redis"]["sync_x1"]
    assert send["rate"] > 0 and send["errors"] == 0 and send["stored"] >= send["n"]
    # Redis's CPU over 0.3 s of fsync-bound sends can be under one clock tick (10 ms): the
    # figure must be there, not above a tick.
    assert send["client_us_per_msg"] > 0 and send["server_us_per_msg"] >= 0
    (consume,) = results["redis"]["consume"]
    assert consume["n"] == consume["expected"] >= 2000
    assert "ours (asyncio client) / Redis Streams" in proc.stdout


def test_server_bench_refuses_an_unknown_scenario():
    proc = run_script("server_bench.py", "--scenarios", "sync_x1,nope")
    assert proc.returncode == 2 and "nope" in proc.stderr


def test_timer_bench_on_a_tiny_load(tmp_path):
    out = tmp_path / "timer.json"
    proc = run_script("timer_bench.py", "--count", "100", "--spread-s", "0.5", "--burst", "100",
                      "--json", str(out))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["delivered"] == 100 and report["early"] == 0


def test_engine_targets_on_a_tiny_load(tmp_path):
    proc = run_script("engine_targets.py", "--dir", str(tmp_path), "--scale", "0.01",
                      "--rounds", "1")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for measure in ("put, 100 B", "put_batch of 128, 1 KiB", "get_bodies in order",
                    "recovery scan", "with fdatasync", "in flight", "disk limit"):
        assert measure in proc.stdout
    assert list(tmp_path.iterdir()) == []  # its temporary stores are removed


def test_scale_bench_on_a_tiny_load(tmp_path):
    proc = run_script("scale_bench.py", "--dir", str(tmp_path), "--segment-mb", "4",
                      "--queues", "40", "--reopen-queues", "8", "--messages", "200",
                      "--topics", "30", "--put-queues", "8", "--puts", "200", "--read-mib", "4")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for row in ("queues: 40", "queues: 8, messages: 200", "topics: 30", "puts/s",
                "median ratio", "rocksdb"):
        assert row in proc.stdout, proc.stdout
    assert list(tmp_path.iterdir()) == []  # every store removed


def test_many_procs_bench_on_a_tiny_load(tmp_path):
    proc = run_script("many_procs.py", "--dir", str(tmp_path), "--scale", "0.01", "--mode",
                      "async,sync")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for row in ("median ours 1 ", "median ours 4 ", "median ours 4, a store each",
                "median lmdb 4", "median persist-queue 4", "plain file + fdatasync 1",
                "async: ours 4 procs / 1 proc", "sync: ours 4 procs / 1 proc"):
        assert row in proc.stdout, proc.stdout
    ours4 = next(line for line in proc.stdout.splitlines() if "sync  median ours 4 " in line)
    assert float(ours4.split()[-2]) >= 1.0, ours4  # puts per fdatasync, counted
    assert list(tmp_path.iterdir()) == []


def test_visibility_latency_bench_on_a_tiny_load(tmp_path):
    proc = run_script("visibility_latency.py", "--dir", str(tmp_path), "--count", "50",
                      "--rounds", "1", "--burn", "1")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = {line.split()[0]: line for line in proc.stdout.splitlines() if " p99 " in line}
    assert sorted(rows) == ["ours", "ours-wake", "pipe", "redis"], proc.stdout
    assert list(tmp_path.iterdir()) == []


def test_ha_catchup_on_a_tiny_load(tmp_path):
    """Every participant of the replication catch-up bench runs (the Redis peer where Debian's
    redis-server is installed), and the figures the README quotes come out in their ranges."""
    out = tmp_path / "ha.json"
    proc = subprocess.run(
        [sys.executable, str(BENCHES / "ha_catchup.py"), "--mib", "8", "--repeat", "2",
         "--lag-seconds", "0.5", "--rate-mib", "2", "--json", str(out)],
        cwd=BENCHES, capture_output=True, text=True, timeout=240,
        env={**os.environ, "RMQ_BENCH_DIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    r = json.loads(out.read_text())
    names = ["replica", "dispatched", "plain", "floor"]
    if shutil.which("redis-server"):
        names.append("redis")
    for name in names:
        assert len(r["runs_s"][name]) == 2 and all(t > 0 for t in r["runs_s"][name]), name
    turns = r["turns_replica_vs_plain"]
    assert 0 < turns["min"] <= turns["median"] <= turns["max"]
    # CPU clocks tick in 10 ms: a participant's 8 MiB can take less than one tick
    assert {"replica", "plain"} <= set(r["cpu_s_per_gib"])
    assert all(v["median"] >= 0 for v in r["cpu_s_per_gib"].values())
    assert r["lag_puts"] > 0 and 0 < r["lag_p50_ms"] <= r["lag_max_ms"]
    assert list(tmp_path.iterdir()) == [out]  # its scratch data is gone
