"""`--plot FILE.png`: throughput per message size per system for each workload, and the
latency percentiles of the sync workloads (matplotlib, from the `bench` extra)."""

from __future__ import annotations

from pathlib import Path

from .results import Report, Row
from .workloads import format_size

PERCENTILES = ("p50", "p99", "p999")


def write_plot(report: Report, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in report.rows if r.status == "ok" and r.workload != "recovery"]
    panels = _ordered({_panel(r) for r in rows}, rows)
    lat_panels = _ordered({_panel(r) for r in rows if r.latency_us}, rows)
    ncols = max(3, min(4, len(panels)))
    nrows = -(-len(panels) // ncols) + -(-len(lat_panels) // ncols)
    fig, axes = plt.subplots(max(1, nrows), ncols, figsize=(5 * ncols, 3.6 * max(1, nrows)),
                             squeeze=False)
    flat = list(axes.flat)
    colors: dict[str, str] = {}
    for r in rows:  # one colour per system (and variant) in every panel
        colors.setdefault(r.label, f"C{len(colors) % 10}")
    for ax, panel in zip(flat, panels):
        _throughput(ax, panel, [r for r in rows if _panel(r) == panel], colors)
    start = -(-len(panels) // ncols) * ncols
    for ax, panel in zip(flat[start:], lat_panels):
        _latency(ax, panel, [r for r in rows if _panel(r) == panel and r.latency_us])
    for ax in flat[len(panels):start] + flat[start + len(lat_panels):]:
        ax.axis("off")
    m = report.machine
    fig.suptitle(f"rmqstore bench: {m['cpu_count']} CPUs, {m['file_system']['type']}, "
                 f"Python {m['python']}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _panel(r: Row) -> str:
    return r.workload + (f" x{r.writers}" if r.workload == "writers" else "")


def _ordered(names: set[str], rows: list[Row]) -> list[str]:
    seen: list[str] = []
    for r in rows:
        if _panel(r) in names and _panel(r) not in seen:
            seen.append(_panel(r))
    return seen


def _bars(ax, groups: list[str], series: dict[str, dict[str, float]],
          colors: dict[str, str] | None = None) -> None:
    width = 0.8 / max(1, len(series))
    for k, (name, values) in enumerate(series.items()):
        xs = [i + k * width for i, g in enumerate(groups) if g in values]
        ax.bar(xs, [values[g] for g in groups if g in values], width, label=name,
               color=(colors or {}).get(name))
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(groups))], groups)


def _throughput(ax, panel: str, rows: list[Row], colors: dict[str, str]) -> None:
    sizes = [format_size(s) for s in sorted({r.size for r in rows})]
    series: dict[str, dict[str, float]] = {}
    for r in rows:
        series.setdefault(r.label, {})[format_size(r.size)] = r.msgs_per_s
    _bars(ax, sizes, series, colors)
    ax.set_yscale("log")
    ax.set_title(f"{panel}: messages/s")
    ax.legend(fontsize=7)


def _latency(ax, panel: str, rows: list[Row]) -> None:
    labels = [f"{r.label}\n{format_size(r.size)}" for r in rows]
    series = {p: {lab: r.latency_us[p] for lab, r in zip(labels, rows)} for p in PERCENTILES}
    _bars(ax, labels, series)
    ax.set_yscale("log")
    ax.set_title(f"{panel}: latency of one call, µs")
    ax.tick_params(axis="x", labelsize=6)
    ax.legend(fontsize=7)
