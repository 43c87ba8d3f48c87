"""The results as a rich table, and the sweep's recommendation."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from .results import OURS, Report
from .sweep import format_setting
from .workloads import format_size


def rate(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e3:
        return f"{x / 1e3:.1f}k"
    return f"{x:.1f}"


def results_table(report: Report) -> Table:
    table = Table(title="rmqstore bench", title_justify="left", show_lines=False,
                  caption="msgs/s per system; MB/s of body payload; latency of one sync call "
                          "(a put, a batch, or a window); ×: rmqstore's msgs/s over the peer's"
                          "; with --repeat: the median run, and each ratio's median and range "
                          "over the runs")
    for col, just in (("workload", "left"), ("size", "right"), ("system", "left"),
                      ("msgs/s", "right"), ("MB/s", "right"), ("p50 µs", "right"),
                      ("p99 µs", "right"), ("p999 µs", "right"), ("rmqstore ×", "left")):
        table.add_column(col, justify=just, no_wrap=col != "rmqstore ×")
    previous = None
    for r in report.rows:
        group = r.group
        if previous is not None and group != previous:
            table.add_section()
        previous = group
        name = r.workload + (f" x{r.writers}" if r.workload == "writers" else "")
        if r.batch > 1:
            name += f" ({r.batch})"
        lat = r.latency_us or {}
        style = "bold" if r.system == OURS else None
        if r.status != "ok":
            table.add_row(name, format_size(r.size), r.label, "[red]error", "", "", "", "",
                          r.note[:60], style=style)
            continue
        if r.workload == "recovery":
            table.add_row(name, format_size(r.size), r.label, f"{r.seconds:.3f} s",
                          f"{r.mb_per_s:.0f}", "", "", "", r.note, style=style)
            continue
        ratios = ", ".join(f"{k} {v:.2f}{_spread(r.ratio_runs.get(k))}"
                           for k, v in r.ratios.items())
        table.add_row(name, format_size(r.size), r.label, rate(r.msgs_per_s),
                      f"{r.mb_per_s:,.1f}", _us(lat.get("p50")), _us(lat.get("p99")),
                      _us(lat.get("p999")), ratios, style=style)
    return table


def _spread(runs: list[float] | None) -> str:
    """A ratio's range over the repetitions (--repeat), when there were several."""
    if not runs or len(runs) < 2:
        return ""
    return f" ({min(runs):.2f}-{max(runs):.2f})"


def _us(x: float | None) -> str:
    return "" if x is None else f"{x:,.0f}"


def recommendation_table(report: Report) -> Table:
    table = Table(title="recommendation (rmqstore alone, one knob at a time)",
                  title_justify="left")
    for col in ("knob", "workload", "size", "best setting", "msgs/s", "vs default"):
        table.add_column(col)
    for knob, by_workload in report.recommendation.items():
        for workload, rec in sorted(by_workload.items()):
            table.add_row(knob, workload, format_size(rec["size"]), format_setting(rec["best"]),
                          rate(rec["msgs_per_s"]),
                          f"{rec['gain_over_default']:.2f}× of {format_setting(rec['default'])}")
    return table


def print_report(report: Report, console: Console) -> None:
    console.print(results_table(report))
    for peer, why in report.skipped.items():
        console.print(f"[yellow]skipped {peer}: {why}")
    if report.recommendation:
        console.print(recommendation_table(report))
    m = report.machine
    console.print(f"{m['cpu_count']} CPUs, {m['memory_bytes'] / 2**30:.0f} GiB, "
                  f"{m['file_system']['type']} at {m['file_system']['mount_point']}, Python "
                  f"{m['python']}, native backend {m['native_backend']}; load at start "
                  f"{m['load_average'][0]}; {report.wall_s:.0f} s; data "
                  f"{'kept in ' + report.data_dir if report.kept else 'removed'}")
