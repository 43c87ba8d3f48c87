"""The kill rounds of tests/replication/test_loss.py, many more of them: a master under four
producers SIGKILLed at random points (every other round with its slave hung and killed too),
SYNC_MASTER and ASYNC_MASTER in turn.

    .venv/bin/python benches/ha_kill_rounds.py [--rounds N] [--roles ROLE ...] [--per-run N]
                                               [--json FILE]

Reported per role: the rounds run, the sends acknowledged SEND_OK, and how many of them the
slave did not hold when the master died (SYNC_MASTER: must be 0, the test fails otherwise;
ASYNC_MASTER: the tail it had not sent yet). A role's rounds go in pytest runs of its test of
at most --per-run rounds each, each on a fresh pair and bounded by TIMEOUT_PER_ROUND_S a round.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_PER_ROUND_S = 30
log = logging.getLogger(__name__)
TESTS = {
    "SYNC_MASTER": ("test_every_acknowledged_send_is_on_the_slave_when_the_master_dies",
                    "RMQ_HA_KILL_ROUNDS"),
    "ASYNC_MASTER": ("test_an_async_master_loses_at_most_the_tail_it_had_not_sent",
                     "RMQ_HA_ASYNC_KILL_ROUNDS"),
}
SUMMARY = re.compile(r"(\w+): (\d+) SIGKILL rounds of the master, (\d+) acknowledged sends, "
                     r"(\d+) not on the slave when it died \(seed (\d+)")


def run_role(role: str, rounds: int) -> dict:
    """One pytest run of ``rounds`` rounds on a fresh pair."""
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
            "seeds": [int(seed)]}


def run_rounds(role: str, rounds: int, per_run: int) -> dict:
    """``rounds`` rounds in runs of at most ``per_run``: the test keeps every acknowledged
    send in memory and checks each on the slave at its end, so a run stays bounded."""
    total = {"rounds": 0, "acknowledged": 0, "missing": 0, "seeds": []}
    while total["rounds"] < rounds:
        r = run_role(role, min(per_run, rounds - total["rounds"]))
        for key in total:
            total[key] += r[key]
        log.info("%s: %d of %d rounds, %d SEND_OK, %d not on the slave", role,
                 total["rounds"], rounds, total["acknowledged"], total["missing"])
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=50, help="SIGKILL rounds per role")
    parser.add_argument("--roles", nargs="+", choices=list(TESTS), default=list(TESTS),
                        help="the roles to kill (default: both)")
    parser.add_argument("--per-run", type=int, default=50,
                        help="rounds per run on a fresh pair (each run's sends are held in "
                             "memory for the check at its end)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    results = {role: run_rounds(role, args.rounds, args.per_run) for role in args.roles}
    for role, r in results.items():
        seeds = " ".join(map(str, r["seeds"]))
        print(f"{role:12s} {r['rounds']:4d} rounds  {r['acknowledged']:7d} SEND_OK  "
              f"{r['missing']:6d} not on the slave when the master died  (seeds {seeds})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
