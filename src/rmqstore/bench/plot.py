"""`--plot FILE.png`: one panel of messages/s per workload (bars per system, grouped by message
size; the writer counts side by side in one panel), then one latency panel per sync workload
(bar: p99, with p50 and p999 marked on it), in the systems' colours throughout (matplotlib,
from the `bench` extra)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .results import Report, Row
from .workloads import format_size

# Marker drawn on each p99 bar, per other percentile.
MARKS = {"p50": dict(marker="o", color="white", edgecolors="black", linewidths=0.8),
         "p999": dict(marker="_", color="black", linewidths=1.5)}


@dataclass
class Panel:
    """One chart: for each series (a system, or system and variant), a value per group."""
    title: str
    groups: list[str] = field(default_factory=list)
    series: dict[str, dict[str, float]] = field(default_factory=dict)
    # series -> percentile -> group -> value, drawn on the bars
    marks: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)

    def add(self, group: str, name: str, value: float) -> None:
        if group not in self.groups:
            self.groups.append(group)
        self.series.setdefault(name, {})[group] = value


def panels(rows: list[Row]) -> tuple[list[Panel], list[Panel]]:
    """(throughput panels, latency panels) of a report's rows, in the rows' order."""
    rows = [r for r in rows if r.status == "ok" and r.workload != "recovery"]
    writer_sizes = {r.size for r in rows if r.workload == "writers"}
    flows: dict[str, Panel] = {}
    waits: dict[str, Panel] = {}
    for r in rows:
        group = format_size(r.size)
        if r.workload == "writers":
            group = f"x{r.writers}" + (f" {group}" if len(writer_sizes) > 1 else "")
        flows.setdefault(r.workload, Panel(f"{r.workload}: messages/s")).add(
            group, r.label, r.msgs_per_s)
        if r.latency_us:
            lat = waits.setdefault(r.workload,
                                   Panel(f"{r.workload}: latency of one call, µs (bar p99)"))
            lat.add(group, r.label, r.latency_us["p99"])
            for p in MARKS:
                lat.marks.setdefault(r.label, {}).setdefault(p, {})[group] = r.latency_us[p]
    return list(flows.values()), list(waits.values())


def write_plot(report: Report, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    flows, waits = panels(report.rows)
    ncols = max(3, min(4, len(flows)))
    flow_rows, wait_rows = -(-len(flows) // ncols), -(-len(waits) // ncols)
    nrows = max(1, flow_rows + wait_rows)
    m = report.machine
    fig, axes = plt.subplots(nrows, ncols, figsize=(5 * ncols, 3.6 * nrows), squeeze=False,
                             layout="constrained")
    fig.suptitle(f"rmqstore bench: {m['cpu_count']} CPUs, {m['file_system']['type']}, "
                 f"Python {m['python']}")
    colors: dict[str, str] = {}
    for panel in flows + waits:  # one colour per system (and variant) in every panel
        for name in panel.series:
            colors.setdefault(name, f"C{len(colors) % 10}")
    flat = list(axes.flat)
    used = [*zip(flat, flows, strict=False),
            *zip(flat[flow_rows * ncols:], waits, strict=False)]
    for ax, panel in used:
        _draw(ax, panel, colors)
    for ax in set(flat) - {ax for ax, _ in used}:
        ax.axis("off")
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _draw(ax, panel: Panel, colors: dict[str, str]) -> None:
    width = 0.8 / max(1, len(panel.series))
    for k, (name, values) in enumerate(panel.series.items()):
        xs = [i + k * width for i, g in enumerate(panel.groups) if g in values]
        ax.bar(xs, [values[g] for g in panel.groups if g in values], width, label=name,
               color=colors[name])
        for p, style in MARKS.items():
            marked = panel.marks.get(name, {}).get(p, {})
            if marked:
                ax.scatter(xs, [marked[g] for g in panel.groups if g in values], s=16,
                           zorder=3, label=p if k == 0 else None, **style)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(panel.groups))], panel.groups)
    ax.set_yscale("log")
    ax.set_title(panel.title, fontsize=10)
    ax.legend(fontsize=7)
