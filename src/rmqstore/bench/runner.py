"""Runs the plan: for each message size, each system gets one async-flush store (puts, then
reads of what it wrote) and one sync-flush store, with a progress bar per case."""

from __future__ import annotations

import logging
import random
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from . import engine_cases, machine, measure
from . import systems as registry
from .options import BenchOptions
from .results import OURS, Report, Row, compute_ratios, make_row, merge_runs
from .systems import System
from .workloads import WORKLOADS, Cursor, Workload, body_pool, plan

log = logging.getLogger(__name__)
OURS_ONLY = ("query", "recovery")
RANDOM_SAMPLES = 20_000


class Runner:
    def __init__(self, options: BenchOptions, console: Console | None = None) -> None:
        self.options = options
        self.console = console or Console(stderr=True)
        self.systems, self.skipped = registry.load(options.peers, options.segment_bytes)
        self.workloads = plan(options.sizes, options.workloads, options.batch, options.writers,
                              options.in_flight)
        self.rows: list[Row] = []
        self.rng = random.Random(options.seed)
        self.rep = 0  # the repetition running (--repeat); every row made is tagged with it

    def run(self) -> Report:
        t0 = time.perf_counter()
        parent = self.options.data_dir
        if parent is not None:
            parent.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix="rmqstore-bench-", dir=parent))
        report = Report(options=_jsonable(self.options), machine=machine.describe(root),
                        rows=self.rows, skipped=self.skipped, data_dir=str(root),
                        kept=self.options.keep)
        try:
            repeat = self.options.repeat
            cases = sum(len(ws) for *_, ws in self._groups(0))
            with self._progress() as progress:
                task = progress.add_task("bench", total=cases * repeat)
                for rep in range(repeat):
                    self.rep = rep
                    tag = f"-{rep}" if rep else ""  # --keep keeps every repetition's stores
                    for size, flush, system, ws in self._groups(rep):
                        self._run_group(root / f"{size}" / f"{system.name}-{flush}{tag}",
                                        size, system, ws, progress, task)
                if self.options.sweep:
                    from .sweep import run_sweep
                    report.sweep, report.recommendation = run_sweep(
                        self.options, root / "sweep", progress, self.console)
        finally:
            if not self.options.keep:
                shutil.rmtree(root, ignore_errors=True)
        compute_ratios(self.rows)
        if self.options.repeat > 1:
            self.rows[:] = merge_runs(self.rows)
        self.rows.sort(key=self._order)
        report.wall_s = time.perf_counter() - t0
        return report

    def _add(self, row: Row) -> None:
        row.rep = self.rep
        self.rows.append(row)

    def _order(self, r: Row) -> tuple:
        names = [s.name for s in self.systems]
        return (self.options.sizes.index(r.size), list(WORKLOADS).index(r.workload), r.writers,
                names.index(r.system) if r.system in names else len(names))

    def _progress(self) -> Progress:
        return Progress(TextColumn("[bold]{task.description:<34}"), BarColumn(),
                        MofNCompleteColumn(), TimeElapsedColumn(), console=self.console,
                        transient=False)

    def _groups(self, rep: int) -> list[tuple[int, str, System, list[Workload]]]:
        """(size, flush, system, workloads): one store each, in run order. Repetition `rep`
        starts the systems at the rep-th, so that no system always runs right after the same
        one (whose dirty pages the kernel may still be writing back)."""
        k = rep % len(self.systems) if self.systems else 0
        systems = self.systems[k:] + self.systems[:k]
        out = []
        for size in self.options.sizes:
            for flush in ("async", "sync"):
                ws = [w for w in self.workloads if w.size == size and w.flush == flush]
                for system in systems:
                    mine = [w for w in ws if system.name == OURS or w.name not in OURS_ONLY]
                    if mine:
                        out.append((size, flush, system, mine))
        return out

    def _run_group(self, path: Path, size: int, system: System, ws: list[Workload],
                   progress: Progress, task) -> None:
        pool = body_pool(size)
        cursor = Cursor()
        opened = False
        try:
            for w in ws:
                progress.update(task, description=f"{w.label} {system.name}")
                if w.name == "recovery":
                    self._recovery(path.parent / "recovery", w, system, pool)
                    progress.advance(task)
                    continue
                if not opened:
                    system.open(path, w.sync, size)
                    opened = True
                    measure.warm_up(system, cursor, pool, window=w.sync)
                try:
                    # Every async write case ends with its flush, timed apart: the next case
                    # then starts without this one's dirty pages, for which the kernel would
                    # otherwise throttle it (most of all a peer that never flushes by itself).
                    self._one(w, system, cursor, pool,
                              end_flush=w.name in ("put", "put_batch"))
                except Exception as exc:  # a failing peer must not end the run
                    log.warning("%s on %s failed", w.label, system.name, exc_info=True)
                    self._add(Row(w.name, w.size, system.name, system.role, w.flush, w.batch,
                                  w.writers, status="error", note=repr(exc)))
                progress.advance(task)
        finally:
            if opened:
                system.close()
            if not self.options.keep:
                shutil.rmtree(path, ignore_errors=True)

    def _one(self, w: Workload, system: System, cursor: Cursor, pool: list[bytes],
             end_flush: bool) -> None:
        bound = self.options.bound
        if w.name in ("put", "put_sync"):
            n, s, lat = measure.run_singles(system, cursor, pool, bound, w.sync)
        elif w.name in ("put_batch", "put_batch_sync", "in_flight"):
            n, s, lat = measure.run_batches(system, cursor, pool, bound, w.batch,
                                            window=w.name == "in_flight")
        elif w.name == "writers":
            n, s, lat = measure.run_writers(system, cursor, pool, bound, w.writers)
        elif w.name in ("read", "random_read"):
            return self._reads(w, system, cursor, pool)
        elif w.name == "query":
            return self._query(w, system, pool)
        else:
            raise ValueError(f"unknown workload {w.name}")
        row = make_row(w, system, n, s, latency_us=measure.percentiles(lat) if w.sync else None)
        if end_flush:  # reported apart, as the research notes do
            row.end_flush_s = round(measure.timed(system.finish)[1], 4)
        self._add(row)

    def _ensure_data(self, system: System, cursor: Cursor, pool: list[bytes]) -> None:
        """Reads need data: write some (untimed) when no put workload ran in this store."""
        if cursor.sent == 0:
            measure.run_batches(system, cursor, pool, self.options.bound, self.options.batch)
            system.finish()

    def _reads(self, w: Workload, system: System, cursor: Cursor, pool: list[bytes]) -> None:
        self._ensure_data(system, cursor, pool)
        bound = self.options.bound
        limit = bound.room(0)
        if w.name == "read":
            variants = ["get", "get_bodies"] if system.name == OURS else [""]
            for variant in variants:
                if variant:
                    system.read_variant = variant
                (n, nbytes), s = measure.timed(system.read_in_order, cursor.written(),
                                               bound.deadline(), limit)
                self._add(make_row(w, system, n, s, nbytes, variant=variant))
            return
        written = cursor.written()
        samples = []
        for _ in range(min(RANDOM_SAMPLES, limit)):
            q = self.rng.randrange(len(written))
            if written[q]:
                samples.append((q, self.rng.randrange(written[q])))
        handles = system.random_handles(samples, self.rng)
        deadline, done, busy, nbytes = bound.deadline(), 0, 0.0, 0
        while done < limit and time.perf_counter() < deadline:
            chunk = handles[:min(1024, limit - done)] if handles else []
            if not chunk:
                break
            got, s = measure.timed(system.read_random, chunk)
            nbytes += got
            busy += s
            done += len(chunk)
            handles = handles[len(chunk):] or system.random_handles(samples, self.rng)
        self._add(make_row(w, system, done, busy, nbytes))

    def _query(self, w: Workload, system: System, pool: list[bytes]) -> None:
        store = system.store
        keyed = engine_cases.fill_keys(store, pool, self.options.bound)
        n, s, nbytes = engine_cases.run_query(store, keyed, self.options.bound, self.rng)
        self._add(make_row(w, system, n, s, nbytes,
                           note=f"random keys among {keyed:,} keyed messages"))

    def _recovery(self, path: Path, w: Workload, system: System, pool: list[bytes]) -> None:
        config = dict(system.config)
        try:
            n = engine_cases.build_store(path, pool, self.options.recovery_bytes, **config)
            for variant, crashed in (("clean", False), ("crash", True)):
                s, log_bytes = engine_cases.time_open(path, crashed, **config)
                self._add(make_row(
                    w, system, n, s, variant=variant,
                    note=f"open after {'a crash (abort file left)' if crashed else 'close'}: "
                         f"{log_bytes / 1e6:.0f} MB of commit log"))
        finally:
            if not self.options.keep:
                shutil.rmtree(path, ignore_errors=True)


def _jsonable(options: BenchOptions) -> dict:
    out = asdict(options)
    out["data_dir"] = str(options.data_dir) if options.data_dir else None
    return out
