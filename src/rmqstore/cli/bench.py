"""`rmqstore bench`: the engine beside its peers on this disk (the work is in rmqstore.bench)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--size", type=click.IntRange(1), multiple=True,
              help="Message body size in bytes; repeat for several. [default: 100, 1024, 4096]")
@click.option("--workloads", metavar="A,B", help="Comma-separated subset of: put, put_batch, "
              "read, random_read, query, recovery, put_sync, put_batch_sync, writers, in_flight"
              "; or scale alone (what --queues queues cost one store, beside 4).")
@click.option("--queues", type=click.IntRange(4), default=10_000, show_default=True,
              help="scale: queues in the store (topics of 4 queues).")
@click.option("--peers", metavar="A,B", help="Subset of lmdb, rocksdb, sqlite, floor, disk, or "
              "'none'. [default: all that are installed]")
@click.option("--duration", type=float, help="Seconds per case. [default: 0.5, or 60 with --count]")
@click.option("--count", type=int, help="Messages (or lookups) per case at most.")
@click.option("--batch", type=click.IntRange(1), default=128, show_default=True)
@click.option("--writers", default="1,2,4,8", show_default=True, help="Thread counts.")
@click.option("--in-flight", type=click.IntRange(1), default=1024, show_default=True,
              help="put_async calls pending before waiting.")
@click.option("--recovery-mb", type=click.IntRange(1), default=64, show_default=True)
@click.option("--segment-mb", type=click.IntRange(1), default=128, show_default=True,
              help="commitlog_segment_bytes of the bench stores, in MiB.")
@click.option("--sweep", is_flag=True, help="Also sweep the tuning knobs; print a recommendation.")
@click.option("--repeat", type=click.IntRange(1), default=1, show_default=True,
              help="Run every case this many times, the systems' order rotated each time; "
                   "report the median run and each ratio's median and range.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dir", "data_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the temporary data directory goes. [default: the system's temp]")
@click.option("--keep", is_flag=True, help="Keep the data directory.")
@click.option("--seed", type=int, default=7, show_default=True)
def bench(**options) -> None:
    """Measure throughput and latency on this disk beside LMDB, RocksDB, SQLite, a raw mmap
    floor and the disk limit, on the same data; optionally sweep the tuning knobs."""
    from ..bench.command import bench_command  # matplotlib and peers load only here
    bench_command(**options)
