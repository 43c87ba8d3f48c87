"""The kill rounds of tests/replication/test_loss.py, many more of them: a master under four
producers SIGKILLed at random points (every other round with its slave hung and killed too),
SYNC_MASTER and ASYNC_MASTER in turn.

    .venv/bin/python benches/ha_kill_rounds.py [--rounds N] [--json FILE]

Reported per role: the rounds run, the sends acknowledged SEND_OK, and how many of them the
slave did not hold when the master died (SYNC_MASTER: must be 0, the test fails otherwise;
ASYNC_MASTER: the tail it had not sent yet). Each role is one pytest run of its test, bounded
by TIMEOUT_PER_ROUND_S a round.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_PER_ROUND_S = 30
TESTS = {
    "SYNC_MASTER": ("test_every_acknowledged_send_is_on_the_slave_when_the_master_dies",
                    "RMQ_HA_KILL_ROUNDS"),
    "ASYNC_MASTER": ("test_an_async_master_loses_at_most_the_tail_it_had_not_sent",
                     "RMQ_HA_ASYNC_KILL_ROUNDS"),
}
SUMMARY = re.compile(r"(\w+): (\d+) SIGKILL rounds of the master, (\d+) acknowledged sends, "
                     r"(\d+) not on the slave when it died \(seed (\d+)")


def run_role(role: str, rounds: int) -> dict:
    test, env_name = TESTS[role]
    env = {**os.environ, env_name: str(rounds)}
    bound_s = 60 + TIMEOUT_PER_ROUND_S * rounds
    proc = subprocess.run(  # the suite's per-test timeout (300 s) would end long runs
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
         "--timeout", str(bound_s), f"tests/replication/test_loss.py::{test}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=bound_s + 30)
    found = SUMMARY.search(proc.stdout)
    if proc.returncode != 0 or found is None:
        sys.stdout.write(proc.stdout[-6000:])
        raise SystemExit(f"{role}: the kill rounds failed (exit {proc.returncode})")
    _, n, acked, missing, seed = found.groups()
    return {"rounds": int(n), "acknowledged": int(acked), "missing": int(missing),
            "seed": int(seed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=50, help="SIGKILL rounds per role")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = {role: run_role(role, args.rounds) for role in TESTS}
    for role, r in results.items():
        print(f"{role:12s} {r['rounds']:4d} rounds  {r['acknowledged']:7d} SEND_OK  "
              f"{r['missing']:6d} not on the slave when the master died  (seed {r['seed']})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
