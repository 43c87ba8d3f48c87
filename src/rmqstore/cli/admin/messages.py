"""mqadmin's message commands: queryMsgById, queryMsgByKey, queryMsgByUniqueKey,
queryMsgByOffset, printMsg, sendMessage, consumeMessage (tools/.../command/message/ of
rocketmq-all-4.9.7, same flags), and our four from before: query-msg, view-msg,
consume-progress, trace."""

from __future__ import annotations

import click

from ...client.admin import Admin
from ...client.errors import ClientError
from ...client.message import Message, MessageExt
from ...client.producer import Producer
from ...client.trace import TRACE_TOPIC, TraceRecord, TraceType
from ...protocol.message import MessageQueue
from ..output import Column, Fields, Table
from .common import AdminContext, admin_command, fail, parse_time, show_time
from .group import admin

BODY_PREVIEW_CHARS = 120
PRINT_BATCH = 32  # PrintMessageSubCommand pulls 32 at a time
TOOLS_PRODUCER = "TOOLS_PRODUCER"


def message_json(m: MessageExt, body_chars: int = 4000) -> dict:
    return {"msgId": m.msg_id, "offsetMsgId": m.offset_msg_id, "topic": m.topic,
            "tags": m.tags or "", "keys": m.keys or "", "queueId": m.queue_id,
            "queueOffset": m.queue_offset, "commitLogOffset": m.commitlog_offset,
            "reconsumeTimes": m.reconsume_times, "bornTimestamp": m.born_timestamp,
            "storeTimestamp": m.store_timestamp, "bornHost": "%s:%d" % m.born_host,
            "storeHost": "%s:%d" % m.store_host, "sysFlag": m.sys_flag,
            "properties": dict(sorted(m.properties.items())),
            "body": _preview(m.body, body_chars)}


def message_fields(m: MessageExt) -> Fields:
    """The detail block of queryMsgById (QueryMsgByIdSubCommand.printMsg)."""
    return Fields([
        ("OffsetID", m.offset_msg_id), ("Msg ID", m.msg_id), ("Topic", m.topic),
        ("Tags", f"[{m.tags or ''}]"), ("Keys", f"[{m.keys or ''}]"),
        ("Queue ID", m.queue_id), ("Queue Offset", m.queue_offset),
        ("CommitLog Offset", m.commitlog_offset), ("Reconsume Times", m.reconsume_times),
        ("Born Timestamp", show_time(m.born_timestamp)),
        ("Store Timestamp", show_time(m.store_timestamp)),
        ("Born Host", "%s:%d" % m.born_host), ("Store Host", "%s:%d" % m.store_host),
        ("System Flag", m.sys_flag),
        ("Properties", ", ".join(f"{k}={v}" for k, v in sorted(m.properties.items()))),
        ("Message Body", _preview(m.body, 2000))], width=20)


def _show_messages(ctx: AdminContext, msgs: list[MessageExt], track: dict | None = None) -> None:
    views: list = []
    for m in msgs:
        views.append(message_fields(m))
        for t in (track or {}).get(m.msg_id, []):
            views.append(f"MessageTrack [consumerGroup={t['consumerGroup']}, "
                         f"trackType={t['trackType']}]")
    data = [{**message_json(m), **({"track": track[m.msg_id]} if track else {})} for m in msgs]
    ctx.out.show(data, *views)


@admin_command(admin, "queryMsgById")
@click.option("-i", "--msgId", "ids", required=True,
              help="Offset message id(s), comma-separated; with -t, the producer's id(s).")
@click.option("-t", "--topic", default=None, help="Look the ids up as UNIQ_KEY in this topic.")
@click.option("-g", "--consumerGroup", "group", default=None,
              help="With -d: have this group's consumer consume the message again.")
