"""The benchmarks kept runnable, so a changed internal breaks the suite rather than a later
benchmark session: `make bench`'s micro-benchmarks each once, untimed (--benchmark-disable),
in a child pytest; server_bench.py, timer_bench.py and engine_targets.py on a tiny load."""

from __future__ import annotations

import json
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
                      "aio,raw,floor", "--scenarios", "sync_x1,batch", "--json", str(out))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    results = json.loads(out.read_text())["results"]["async"]
    for client in ("aio", "raw", "floor"):
        (run,) = results[client]["sync_x1"]
        assert run["rate"] > 0 and run["errors"] == 0
    (batch,) = results["aio"]["batch"]  # only our Producer sends batches
    assert batch["rate"] > 0 and batch["errors"] == 0


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


def test_many_procs_bench_on_a_tiny_load(tmp_path):
    proc = run_script("many_procs.py", "--dir", str(tmp_path), "--scale", "0.01", "--mode",
                      "async")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for row in ("ours           1 procs", "ours           4 procs", "lmdb           4 procs",
                "persist-queue  4 procs", "append-to-visible"):
        assert row in proc.stdout, proc.stdout
