"""`make bench`'s micro-benchmarks kept runnable: each one once, untimed
(--benchmark-disable), in a child pytest, so a changed internal breaks the suite, not a later
benchmark session. benches/engine_targets.py, server_bench.py and timer_bench.py are scripts
with their own tests."""

from __future__ import annotations

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
