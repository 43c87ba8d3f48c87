"""The `rmqstore` command: demo, inspect (serve and bench arrive with their issues)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .store import open_store


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level.")
def main(verbose: bool) -> None:
    """rmqstore: RocketMQ's store, embedded."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.command()
@click.option("--data", type=click.Path(path_type=Path), default=Path("rmqstore-data"),
              show_default=True, help="Store directory.")
@click.option("--count", default=100_000, show_default=True, help="Messages to write.")
@click.option("--flush", type=click.Choice(["async", "sync"]), default="sync", show_default=True)
def demo(data: Path, count: int, flush: str) -> None:
    """Write messages, read them back, query by key, restart and resume a consumer."""
    console = Console()
    with open_store(data, flush=flush) as store:
        before = store.max_offset("demo", 0)
        t0 = time.perf_counter()
        step = 128
        for i in range(0, count, step):
            n = min(step, count - i)
            store.put_batch("demo", [b"order %d" % (before + i + k) for k in range(n)],
                            queue_id=0, tags="order")
        store.put("demo", b"the special one", queue_id=0, tags="vip", keys=["vip-1"])
        write_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        offset, read = store.min_offset("demo", 0), 0
        while True:
            res = store.get("demo", 0, offset, 1024)
            if not res.messages:
                break
            read += len(res.messages)
            offset = res.next_offset
        read_s = time.perf_counter() - t0
        vip = store.get("demo", 0, before, 64, tags="vip")
        hits = store.query("demo", "vip-1")
        store.commit_offset("demo-group", "demo", 0, offset)
        table = Table(title=f"rmqstore demo on {data} ({flush} flush)")
        table.add_column("what")
        table.add_column("result", justify="right")
        table.add_row("messages written", f"{count + 1:,} in {write_s:.2f} s "
                      f"({(count + 1) / write_s:,.0f}/s, batches of {step})")
        table.add_row("messages read back", f"{read:,} in {read_s:.2f} s ({read / read_s:,.0f}/s)")
        table.add_row("tag filter 'vip' from this run", escape(str([m.body for m in vip.messages])))
        table.add_row("query by key 'vip-1'", f"{len(hits)} message(s), last id {hits[-1].msg_id}")
        table.add_row("queue offsets", f"min {store.min_offset('demo', 0):,}, "
                      f"max {store.max_offset('demo', 0):,}")
        console.print(table)
    with open_store(data) as store:
        console.print(f"reopened: consumer group 'demo-group' resumes at offset "
                      f"{store.committed_offset('demo-group', 'demo', 0):,}")


@main.command()
@click.argument("data", type=click.Path(exists=True, file_okay=False, path_type=Path))
def inspect(data: Path) -> None:
    """Summarize a store directory (rmqstore's or RocketMQ's): queues, offsets, sizes."""
    console = Console()
    with open_store(data, background=False) as store:
        table = Table(title=f"{data}: commit log {store.commitlog.min_offset:,}.."
                            f"{store.commitlog.max_offset:,}")
        for col in ("topic", "queue", "min offset", "max offset"):
            table.add_column(col)
        for topic, qid in store.topics_and_queues():
            table.add_row(topic, str(qid), f"{store.min_offset(topic, qid):,}",
                          f"{store.max_offset(topic, qid):,}")
        console.print(table)


if __name__ == "__main__":
    main()
