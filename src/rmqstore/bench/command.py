"""What `rmqstore bench` does with its command-line options (cli.py only declares them)."""

from __future__ import annotations

import json
import logging
import shutil
import sys
import tempfile
from pathlib import Path

import click
from rich.console import Console

from ..config import StoreConfig
from .machine import describe
from .options import BenchOptions, Bound
from .report import print_report
from .runner import Runner
from .scale import Scale, scale_table
from .systems import PEERS
from .workloads import WORKLOADS

log = logging.getLogger(__name__)
MiB = 1 << 20
SCALE = "scale"  # apart from WORKLOADS: one store's queues, not systems side by side
SCALE_PUTS = 200_000  # round-robin puts per round unless --count
SCALE_BOUND_S = 300.0  # any one phase of it at most unless --duration
WIDE = 160  # table width when stdout is a file or a pipe


def split(value: str | None) -> tuple[str, ...]:
    return tuple(x.strip() for x in (value or "").split(",") if x.strip())


def bench_command(size: tuple[int, ...], workloads: str | None, peers: str | None,
                  duration: float | None, count: int | None, batch: int, writers: str,
                  in_flight: int, recovery_mb: int, segment_mb: int, sweep: bool, repeat: int,
                  json_path: Path | None, plot_path: Path | None, data_dir: Path | None,
                  keep: bool, seed: int, queues: int) -> None:
    chosen = split(workloads)
    out = Console() if sys.stdout.isatty() else Console(width=WIDE)
    if SCALE in chosen:
        if len(chosen) > 1 or peers or sweep:
            raise click.BadParameter("scale runs alone (no other workload, peers or sweep)",
                                     param_hint="--workloads")
        scale_command(out, queues, count, duration, repeat, segment_mb * MiB, json_path,
                      data_dir, keep)
        return
    bad = [w for w in chosen if w not in WORKLOADS and w != SCALE]
    if bad:
        raise click.BadParameter(f"unknown {', '.join(bad)}; choose from {', '.join(WORKLOADS)}"
                                 f" or {SCALE}", param_hint="--workloads")
    peer_names: tuple[str, ...] | None = split(peers) or None
    if peer_names == ("none",):
        peer_names = ()  # rmqstore alone
    elif peer_names and any(p not in PEERS for p in peer_names):
        raise click.BadParameter(f"choose from {', '.join(PEERS)} or none", param_hint="--peers")
    if count is not None and count < 1 or duration is not None and duration <= 0:
        raise click.BadParameter("--count and --duration must be positive")
    limit = StoreConfig.max_message_size
    if any(s > limit for s in size):
        raise click.BadParameter(f"over the store's max_message_size ({limit} bytes)",
                                 param_hint="--size")
    try:
        threads = tuple(int(w) for w in split(writers))
    except ValueError:
        threads = ()
    if not threads or min(threads) < 1:
        raise click.BadParameter(f"{writers!r}: comma-separated thread counts of at least 1",
                                 param_hint="--writers")
    options = BenchOptions(
        sizes=tuple(size) or BenchOptions.sizes, workloads=chosen, peers=peer_names,
        bound=Bound.from_cli(duration, count), batch=batch,
        writers=threads, in_flight=in_flight,
        recovery_bytes=recovery_mb * MiB, segment_bytes=segment_mb * MiB, sweep=sweep,
        repeat=repeat, data_dir=data_dir, keep=keep, seed=seed)
    runner = Runner(options, Console(stderr=True))
    report = runner.run()
    print_report(report, out)
    if json_path is not None:
        report.write_json(json_path)
        out.print(f"wrote {json_path}")
    if plot_path is not None:
        try:
            from .plot import write_plot
            write_plot(report, plot_path)
            out.print(f"wrote {plot_path}")
        except ImportError:
            out.print("[yellow]--plot needs matplotlib: pip install 'rmqstore[bench]'")


def scale_command(out: Console, queues: int, count: int | None, duration: float | None,
                  repeat: int, segment_bytes: int, json_path: Path | None,
                  data_dir: Path | None, keep: bool) -> None:
    """The scale workload (bench/scale.py) in a temporary directory under data_dir."""
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="rmqstore-scale-", dir=data_dir))
    machine = describe(root)
    try:
        result = Scale(root, queues, count or SCALE_PUTS, max(3, repeat),
                       duration or SCALE_BOUND_S, commitlog_segment_bytes=segment_bytes).run()
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    out.print(scale_table(result))
    kept = f"kept in {root}" if keep else "removed"
    out.print(f"{machine['cpu_count']} CPUs, load at start {machine['load_average'][0]}, "
              f"{machine['file_system']['type']}; data {kept}")
    if json_path is not None:
        json_path.write_text(json.dumps({"workload": SCALE, "machine": machine,
                                         "scale": result.to_json()}, indent=2) + "\n")
        out.print(f"wrote {json_path}")