@click.option("-d", "--clientId", "client_id", default=None)
def query_msg_by_id(ctx: AdminContext, ids: str, topic: str | None, group: str | None,
                    client_id: str | None) -> None:
    """Query Message by Id (VIEW_MESSAGE_BY_ID, or QUERY_MESSAGE by unique key with -t), and
    whether each group has consumed it; -g -d consumes it directly on that client."""
    async def go(a: Admin) -> tuple[list[MessageExt], dict, list]:
        msgs = []
        for msg_id in (i.strip() for i in ids.split(",") if i.strip()):
            msg = await (a.query_by_uniq_key(topic, msg_id) if topic
                         else a.view_by_offset_id(msg_id))
            if msg is None:
                raise ClientError(f"no message of {topic} with msg id {msg_id}")
            msgs.append(msg)
        track = {m.msg_id: await a.message_track(m) for m in msgs}
        direct = [await a.consume_directly(group, client_id, m.offset_msg_id) for m in msgs] \
            if group and client_id else []
        return msgs, track, direct
    msgs, track, direct = ctx.run(go)
    if not direct:
        _show_messages(ctx, msgs, track)
        return
    results = [{"msgId": m.msg_id, "consumeResult": r.consume_result, "remark": r.remark,
                "spentTimeMills": r.spent_time_ms} for m, r in zip(msgs, direct, strict=True)]
    ctx.out.show(results, *(f"ConsumeMessageDirectlyResult [order={_java(r.order)}, "
                            f"autoCommit={_java(r.auto_commit)}, consumeResult="
                            f"{r.consume_result}, remark={r.remark or 'null'}, "
                            f"spentTimeMills={r.spent_time_ms}]" for r in direct))


def _java(flag: bool) -> str:
    return "true" if flag else "false"


@admin_command(admin, "queryMsgByUniqueKey")
@click.option("-i", "--msgId", "msg_id", required=True, help="The producer's message id.")
@click.option("-t", "--topic", required=True)
@click.option("-a", "--showAll", "show_all", is_flag=True, help="Every copy found.")
@click.option("-g", "--consumerGroup", "group", default=None)
@click.option("-d", "--clientId", "client_id", default=None)
def query_msg_by_unique_key(ctx: AdminContext, msg_id: str, topic: str, show_all: bool,
                            group: str | None, client_id: str | None) -> None:
    """Query Message by Unique key (QUERY_MESSAGE with _UNIQUE_KEY_QUERY)."""
    async def go(a: Admin) -> tuple[list[MessageExt], dict]:
        found = await a.query_by_key(topic, msg_id) if show_all else []
        found = [m for m in found if m.msg_id == msg_id]
        if not found:
            one = await a.query_by_uniq_key(topic, msg_id)
            found = [one] if one is not None else []
        if not found:
            raise ClientError(f"no message of {topic} with unique key {msg_id}")
        if group and client_id:
            await a.consume_directly(group, client_id, found[0].offset_msg_id)
        return found, {m.msg_id: await a.message_track(m) for m in found}
    msgs, track = ctx.run(go)
    _show_messages(ctx, msgs, track)


KEY_COLUMNS = (Column("msgId", "Message ID"), Column("queueId", "QID", True),
               Column("queueOffset", "Offset", True))


@admin_command(admin, "queryMsgByKey")
@click.option("-t", "--topic", required=True)
@click.option("-k", "--msgKey", "key", required=True)
@click.option("-b", "--beginTimestamp", "begin", default="0",
              help="Store time from (ms, now, or yyyy-MM-dd#HH:mm:ss:SSS).")
@click.option("-e", "--endTimestamp", "end", default=None, help="Store time to. [default: none]")
@click.option("-m", "--maxNum", "max_num", type=click.IntRange(1, 64), default=64,
              show_default=True)
@click.option("-c", "--cluster", default=None, help="Accepted for mqadmin's sake.")
def query_msg_by_key(ctx: AdminContext, topic: str, key: str, begin: str, end: str | None,
                     max_num: int, cluster: str | None) -> None:
    """Query Message by Key (QUERY_MESSAGE at every broker of the topic)."""
    b, e = parse_time(begin), parse_time(end) if end else None
    msgs = ctx.run(lambda a: a.query_by_key(topic, key, b, e, max_num))
    if not msgs:
        fail(f"no message of {topic} with key {key!r}")
    rows = [message_json(m, BODY_PREVIEW_CHARS) for m in msgs]
    ctx.out.show(rows, Table(KEY_COLUMNS, rows))


