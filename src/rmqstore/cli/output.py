"""How `rmqstore` commands print: a table on a terminal, plain aligned columns when piped (as
mqadmin prints them: ``#``-prefixed headers, for grep, awk and cut), JSON with ``--json``.

A command builds its data once and hands it over with the views of it:

    out.show({"queues": rows, "consumeTps": tps},
             Table(COLUMNS, rows), f"Consume TPS: {tps:.2f}")

With ``--json`` only the data is printed (one JSON document); otherwise only the views.
Progress of a command that walks a cluster goes to stderr, on a terminal only.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TextIO

import click
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table as RichTable

PLAIN_GAP = "  "
FIELD_WIDTH = 32  # mqadmin's "%-32s: %s"


@dataclass(frozen=True, slots=True)
class Column:
    key: str  # the field of each row (and its JSON name)
    header: str  # the title mqadmin prints
    right: bool = False  # numbers


@dataclass(frozen=True, slots=True)
class Table:
    columns: Sequence[Column]
    rows: Sequence[dict]
    title: str | None = None


@dataclass(frozen=True, slots=True)
class Fields:
    """A key: value block (one message, one broker's status)."""

    pairs: Sequence[tuple[str, object]]
    title: str | None = None
    width: int = FIELD_WIDTH
    sep: str = ": "  # getBrokerConfig: "=  "


View = Table | Fields | str


@dataclass
class Output:
    json_mode: bool = False
    stream: TextIO | None = None
    _console: Console = field(init=False)

    def __post_init__(self) -> None:
        self._console = Console(file=self.stream or sys.stdout, highlight=False, soft_wrap=True)

    @property
    def rich(self) -> bool:
        """A terminal: tables with borders; else plain columns."""
        return self._console.is_terminal

    def show(self, data: object, *views: View) -> None:
        if self.json_mode:
            click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str),
                       file=self.stream)
            return
        for view in views:
            if isinstance(view, Table):
                self._table(view)
            elif isinstance(view, Fields):
                self._fields(view)
            else:
                self._line(view)

    @contextlib.contextmanager
    def progress(self, total: int, what: str) -> Iterator[Callable[[], None]]:
        """A bar on stderr while a command walks ``total`` items, when stderr is a terminal;
        yields the function that counts one done."""
        err = Console(stderr=True)
        if not err.is_terminal or total <= 1:
            yield lambda: None
            return
        with Progress(TextColumn(escape(what)), BarColumn(), MofNCompleteColumn(),
                      console=err, transient=True) as bar:
            task = bar.add_task(what, total=total)
            yield lambda: bar.advance(task)

    def _line(self, text: str) -> None:
        if self.rich:
            self._console.print(escape(text))
        else:
            click.echo(text, file=self.stream)

    def _table(self, t: Table) -> None:
        cells = [[_text(row.get(c.key)) for c in t.columns] for row in t.rows]
        if self.rich:
            table = RichTable(title=escape(t.title) if t.title else None, box=box.SIMPLE_HEAD)
            for c in t.columns:
                table.add_column(escape(c.header), justify="right" if c.right else "left")
            for row in cells:
                table.add_row(*(escape(v) for v in row))
            self._console.print(table)
            return
        if t.title:
            click.echo(t.title, file=self.stream)
        headers = ["#" + c.header for c in t.columns]
        widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
        for row in [headers, *cells]:
            click.echo(PLAIN_GAP.join(v.ljust(w) for v, w in zip(row, widths, strict=True))
                       .rstrip(), file=self.stream)

    def _fields(self, f: Fields) -> None:
        if self.rich:
            table = RichTable(title=escape(f.title) if f.title else None, show_header=False,
                              box=box.SIMPLE)
            table.add_column(style="bold")
            table.add_column()
            for key, value in f.pairs:
                table.add_row(escape(key), escape(_text(value)))
            self._console.print(table)
            return
        if f.title:
            click.echo(f.title, file=self.stream)
        for key, value in f.pairs:
            click.echo(f"{key:<{f.width}}{f.sep}{_text(value)}", file=self.stream)


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)
