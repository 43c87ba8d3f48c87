"""The long chaos run of controller mode: many faults, in runs of --per-run faults each (a fresh
three-node cluster per run, in network namespaces when run as root), every run checked as the
suite's short matrix is (rmqstore.chaos), then the counts, the checkers' results and the RTO
distribution per fault kind summed over all runs.

    .venv/bin/python benches/chaos_long.py [--faults 1000] [--per-run 50] [--dir DIR]
        [--kinds kill-master,stop-master,...] [--json FILE] [--reports FILE] [--seed 7]
    .venv/bin/python benches/chaos_long.py --summarize FILE [FILE ...]

The master faults (SIGKILL, SIGSTOP, partition) are drawn three times as often as the others.
A run's history and report stay in DIR only when a check failed (else they are removed, and
its cluster's files with it; the logs stay too when a send failed during an etcd or controller
kill, which must fail none); the summary is printed and, with --json, written. --reports
appends every run's report as a line; --summarize sums such files (runs made side by side).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import signal
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from rmqstore.chaos import netns  # noqa: E402
from rmqstore.chaos.faults import KINDS, MASTER_FAULTS, NEEDS_NAMESPACES  # noqa: E402
from rmqstore.chaos.runner import ChaosConfig, run  # noqa: E402

WEIGHT_MASTER = 3
NO_FAILED_SENDS = frozenset({"kill-etcd-leader", "kill-controller"})


def schedule(kinds: list[str], n: int, rng: random.Random) -> list[str]:
    weights = [WEIGHT_MASTER if k in MASTER_FAULTS else 1 for k in kinds]
    return rng.choices(kinds, weights, k=n)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def distribution(values: list[float]) -> dict:
    return {"n": len(values), "p50": round(statistics.median(values), 3),
            "p90": round(percentile(values, 0.9), 3), "p99": round(percentile(values, 0.99), 3),
            "max": round(max(values), 3)}


def summarize(reports: list[dict]) -> dict:
    per_kind: dict[str, dict] = defaultdict(lambda: {
        "count": 0, "rto_s": [], "in_sync_again_s": [], "not_in_sync_in_30s": 0,
        "failed_sends": 0, "role_changes": 0, "skipped": 0})
    totals = {"runs": len(reports), "acked": 0, "failed": 0, "unknown": 0, "lost": 0,
              "duplicates": 0, "order_violations": 0, "stale_acks": 0, "epoch_violations": 0,
              "replicas_not_identical": 0, "identical_after_s_max": 0.0}
    for r in reports:
        for key in ("acked", "failed", "unknown", "duplicates"):
            totals[key] += r[key]
        for key in ("lost", "order_violations", "stale_acks", "epoch_violations"):
            totals[key] += len(r[key])
        totals["replicas_not_identical"] += r["replicas_identical"] is False
        if r.get("identical_after_s") is not None:
            totals["identical_after_s_max"] = max(totals["identical_after_s_max"],
                                                  r["identical_after_s"])
        for f in r["faults"]:
            k = per_kind[f["kind"] + (" with the active controller"
                                      if f.get("with_active_controller") else "")]
            if "skipped" in f:
                k["skipped"] += 1
                continue
            k["count"] += 1
            k["failed_sends"] += f["failed_sends"]
            k["role_changes"] += bool(f.get("role_changed"))
            if f.get("rto_s") is not None:
                k["rto_s"].append(f["rto_s"])
            if "in_sync_again_s" in f:
                if f["in_sync_again_s"] is None:
                    k["not_in_sync_in_30s"] += 1
                else:
                    k["in_sync_again_s"].append(f["in_sync_again_s"])
    kinds = {}
    for kind, k in sorted(per_kind.items()):
        for name, out in (("rto_s", "rto"), ("in_sync_again_s", "in_sync_again")):
            values = k.pop(name)
            if values:
                k[out] = distribution(values)
        kinds[kind] = k
    return {"totals": totals, "faults": kinds,
            "injected": sum(k["count"] for k in kinds.values())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults", type=int, default=1000)
    parser.add_argument("--per-run", type=int, default=50)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/rmqstore-chaos"))
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--json", type=Path)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reports", type=Path, help="append each run's report here (JSONL)")
    parser.add_argument("--summarize", type=Path, nargs="+",
                        help="only sum the reports in these files and print the summary")
    args = parser.parse_args()
    if args.summarize:
        reports = [json.loads(line) for path in args.summarize
                   for line in path.read_text().splitlines() if line.strip()]
        print(json.dumps(summarize(reports), indent=1))
        return 0
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _interrupt)  # the run's cluster and namespaces go too
    kinds = [k for k in args.kinds.split(",") if k]
    why = netns.available()
    if why is not None:
        print(f"no network namespaces ({why}): partitions and slow links left out",
              file=sys.stderr)
        kinds = [k for k in kinds if k not in NEEDS_NAMESPACES]
    rng = random.Random(args.seed)
    reports = []
    started = time.monotonic()
    left, run_no = args.faults, 0
    while left > 0:
        run_no += 1
        faults = schedule(kinds, min(args.per_run, left), rng)
        root = args.dir / f"run{run_no:03d}"
        shutil.rmtree(root, ignore_errors=True)
        try:
            report = run(ChaosConfig(root, faults, seed=rng.randrange(1 << 30)))
        except Exception as exc:  # noqa: BLE001 - a run that could not finish is reported
            print(f"run {run_no}: did not finish: {exc!r}", file=sys.stderr)
            left -= len(faults)
            continue
        data = json.loads((root / "report.json").read_text())
        reports.append(data)
        if args.reports is not None:
            with open(args.reports, "a") as out:
                out.write(json.dumps(data, separators=(",", ":")) + "\n")
        left -= len(faults)
        print(f"run {run_no}: {len(faults)} faults, ok={report.ok}, acked {report.acked}, "
              f"lost {len(report.lost)}, stale {len(report.stale_acks)}, "
              f"{time.monotonic() - started:.0f} s so far", flush=True)
        if report.ok and not _failed_without_failover(data):
            shutil.rmtree(root, ignore_errors=True)
        elif report.ok:  # the logs say why a send failed where none should: kept, stores not
            for store in root.glob("cluster/*/store"):
                shutil.rmtree(store, ignore_errors=True)
        if args.json is not None:  # so far: a long run stopped early still says something
            args.json.write_text(json.dumps(summarize(reports), indent=1) + "\n")
    summary = summarize(reports)
    summary["seconds"] = round(time.monotonic() - started)
    text = json.dumps(summary, indent=1)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")
    t = summary["totals"]
    return 0 if t["lost"] == t["stale_acks"] == t["order_violations"] == \
        t["epoch_violations"] == t["replicas_not_identical"] == 0 else 1


def _failed_without_failover(report: dict) -> bool:
    """Whether a send failed during a fault that must fail none (an etcd or controller kill)."""
    return any(f.get("failed_sends") for f in report["faults"] if f["kind"] in NO_FAILED_SENDS)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


if __name__ == "__main__":
    sys.exit(main())