@admin_command(admin, "queryMsgByOffset")
@click.option("-t", "--topic", required=True)
@click.option("-b", "--brokerName", "broker_name", required=True)
@click.option("-i", "--queueId", "queue_id", type=int, required=True)
@click.option("-o", "--offset", type=int, required=True)
def query_msg_by_offset(ctx: AdminContext, topic: str, broker_name: str, queue_id: int,
                        offset: int) -> None:
    """Query Message by offset (PULL_MESSAGE of one message)."""
    mq = MessageQueue(topic, broker_name, queue_id)
    got = ctx.run(lambda a: a.pull(mq, offset, 1))
    if not got.messages:
        fail(f"no message at offset {offset} of {mq} ({got.status.name})")
    _show_messages(ctx, got.messages[:1])


MSG_COLUMNS = (Column("msgId", "MSGID"), Column("queueId", "QID", True),
               Column("queueOffset", "Offset", True), Column("tags", "Tags"),
               Column("keys", "Keys"), Column("storeTime", "StoreTime"), Column("body", "BODY"))


async def _read(a: Admin, topic: str, expression: str, begin_ms: int | None,
                end_ms: int | None, queue: MessageQueue | None, start: int | None,
                limit: int) -> tuple[list[MessageExt], list[str]]:
    """Messages of every read queue (or one) within [begin, end) of store time, at most
    ``limit``; and a line per queue saying what was read (minOffset=..., maxOffset=...)."""
    queues = [queue] if queue else sorted(
        MessageQueue(topic, qd.broker_name, i) for qd in (await a.route(topic)).queue_datas
        for i in range(qd.read_queue_nums))
    out: list[MessageExt] = []
    notes = []
    for mq in queues:
        lo, hi = await a.queue_bounds(mq)
        if begin_ms is not None:
            lo = max(lo, await a.offset_at(mq, begin_ms))
        if end_ms is not None:
            hi = min(hi, await a.offset_at(mq, end_ms))
        offset = lo if start is None else max(lo, start)
        notes.append(f"minOffset={lo}, maxOffset={hi}, {mq}")
        while offset < hi and len(out) < limit:
            got = await a.pull(mq, offset, min(PRINT_BATCH, limit - len(out)), expression)
            if not got.messages and got.next_begin_offset <= offset:
                break
            out += [m for m in got.messages if end_ms is None or m.store_timestamp < end_ms]
            offset = got.next_begin_offset
    return out[:limit], notes


@admin_command(admin, "printMsg")
@click.option("-t", "--topic", required=True)
@click.option("-s", "--subExpression", "expression", default="*", show_default=True)
@click.option("-b", "--beginTimestamp", "begin", default=None,
              help="Store time from (ms, now, or yyyy-MM-dd#HH:mm:ss:SSS).")
@click.option("-e", "--endTimestamp", "end", default=None)
@click.option("-d", "--printBody", "print_body", type=bool, default=True, show_default=True)
@click.option("-c", "--charsetName", "charset", default="utf-8", show_default=True)
@click.option("--max", "limit", type=click.IntRange(1), default=1000, show_default=True,
              help="At most this many messages (ours: mqadmin prints them all).")
def print_msg(ctx: AdminContext, topic: str, expression: str, begin: str | None,
              end: str | None, print_body: bool, charset: str, limit: int) -> None:
    """Print Message Detail (every queue of the topic, within the time range)."""
    b = parse_time(begin) if begin else None
    e = parse_time(end) if end else None
    msgs, notes = ctx.run(lambda a: _read(a, topic, expression, b, e, None, None, limit))
    _show_list(ctx, msgs, notes, print_body, charset)


@admin_command(admin, "consumeMessage")
@click.option("-t", "--topic", required=True)
@click.option("-b", "--brokerName", "broker_name", default=None)
@click.option("-i", "--queueId", "queue_id", type=int, default=None)
@click.option("-o", "--offset", type=int, default=None)
@click.option("-g", "--consumerGroup", "group", default=None, help="Accepted for mqadmin's "
              "sake: the tools group reads, and commits nothing.")
