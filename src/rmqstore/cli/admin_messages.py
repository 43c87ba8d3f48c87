"""`rmqstore admin ...`: mqadmin's lookups against a running NameServer, as tables.

    rmqstore admin query-msg --namesrv 127.0.0.1:9876 --topic T --key order-42
    rmqstore admin view-msg --namesrv 127.0.0.1:9876 --id <offset msg id>
    rmqstore admin view-msg --namesrv 127.0.0.1:9876 --topic T --id <msg id (UNIQ_KEY)>
    rmqstore admin consume-progress --namesrv 127.0.0.1:9876 --group G [--topic T]
    rmqstore admin trace --namesrv 127.0.0.1:9876 --id <msg id>

Exit status 1 with a message on stderr when nothing was found or the cluster answered an error.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Awaitable, Callable
from typing import NoReturn, TypeVar

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..client.admin import Admin
from ..client.errors import ClientError
from ..client.message import MessageExt
from ..client.trace import TRACE_TOPIC, TraceRecord, TraceType

T = TypeVar("T")
BODY_PREVIEW_CHARS = 120

_namesrv = click.option("--namesrv", "-n", envvar="NAMESRV_ADDR", required=True,
                        help="NameServer address(es), 'host:port;host:port' [env NAMESRV_ADDR].")


@click.group()
def admin() -> None:
    """Query messages, consume progress and traces of a running cluster."""


@admin.command("query-msg")
@_namesrv
@click.option("--topic", "-t", required=True)
@click.option("--key", "-k", required=True, help="A message key (KEYS).")
@click.option("--begin", type=int, default=0, show_default=True, help="Store time from, ms.")
@click.option("--end", type=int, default=None, help="Store time to, ms. [default: no bound]")
@click.option("--max", "max_num", type=click.IntRange(1, 64), default=32, show_default=True)
def query_msg(namesrv: str, topic: str, key: str, begin: int, end: int | None,
              max_num: int) -> None:
    """Messages of a topic by key (QUERY_MESSAGE)."""
    msgs = _run(namesrv, lambda a: a.query_by_key(topic, key, begin, end, max_num))
    if not msgs:
        _fail(f"no message of {topic} with key {key!r}")
    _print_messages(msgs)


@admin.command("view-msg")
@_namesrv
@click.option("--id", "msg_id", required=True,
              help="An offset msg id; with --topic, a msg id (UNIQ_KEY).")
@click.option("--topic", "-t", default=None, help="Look --id up as the producer's msg id.")
def view_msg(namesrv: str, msg_id: str, topic: str | None) -> None:
    """One message by offset msg id (VIEW_MESSAGE_BY_ID) or by msg id (UNIQ_KEY)."""
    if topic:
        msg = _run(namesrv, lambda a: a.query_by_uniq_key(topic, msg_id))
        if msg is None:
            _fail(f"no message of {topic} with msg id {msg_id}")
    else:
        try:
            msg = _run(namesrv, lambda a: a.view_by_offset_id(msg_id))
        except ValueError as exc:
            _fail(str(exc))
    _print_message(msg)


@admin.command("consume-progress")
@_namesrv
@click.option("--group", "-g", required=True)
@click.option("--topic", "-t", default=None)
def consume_progress(namesrv: str, group: str, topic: str | None) -> None:
    """Broker offset, consumer offset and lag per queue (GET_CONSUME_STATS)."""
    stats = _run(namesrv, lambda a: a.consume_stats(group, topic))
    table = Table(title=f"{group}: total lag {stats.total_lag:,}, "
                        f"consume TPS {stats.consume_tps:.2f}")
    for col in ("topic", "broker", "queue", "broker offset", "consumer offset", "lag",
                "last consumed"):
        table.add_column(col)
    for q in stats.queues:
        table.add_row(escape(q.queue.topic), escape(q.queue.broker_name), str(q.queue.queue_id),
                      f"{q.broker_offset:,}", f"{q.consumer_offset:,}", f"{q.lag:,}",
                      _time(q.last_timestamp_ms))
    Console(width=200).print(table)


@admin.command("trace")
@_namesrv
@click.option("--id", "msg_id", required=True, help="The producer's msg id (UNIQ_KEY).")
@click.option("--trace-topic", default=TRACE_TOPIC, show_default=True)
def trace(namesrv: str, msg_id: str, trace_topic: str) -> None:
    """Send and consume trace of one message (from the trace topic)."""
    records = _run(namesrv, lambda a: a.traces(msg_id, trace_topic))
    if not records:
        _fail(f"no trace of {msg_id} in {trace_topic}")
    _print_traces(records)


# -- output -----------------------------------------------------------------------------------

def _print_messages(msgs: list[MessageExt]) -> None:
    table = Table()
    for col in ("msg id", "offset msg id", "topic", "queue", "offset", "tags", "keys",
                "store time", "body"):
        table.add_column(col)
    for m in msgs:
        table.add_row(m.msg_id, m.offset_msg_id, escape(m.topic), str(m.queue_id),
                      str(m.queue_offset), escape(m.tags or ""), escape(m.keys or ""),
                      _time(m.store_timestamp), escape(_preview(m.body)))
    Console(width=250).print(table)


def _print_message(m: MessageExt) -> None:
    table = Table(show_header=False)
    table.add_column("field")
    table.add_column("value")
    rows = [("msg id", m.msg_id), ("offset msg id", m.offset_msg_id), ("topic", m.topic),
            ("queue", f"{m.queue_id} @ offset {m.queue_offset}"), ("tags", m.tags or ""),
            ("keys", m.keys or ""),
            ("born", f"{_time(m.born_timestamp)} from {m.born_host[0]}:{m.born_host[1]}"),
            ("stored", f"{_time(m.store_timestamp)} at {m.store_addr}"),
            ("reconsume times", str(m.reconsume_times)),
            ("properties", ", ".join(f"{k}={v}" for k, v in sorted(m.properties.items()))),
            ("body", _preview(m.body, 2000))]
    for name, value in rows:
        table.add_row(name, escape(value))
    Console(width=200).print(table)


def _print_traces(records: list[TraceRecord]) -> None:
    table = Table()
    for col in ("type", "time", "group", "topic / request", "host", "cost ms", "status",
                "retries", "detail"):
        table.add_column(col)
    for r in records:
        if r.type is TraceType.PUB:
            row = (r.topic, r.store_host, f"body {r.body_length} B, offset id {r.offset_msg_id}",
                   "0")
        elif r.type is TraceType.END_TRANSACTION:
            row = (r.topic, r.store_host, f"{r.transaction_state} tx {r.transaction_id}", "0")
        else:
            row = (r.request_id, r.client_host, f"context {r.context_code}", str(r.retry_times))
        status = "" if r.type is TraceType.SUB_BEFORE else ("success" if r.success else "failed")
        table.add_row(r.type.value, _time(r.timestamp_ms), escape(r.group), escape(row[0]),
                      escape(row[1]), str(r.cost_ms), status, row[3], escape(row[2]))
    Console(width=220).print(table)


def _preview(body: bytes, limit: int = BODY_PREVIEW_CHARS) -> str:
    text = body.decode("utf-8", "replace")
    return text if len(text) <= limit else text[:limit] + "..."


def _time(ms: int) -> str:
    if ms <= 0:
        return "-"
    return datetime.datetime.fromtimestamp(ms / 1000).isoformat(sep=" ", timespec="milliseconds")


def _run(namesrv: str, call: Callable[[Admin], Awaitable[T]]) -> T:
    async def main() -> T:
        async with Admin(namesrv) as a:
            return await call(a)
    try:
        return asyncio.run(main())
    except ClientError as exc:
        _fail(str(exc))


def _fail(message: str) -> NoReturn:
    raise click.ClickException(message)
