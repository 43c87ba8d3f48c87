"""`rmqstore inspect DIR`: what a store holds, read without adding anything to it."""

from __future__ import annotations

from pathlib import Path

import click

from ..config import StoreConfig
from ..errors import StoreError
from ..filenames import checkpoint_file, commitlog_dir, lock_file
from ..recovery import scan
from ..set_aside import set_aside_total
from ..store import open_store
from ..topic_validator import SET_ASIDE_TOPIC
from .output import Column, Output, Table

COLUMNS = (Column("topic", "Topic"), Column("queueId", "QID", True),
           Column("minOffset", "Min Offset", True), Column("maxOffset", "Max Offset", True))


@click.command()
@click.argument("data", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "json_mode", is_flag=True, help="Print the summary as JSON.")
def inspect(data: Path, json_mode: bool) -> None:
    """Summarize a store directory (rmqstore's or RocketMQ's): queues, offsets, sizes, the
    corrupt ranges of the whole commit log (each record checked, CRC too) and the records
    its services set aside."""
    if not commitlog_dir(data).is_dir() and not checkpoint_file(data).is_file():
        raise click.ClickException(f"{data} is not a store: it has no commitlog directory "
                                   f"and no checkpoint file")
    had_lock = lock_file(data).exists()
    try:
        store = open_store(data, background=False, **StoreConfig.sizes_on_disk(data))
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    with store:
        rows = [{"topic": t, "queueId": q, "minOffset": store.min_offset(t, q),
                 "maxOffset": store.max_offset(t, q)} for t, q in store.topics_and_queues()]
        _, corrupt = scan(store.commitlog, store.consume_queues, 0, True)
        set_aside = set_aside_total(store)
        lo, hi = store.commitlog.min_offset, store.commitlog.max_offset
    if not had_lock:  # a copied store, say: it is left as it was found
        lock_file(data).unlink(missing_ok=True)
    Output(json_mode).show(
        {"commitLogMinOffset": lo, "commitLogMaxOffset": hi, "queues": rows,
         "corrupt": [{"offset": o, "length": n} for o, n in corrupt], "setAside": set_aside},
        Table(COLUMNS, rows, title=f"{data}: commit log {lo:,}..{hi:,}"),
        f"corrupt ranges kept behind in the commit log: {len(corrupt)}"
        f" ({sum(n for _, n in corrupt):,} bytes)",
        *(f"  offset {offset:,}: {length:,} bytes skipped" for offset, length in corrupt),
        f"records set aside by the services: {set_aside:,} (topic {SET_ASIDE_TOPIC}, queue 0)")