@click.option("-s", "--beginTimestamp", "begin", default=None)
@click.option("-e", "--endTimestamp", "end", default=None)
@click.option("-c", "--MessageNumber", "count", type=click.IntRange(1), default=128,
              show_default=True)
def consume_message(ctx: AdminContext, topic: str, broker_name: str | None,
                    queue_id: int | None, offset: int | None, group: str | None,
                    begin: str | None, end: str | None, count: int) -> None:
    """Consume message: read ``-c`` messages of the topic (or of one queue from -o)."""
    if (broker_name is None) != (queue_id is None):
        fail("-b and -i go together")
    mq = MessageQueue(topic, broker_name, queue_id) if broker_name is not None else None
    b = parse_time(begin) if begin else None
    e = parse_time(end) if end else None
    msgs, notes = ctx.run(lambda a: _read(a, topic, "*", b, e, mq, offset, count))
    _show_list(ctx, msgs, notes, True, "utf-8")


def _show_list(ctx: AdminContext, msgs: list[MessageExt], notes: list[str], print_body: bool,
               charset: str) -> None:
    rows = [{**message_json(m, BODY_PREVIEW_CHARS), "storeTime": show_time(m.store_timestamp),
             "body": _preview(m.body, BODY_PREVIEW_CHARS, charset) if print_body
             else "NOT PRINT BODY"} for m in msgs]
    ctx.out.show({"messages": rows, "queues": notes}, Table(MSG_COLUMNS, rows), *notes)


SEND_COLUMNS = (Column("brokerName", "Broker Name"), Column("queueId", "QID", True),
                Column("sendResult", "Send Result"), Column("msgId", "MsgId"))


@admin_command(admin, "sendMessage")
@click.option("-t", "--topic", required=True)
@click.option("-p", "--body", required=True)
@click.option("-k", "--key", default=None)
@click.option("-c", "--tags", default=None)
@click.option("-b", "--broker", default=None, help="Broker name (with -i: one queue).")
@click.option("-i", "--qid", type=int, default=None)
@click.option("-m", "--msgTraceEnable", "trace", type=bool, default=False, show_default=True)
def send_message(ctx: AdminContext, topic: str, body: str, key: str | None, tags: str | None,
                 broker: str | None, qid: int | None, trace: bool) -> None:
    """Send a message (SEND_MESSAGE_V2)."""
    if (broker is None) != (qid is None):
        fail("-b and -i go together")

    async def go(a: Admin):
        async with Producer(TOOLS_PRODUCER, ctx.namesrv, credentials=ctx.credentials,
                            trace=trace, tls=ctx.tls) as p:
            queue = MessageQueue(topic, broker, qid) if broker is not None else None
            return await p.send(Message(topic, body.encode(), tags=tags, keys=key),
                                queue=queue)
    r = ctx.run(go)
    row = {"brokerName": r.queue.broker_name, "queueId": r.queue.queue_id,
           "sendResult": r.status.name, "msgId": r.msg_id, "offsetMsgId": r.offset_msg_id,
           "queueOffset": r.queue_offset}
    ctx.out.show(row, Table(SEND_COLUMNS, [row]))


# -- ours, from before mqadmin's names ---------------------------------------------------------

@admin_command(admin, "query-msg")
@click.option("--topic", "-t", required=True)
@click.option("--key", "-k", required=True, help="A message key (KEYS).")
@click.option("--begin", type=int, default=0, show_default=True, help="Store time from, ms.")
@click.option("--end", type=int, default=None, help="Store time to, ms. [default: no bound]")
@click.option("--max", "max_num", type=click.IntRange(1, 64), default=32, show_default=True)
def query_msg(ctx: AdminContext, topic: str, key: str, begin: int, end: int | None,
              max_num: int) -> None:
    """Messages of a topic by key, with their bodies (QUERY_MESSAGE)."""
    msgs = ctx.run(lambda a: a.query_by_key(topic, key, begin, end, max_num))
    if not msgs:
        fail(f"no message of {topic} with key {key!r}")
    _show_list(ctx, msgs, [], True, "utf-8")


