"""What `--plot` draws, checked on its panel layout (no matplotlib needed): one throughput panel
per workload with the writer counts side by side, and latency panels whose bars are p99 with
p50 and p999 marked."""

from __future__ import annotations

from rmqstore.bench.plot import panels
from rmqstore.bench.results import Row


def row(workload, size, system, rate, writers=1, lat=None, status="ok", variant=""):
    return Row(workload, size, system, "peer", "sync" if lat else "async", writers=writers,
               variant=variant, msgs_per_s=rate, latency_us=lat, status=status)


def lat(p50, p99, p999):
    return {"p50": p50, "p99": p99, "p999": p999}


def test_throughput_panels_group_sizes_and_writer_counts():
    rows = [row("put", 100, "rmqstore", 10.0), row("put", 100, "lmdb", 5.0),
            row("put", 1024, "rmqstore", 8.0),
            row("read", 100, "rmqstore", 30.0, variant="get_bodies"),
            row("writers", 100, "rmqstore", 7.0, writers=1, lat=lat(1, 2, 3)),
            row("writers", 100, "rmqstore", 9.0, writers=4, lat=lat(2, 4, 8)),
            row("writers", 100, "disk", 6.0, writers=4, lat=lat(3, 5, 6)),
            row("recovery", 100, "rmqstore", 1.0),
            row("put", 4096, "sqlite", 0.0, status="error")]
    flows, _ = panels(rows)
    assert [p.title for p in flows] == ["put: messages/s", "read: messages/s",
                                        "writers: messages/s"]
    put, read, writers = flows
    assert put.groups == ["100 B", "1 KiB"]  # the failed 4 KiB row draws nothing
    assert put.series == {"rmqstore": {"100 B": 10.0, "1 KiB": 8.0}, "lmdb": {"100 B": 5.0}}
    assert read.series == {"rmqstore (get_bodies)": {"100 B": 30.0}}
    assert writers.groups == ["x1", "x4"]
    assert writers.series == {"rmqstore": {"x1": 7.0, "x4": 9.0}, "disk": {"x4": 6.0}}


def test_latency_panels_bar_p99_and_mark_p50_p999():
    rows = [row("put_sync", 100, "rmqstore", 5.0, lat=lat(100, 200, 400)),
            row("put_sync", 100, "disk", 4.0, lat=lat(150, 250, 900)),
            row("put", 100, "rmqstore", 9.0),
            row("writers", 100, "rmqstore", 7.0, writers=2, lat=lat(1, 2, 3)),
            row("writers", 1024, "rmqstore", 6.0, writers=2, lat=lat(4, 5, 6))]
    _, waits = panels(rows)
    assert [p.title.split(":")[0] for p in waits] == ["put_sync", "writers"]
    put_sync, writers = waits
    assert put_sync.series == {"rmqstore": {"100 B": 200}, "disk": {"100 B": 250}}
    assert put_sync.marks["disk"] == {"p50": {"100 B": 150}, "p999": {"100 B": 900}}
    # writers at two sizes: the group names both
    assert writers.groups == ["x2 100 B", "x2 1 KiB"]
    assert writers.marks["rmqstore"]["p999"] == {"x2 100 B": 3, "x2 1 KiB": 6}
