"""`--sweep`: rmqstore alone, one knob at a time from the bench's base configuration, on the
write workloads at the first message size (compression: at the largest, at least 4 KiB); then
the best value per knob and workload."""

from __future__ import annotations

import shutil
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from . import measure
from .options import BenchOptions
from .ours import RmqStore
from .workloads import Cursor, body_pool

MiB = 1 << 20
# knob -> candidate StoreConfig overrides (the first one of each is the engine's default)
KNOBS: dict[str, list[dict]] = {
    "commitlog_segment_bytes": [{"commitlog_segment_bytes": v}
                                for v in (1024 * MiB, 16 * MiB, 128 * MiB, 256 * MiB)],
    "flush_interval_ms/flush_least_pages": [
        {"flush_interval_ms": 500, "flush_least_pages": 4},
        {"flush_interval_ms": 50, "flush_least_pages": 0},
        {"flush_interval_ms": 200, "flush_least_pages": 16},
        {"flush_interval_ms": 1000, "flush_least_pages": 64}],
    # None: the engine's choice (16 MiB ahead of the writer with async flush, off with sync)
    "warm_window_bytes": [{"warm_window_bytes": v} for v in (None, 0, MiB // 2, 4 * MiB, 64 * MiB)],
    # madvise of the segment being written
    "commitlog_advice": [{"commitlog_advice": v}
                         for v in ("normal", "hugepage", "sequential", "random")],
    # batches up to this many bytes are pwritten from a buffer; 0: through the mapping
    "batch_write_buffer_bytes": [{"batch_write_buffer_bytes": v} for v in (8 * MiB, 0)],
    # compression applies to bodies of compress_over_bytes (4096) and more; off by default
    "compression": [{"compression": None}, {"compression": "zlib"}, {"compression": "lz4"}],
}
# knob -> workloads it can change: (name, sync flush?)
AFFECTS = {
    "commitlog_segment_bytes": [("put", False), ("put_batch", False), ("put_batch_sync", True)],
    "flush_interval_ms/flush_least_pages": [("put", False), ("put_batch", False)],
    "warm_window_bytes": [("put", False), ("put_batch", False), ("put_batch_sync", True)],
    "commitlog_advice": [("put", False), ("put_sync", True)],
    "batch_write_buffer_bytes": [("put_batch", False), ("put_batch_sync", True)],
    "compression": [("put", False)],
}
COMPRESSION_SIZE = 4096  # the compression knob runs at the largest size, at least this


def run_sweep(options: BenchOptions, root: Path, progress: Progress, console: Console
              ) -> tuple[list[dict], dict[str, dict]]:
    pools = {options.sizes[0]: body_pool(options.sizes[0])}
    big = max(max(options.sizes), COMPRESSION_SIZE)
    cells = [(k, cfg, wl) for k, cfgs in KNOBS.items() for cfg in cfgs for wl in AFFECTS[k]]
    task = progress.add_task("sweep", total=len(cells))
    results: list[dict] = []
    for i, (knob, cfg, (workload, sync)) in enumerate(cells):
        size = big if knob == "compression" else options.sizes[0]
        pool = pools.get(size) or pools.setdefault(size, body_pool(size))
        progress.update(task, description=f"sweep {_fmt(cfg)} {workload}")
        overrides = {"commitlog_segment_bytes": options.segment_bytes, **cfg}
        seg = overrides.pop("commitlog_segment_bytes")
        system = RmqStore(seg, **overrides)
        path = root / f"cell{i}"
        system.open(path, sync, size)
        try:
            cursor = Cursor()
            measure.warm_up(system, cursor, pool, window=False)
            if workload in ("put", "put_sync"):
                n, s, _ = measure.run_singles(system, cursor, pool, options.bound, sync)
            else:
                n, s, _ = measure.run_batches(system, cursor, pool, options.bound, options.batch)
            if not sync:
                s += measure.timed(system.finish)[1]  # async: a knob may only move the cost
        finally:
            system.close()
            if not options.keep:
                shutil.rmtree(path, ignore_errors=True)
        results.append({"knob": knob, "setting": cfg, "workload": workload, "size": size,
                        "flush": "sync" if sync else "async", "messages": n,
                        "seconds": round(s, 6), "msgs_per_s": round(n / s, 1) if s else 0.0})
        progress.advance(task)
    return results, recommend(results)


def recommend(results: list[dict]) -> dict[str, dict]:
    """knob -> {workload: best setting and its gain over the default (the first candidate)}."""
    # every knob is swept at one size; the recommendation names it
    out: dict[str, dict] = {}
    for knob in KNOBS:
        for workload in {r["workload"] for r in results if r["knob"] == knob}:
            cells = [r for r in results if r["knob"] == knob and r["workload"] == workload]
            best = max(cells, key=lambda r: r["msgs_per_s"])
            default = cells[0]
            gain = best["msgs_per_s"] / default["msgs_per_s"] if default["msgs_per_s"] else 0
            out.setdefault(knob, {})[workload] = {
                "best": best["setting"], "msgs_per_s": best["msgs_per_s"],
                "size": best["size"], "default": default["setting"],
                "default_msgs_per_s": default["msgs_per_s"],
                "gain_over_default": round(gain, 3)}
    return out


def _fmt(cfg: dict) -> str:
    return " ".join(f"{k}={_num(v)}" for k, v in cfg.items())


def _num(v) -> str:
    if isinstance(v, bool) or not isinstance(v, int) or v < MiB:
        return str(v)
    return f"{v // MiB}MiB"


format_setting = _fmt
