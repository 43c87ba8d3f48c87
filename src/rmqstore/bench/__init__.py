"""`rmqstore bench`: the store's disk throughput on this machine, side by side with LMDB,
RocksDB, SQLite, a pure-Python mmap floor and the disk limit, run on the same data.

    from rmqstore.bench import BenchOptions, run
    report = run(BenchOptions(sizes=(100,), workloads=("put", "read")))
"""

from __future__ import annotations

from rich.console import Console

from .options import BenchOptions, Bound
from .results import Report, Row
from .runner import Runner
from .workloads import WORKLOADS

__all__ = ["WORKLOADS", "BenchOptions", "Bound", "Report", "Row", "run"]


def run(options: BenchOptions, console: Console | None = None) -> Report:
    """Run the benchmark; progress goes to console (stderr by default)."""
    return Runner(options, console).run()