@admin_command(admin, "view-msg")
@click.option("--id", "msg_id", required=True,
              help="An offset msg id; with --topic, a msg id (UNIQ_KEY).")
@click.option("--topic", "-t", default=None, help="Look --id up as the producer's msg id.")
def view_msg(ctx: AdminContext, msg_id: str, topic: str | None) -> None:
    """One message by offset msg id (VIEW_MESSAGE_BY_ID) or by msg id (UNIQ_KEY)."""
    msg = ctx.run(lambda a: a.query_by_uniq_key(topic, msg_id) if topic
                  else a.view_by_offset_id(msg_id))
    if msg is None:
        fail(f"no message of {topic} with msg id {msg_id}")
    _show_messages(ctx, [msg])


PROGRESS_COLUMNS = (Column("topic", "Topic"), Column("brokerName", "Broker Name"),
                    Column("queueId", "QID", True), Column("brokerOffset", "Broker Offset", True),
                    Column("consumerOffset", "Consumer Offset", True),
                    Column("lag", "Diff", True), Column("lastTime", "LastTime"))


@admin_command(admin, "consume-progress")
@click.option("--group", "-g", required=True)
@click.option("--topic", "-t", default=None)
def consume_progress(ctx: AdminContext, group: str, topic: str | None) -> None:
    """Broker offset, consumer offset and lag per queue (GET_CONSUME_STATS)."""
    stats = ctx.run(lambda a: a.consume_stats(group, topic))
    rows = [{"topic": q.queue.topic, "brokerName": q.queue.broker_name,
             "queueId": q.queue.queue_id, "brokerOffset": q.broker_offset,
             "consumerOffset": q.consumer_offset, "lag": q.lag,
             "lastTime": show_time(q.last_timestamp_ms)} for q in stats.queues]
    ctx.out.show({"group": group, "totalLag": stats.total_lag, "consumeTps": stats.consume_tps,
                  "queues": rows},
                 Table(PROGRESS_COLUMNS, rows, title=f"{group}: total lag {stats.total_lag:,}, "
                                                     f"consume TPS {stats.consume_tps:.2f}"))


TRACE_COLUMNS = (Column("type", "Type"), Column("time", "Time"), Column("group", "Group"),
                 Column("what", "Topic / Request"), Column("host", "Host"),
                 Column("costMs", "Cost ms", True), Column("status", "Status"),
                 Column("retries", "Retries", True), Column("detail", "Detail"))


@admin_command(admin, "trace")
@click.option("--id", "msg_id", required=True, help="The producer's msg id (UNIQ_KEY).")
@click.option("--trace-topic", default=TRACE_TOPIC, show_default=True)
def trace(ctx: AdminContext, msg_id: str, trace_topic: str) -> None:
    """Send and consume trace of one message (from the trace topic)."""
    records = ctx.run(lambda a: a.traces(msg_id, trace_topic))
    if not records:
        fail(f"no trace of {msg_id} in {trace_topic}")
    rows = [_trace_row(r) for r in records]
    ctx.out.show(rows, Table(TRACE_COLUMNS, rows))


def _trace_row(r: TraceRecord) -> dict:
    if r.type is TraceType.PUB:
        what, host, detail, retries = (r.topic, r.store_host,
                                       f"body {r.body_length} B, offset id {r.offset_msg_id}", 0)
    elif r.type is TraceType.END_TRANSACTION:
        what, host, detail, retries = (r.topic, r.store_host,
                                       f"{r.transaction_state} tx {r.transaction_id}", 0)
    else:
        what, host, detail, retries = (r.request_id, r.client_host,
                                       f"context {r.context_code}", r.retry_times)
    status = "" if r.type is TraceType.SUB_BEFORE else ("success" if r.success else "failed")
    return {"type": r.type.value, "time": show_time(r.timestamp_ms), "group": r.group,
            "what": what, "host": host, "costMs": r.cost_ms, "status": status,
            "retries": retries, "detail": detail}


def _preview(body: bytes, limit: int, charset: str = "utf-8") -> str:
    text = body.decode(charset, "replace")
    return text if len(text) <= limit else text[:limit] + "..."
