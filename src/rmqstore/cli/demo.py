"""`rmqstore demo` (what `make run` runs): write, read back, filter, query and resume."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ..config import StoreConfig
from ..store import open_store
from .output import Fields, Output

# The demo's files are small (RocketMQ's defaults reserve a 1 GiB segment and a 420 MB index);
# a store meant for RocketMQ keeps the defaults. A directory the demo did not make keeps its
# own sizes.
DEMO_SIZES = dict(commitlog_segment_bytes=64 << 20, index_slots=100_000, index_entries=400_000)
# Not serve's ./rmqstore-data: the two never share a directory by default.
DEMO_DATA = Path("rmqstore-demo")
BATCH = 128


@click.command()
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), default=DEMO_DATA,
              show_default=True, help="Store directory.")
@click.option("--count", type=click.IntRange(1), default=100_000, show_default=True,
              help="Messages to write.")
@click.option("--flush", type=click.Choice(["async", "sync"]), default="sync", show_default=True)
@click.option("--json", "json_mode", is_flag=True, help="Print the results as JSON.")
def demo(data: Path, count: int, flush: str, json_mode: bool) -> None:
    """Write messages, read them back, query by key, restart and resume a consumer."""
    sizes = {**DEMO_SIZES, **StoreConfig.sizes_on_disk(data)}
    with open_store(data, flush=flush, **sizes) as store:
        before = store.max_offset("demo", 0)
        t0 = time.perf_counter()
        for i in range(0, count, BATCH):
            n = min(BATCH, count - i)
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
        vip = [m.body for m in store.get("demo", 0, before, 64, tags="vip").messages]
        hits = store.query("demo", "vip-1")
        store.commit_offset("demo-group", "demo", 0, offset)
        lo, hi = store.min_offset("demo", 0), store.max_offset("demo", 0)
    with open_store(data, **sizes) as store:
        resumed = store.committed_offset("demo-group", "demo", 0)
    written = count + 1
    Output(json_mode).show(
        {"data": str(data), "flush": flush, "written": written, "writeSeconds": write_s,
         "read": read, "readSeconds": read_s, "vip": [b.decode() for b in vip],
         "keyHits": len(hits), "minOffset": lo, "maxOffset": hi, "resumedAt": resumed},
        Fields([("messages written", f"{written:,} in {write_s:.2f} s "
                 f"({written / write_s:,.0f}/s, batches of {BATCH})"),
                ("messages read back", f"{read:,} in {read_s:.2f} s ({read / read_s:,.0f}/s)"),
                ("tag filter 'vip' from this run", str(vip)),
                ("query by key 'vip-1'", f"{len(hits)} message(s), last id {hits[-1].msg_id}"),
                ("queue offsets", f"min {lo:,}, max {hi:,}")],
               title=f"rmqstore demo on {data} ({flush} flush)"),
        f"reopened: consumer group 'demo-group' resumes at offset {resumed:,}")
