"""The long version of the suite's SIGKILL test of a shared store (tests/shared/
test_processes.py): writers and readers killed at random under load, many rounds, then the
store closed by its last process or recovered after every process was killed.

    .venv/bin/python benches/many_procs_soak.py [--rounds N] [--runs N]

A failing run prints its seed (RMQ_MP_SEED replays it); 60 rounds of both endings took 86 s
here on a loaded machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    env = {**os.environ, "RMQ_MP_KILL_ROUNDS": str(args.rounds)}
    for run in range(args.runs):
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               "--timeout", str(30 + 3 * args.rounds),
                               "tests/shared/test_processes.py", "-k", "sigkill"],
                              cwd=ROOT, env=env)
        print(f"run {run + 1}/{args.runs}: {'ok' if proc.returncode == 0 else 'FAILED'}",
              flush=True)
        if proc.returncode:
            sys.exit(1)


if __name__ == "__main__":
    main()
