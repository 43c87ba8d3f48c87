"""mqadmin's group commands: updateSubGroup, deleteSubGroup, consumerProgress,
consumerConnection, producerConnection, consumerStatus, resetOffsetByTime,
skipAccumulatedMessage (tools/.../command/ of rocketmq-all-4.9.7, same flags and columns)."""

from __future__ import annotations

import click

from ...client.admin import Admin
from ...client.errors import ClientError
from ...protocol.message import MessageQueue
from ..output import Column, Fields, Table
from .common import AdminContext, admin_command, broker_or_cluster, fail, parse_time, show_time
from .group import admin

RETRY, DLQ = "%RETRY%", "%DLQ%"
SKIP_TO_MAX = -1  # INVOKE_BROKER_TO_RESET_OFFSET's "each queue's max offset"


def _flag(name: str, short: str, default: bool, text: str):
    return click.option(short, f"--{name}", name, type=bool, default=default, show_default=True,
                        help=text)


@admin_command(admin, "updateSubGroup")
@broker_or_cluster
@click.option("-g", "--groupName", "group", required=True)
@_flag("consumeEnable", "-s", True, "The group may consume.")
@_flag("consumeFromMinEnable", "-m", False, "A new group starts from the queue's minimum.")
@_flag("consumeBroadcastEnable", "-d", False, "Broadcasting allowed.")
@_flag("consumeMessageOrderly", "-o", False, "Consumed in order (RocketMQ 5).")
@click.option("-q", "--retryQueueNums", "retryQueueNums", type=click.IntRange(0), default=1,
              show_default=True)
@click.option("-r", "--retryMaxTimes", "retryMaxTimes", type=click.IntRange(0), default=16,
              show_default=True)
@click.option("-i", "--brokerId", "brokerId", type=click.IntRange(0), default=0,
              show_default=True)
@click.option("-w", "--whichBrokerWhenConsumeSlowly", "whichBrokerWhenConsumeSlowly",
              type=click.IntRange(0), default=1, show_default=True)
@_flag("notifyConsumerIdsChangedEnable", "-a", True, "Members told when the group changes.")
def update_sub_group(ctx: AdminContext, broker: str | None, cluster: str | None, group: str,
                     **settings: object) -> None:
    """Update or create subscription group (UPDATE_AND_CREATE_SUBSCRIPTIONGROUP)."""
    config = {"groupName": group, **settings}

    async def go(a: Admin) -> list[str]:
        addrs = list((await a.broker_addrs(broker, cluster)).values())
        for addr in addrs:
            await a.create_group(addr, config)
        return addrs
    addrs = ctx.run(go)
    text = ", ".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}"
                     for k, v in config.items())
    ctx.out.show({"brokers": addrs, "config": config},
                 *(f"create subscription group to {addr} success." for addr in addrs),
                 f"SubscriptionGroupConfig [{text}]")


@admin_command(admin, "deleteSubGroup")
@broker_or_cluster
@click.option("-g", "--groupName", "group", required=True)
@click.option("-r", "--removeOffset", "remove_offset", is_flag=True,
              help="Also drop the group's consumer offsets.")
def delete_sub_group(ctx: AdminContext, broker: str | None, cluster: str | None, group: str,
                     remove_offset: bool) -> None:
    """Delete subscription group from broker (DELETE_SUBSCRIPTIONGROUP; with -c, its %RETRY% and
    %DLQ% topics go from the cluster and the NameServers too)."""
    async def go(a: Admin) -> list[str]:
        addrs = list((await a.broker_addrs(broker, cluster)).values())
        for addr in addrs:
            await a.delete_group(addr, group, remove_offset)
        if cluster:
            for topic in (RETRY + group, DLQ + group):
                await a.delete_topic(topic, cluster)
        return addrs
    addrs = ctx.run(go)
    where = f" in cluster [{cluster}]" if cluster else ""
    lines = [f"delete subscription group [{group}] from broker [{a}]{where} success."
             for a in addrs]
    if cluster:
        lines += [f"delete topic [{t}] from cluster [{cluster}] success."
                  for t in (RETRY + group, DLQ + group)]
    ctx.out.show({"group": group, "brokers": addrs}, *lines)


PROGRESS_COLUMNS = (
    Column("topic", "Topic"), Column("brokerName", "Broker Name"), Column("queueId", "QID", True),
    Column("brokerOffset", "Broker Offset", True),
    Column("consumerOffset", "Consumer Offset", True), Column("clientIp", "Client IP"),
    Column("diff", "Diff", True), Column("lastTime", "LastTime"))
GROUPS_COLUMNS = (
    Column("group", "Group"), Column("count", "Count", True), Column("version", "Version"),
    Column("type", "Type"), Column("model", "Model"), Column("tps", "TPS", True),
    Column("diffTotal", "Diff Total", True))


@admin_command(admin, "consumerProgress")
@click.option("-g", "--groupName", "group", default=None, help="Every group when left out.")
@click.option("-t", "--topicName", "topic", default=None)
@click.option("-s", "--showClientIP", "client_ip", is_flag=True,
              help="Which client holds each queue (asks every consumer).")
def consumer_progress(ctx: AdminContext, group: str | None, topic: str | None,
                      client_ip: bool) -> None:
    """Query consumer's progress, speed (GET_CONSUME_STATS)."""
    if group is None:
        rows = ctx.run(lambda a: _all_groups(ctx, a))
        ctx.out.show(rows, Table(GROUPS_COLUMNS, rows))
        return

    async def go(a: Admin) -> tuple:
        stats = await a.consume_stats(group, topic)
        holders = await _queue_holders(a, group) if client_ip else {}
        return stats, holders
    stats, holders = ctx.run(go)
    cols = PROGRESS_COLUMNS if client_ip else tuple(c for c in PROGRESS_COLUMNS
                                                    if c.key != "clientIp")
    rows = [{"topic": q.queue.topic, "brokerName": q.queue.broker_name,
             "queueId": q.queue.queue_id, "brokerOffset": q.broker_offset,
             "consumerOffset": q.consumer_offset, "clientIp": holders.get(q.queue, "N/A"),
             "diff": q.lag, "lastTimestamp": q.last_timestamp_ms,
             "lastTime": show_time(q.last_timestamp_ms)} for q in stats.queues]
    ctx.out.show({"group": group, "queues": rows, "consumeTps": stats.consume_tps,
                  "diffTotal": stats.total_lag},
                 Table(cols, rows), "", f"Consume TPS: {stats.consume_tps:.2f}",
                 f"Consume Diff Total: {stats.total_lag}")


async def _queue_holders(a: Admin, group: str) -> dict[MessageQueue, str]:
    """Queue -> IP of the client holding it (its ConsumerRunningInfo's mqTable)."""
    out: dict[MessageQueue, str] = {}
    for c in await a.consumer_connections(group):
        info = await a.running_info(group, c.client_id)
        out.update((mq, c.client_id.split("@")[0]) for mq in info.queues)
    return out


async def _all_groups(ctx: AdminContext, a: Admin) -> list[dict]:
    """Every group with a %RETRY% topic: members, client version, type, model, TPS and lag."""
    groups = sorted(t[len(RETRY):] for t in await a.topic_list() if t.startswith(RETRY))
    rows = []
    with ctx.out.progress(len(groups), "groups") as done:
        for g in groups:
            try:
                stats = await a.consume_stats(g)
            except ClientError:
                done()
                continue
            cc = await a.consumer_connection(g)
            version = max((c.version for c in cc.connections), default=0) if cc else 0
            rows.append({"group": g, "count": len(cc.connections) if cc else 0,
                         "version": f"V{version}" if version else "OFFLINE",
                         "type": _type(cc.consume_type) if cc else "",
                         "model": cc.message_model if cc else "",
                         "tps": round(stats.consume_tps, 2), "diffTotal": stats.total_lag})
            done()
    return rows


def _type(consume_type: str) -> str:
    return {"CONSUME_PASSIVELY": "PUSH", "CONSUME_ACTIVELY": "PULL"}.get(consume_type,
                                                                        consume_type)


CONNECTION_COLUMNS = (Column("index", "", True), Column("clientId", "ClientId"),
                      Column("clientAddr", "ClientAddr"), Column("language", "Language"),
                      Column("version", "Version", True))


@admin_command(admin, "consumerConnection")
@click.option("-g", "--consumerGroup", "group", required=True)
@click.option("-b", "--brokerAddr", "broker", default=None, help="Accepted for mqadmin's sake.")
def consumer_connection(ctx: AdminContext, group: str, broker: str | None) -> None:
    """Query consumer's socket connection, client version and subscription
    (GET_CONSUMER_CONNECTION_LIST)."""
    cc = ctx.run(lambda a: a.consumer_connection(group))
    if cc is None:
        fail(f"the consumer group [{group}] is not online")
    conns = [{"index": i, **c.to_json()} for i, c in enumerate(cc.connections, 1)]
    subs = [{"topic": t, "subExpression": s.get("subString", "")}
            for t, s in sorted(cc.subscriptions.items())]
    ctx.out.show({"connections": conns, "subscriptions": subs, "consumeType": cc.consume_type,
                  "messageModel": cc.message_model, "consumeFromWhere": cc.consume_from_where},
                 Table(CONNECTION_COLUMNS, conns), "", "Below is subscription:",
                 Table((Column("topic", "Topic"), Column("subExpression", "SubExpression")),
                       subs), "", f"ConsumeType: {cc.consume_type}",
                 f"MessageModel: {cc.message_model}",
                 f"ConsumeFromWhere: {cc.consume_from_where}")


@admin_command(admin, "producerConnection")
@click.option("-g", "--producerGroup", "group", required=True)
@click.option("-t", "--topic", required=True)
def producer_connection(ctx: AdminContext, group: str, topic: str) -> None:
    """Query producer's socket connection and client version (GET_PRODUCER_CONNECTION_LIST)."""
    conns = ctx.run(lambda a: a.producer_connection(group, topic))
    if not conns:
        fail(f"the producer group [{group}] is not online at the brokers of {topic}")
    rows = [{"index": i, **c.to_json()} for i, c in enumerate(conns, 1)]
    ctx.out.show(rows, Table(CONNECTION_COLUMNS, rows))


@admin_command(admin, "consumerStatus")
@click.option("-g", "--consumerGroup", "group", required=True)
@click.option("-i", "--clientId", "client_id", default=None, help="One consumer in detail.")
@click.option("-b", "--brokerAddr", "broker", default=None, help="Accepted for mqadmin's sake.")
@click.option("-s", "--jstack", is_flag=True, help="With the consumer's thread stacks.")
def consumer_status(ctx: AdminContext, group: str, client_id: str | None, broker: str | None,
                    jstack: bool) -> None:
    """Query consumer's internal data structure (GET_CONSUMER_RUNNING_INFO, forwarded by the
    broker to each consumer)."""
    async def go(a: Admin) -> dict:
        ids = [client_id] if client_id else [c.client_id
                                             for c in await a.consumer_connections(group)]
        return {cid: await a.running_info(group, cid, jstack) for cid in ids}
    infos = ctx.run(go)
    if not infos:
        fail(f"the consumer group [{group}] is not online")
    data = {cid: {"properties": i.properties, "subscriptions": i.subscriptions,
                  "queues": [{"topic": q.topic, "brokerName": q.broker_name,
                              "queueId": q.queue_id, **v} for q, v in i.queues.items()],
                  "status": i.status, **({"jstack": i.jstack} if i.jstack else {})}
            for cid, i in infos.items()}
    views: list = []
    for cid, info in infos.items():
        d = data[cid]
        views += [Fields(sorted(info.properties.items()), title=f"#ClientId {cid}"),
                  Table(QUEUE_COLUMNS, d["queues"]),
                  Table(STATUS_COLUMNS, [{"topic": t, **s} for t, s in info.status.items()])]
        if info.jstack:
            views.append(info.jstack)
    subs = {cid: sorted((s.get("topic"), s.get("subString")) for s in i.subscriptions)
            for cid, i in infos.items()}
    same = len({tuple(v) for v in subs.values()}) <= 1
    held = [q for i in infos.values() for q in i.queues]
    views.append("Same subscription in the same group of consumer" if same
                 else "WARN: Different subscription in the same group of consumer!!!")
    views.append("Rebalance OK" if len(held) == len(set(held))
                 else "WARN: a queue is held by more than one consumer")
    ctx.out.show(data, *views)


QUEUE_COLUMNS = (Column("topic", "Topic"), Column("brokerName", "Broker Name"),
                 Column("queueId", "QID", True), Column("commitOffset", "Commit Offset", True),
                 Column("cachedMsgCount", "Cached", True), Column("locked", "Locked"))
STATUS_COLUMNS = (Column("topic", "Topic"), Column("pullTPS", "Pull TPS", True),
                  Column("pullRT", "Pull RT(ms)", True),
                  Column("consumeOKTPS", "Consume OK TPS", True),
                  Column("consumeFailedTPS", "Consume Failed TPS", True),
                  Column("consumeRT", "Consume RT(ms)", True),
                  Column("consumeFailedMsgs", "Failed Msgs", True))
RESET_COLUMNS = (Column("brokerName", "brokerName"), Column("queueId", "queueId", True),
                 Column("offset", "offset", True))


@admin_command(admin, "resetOffsetByTime")
@click.option("-g", "--group", required=True)
@click.option("-t", "--topic", required=True)
@click.option("-s", "--timestamp", required=True,
              help="Milliseconds, now, or yyyy-MM-dd#HH:mm:ss:SSS.")
@click.option("-f", "--force", type=bool, default=True, show_default=True,
              help="false: only move an offset back.")
@click.option("-c", "--cplus", is_flag=True, help="Accepted for mqadmin's sake.")
@click.option("-b", "--broker", default=None, help="With -q and -o: one queue of this broker "
              "name to an offset (the group should be offline: a consumer commits over it).")
@click.option("-q", "--queue", "queue_id", type=int, default=None)
@click.option("-o", "--offset", type=int, default=None)
def reset_offset_by_time(ctx: AdminContext, group: str, topic: str, timestamp: str, force: bool,
                         cplus: bool, broker: str | None, queue_id: int | None,
                         offset: int | None) -> None:
    """Reset consumer offset by timestamp (without client restart): INVOKE_BROKER_TO_RESET_OFFSET;
    the broker tells the online consumers, which obey."""
    if broker is not None or queue_id is not None or offset is not None:
        if broker is None or queue_id is None or offset is None:
            fail("-b, -q and -o go together")
        mq = MessageQueue(topic, broker, queue_id)
        ctx.run(lambda a: a.set_offset(group, mq, offset))
        _show_reset(ctx, group, topic, {mq: offset})
        return
    ms = parse_time(timestamp)
    _show_reset(ctx, group, topic, ctx.run(lambda a: a.reset_offset(group, topic, ms, force)))


@admin_command(admin, "skipAccumulatedMessage")
@click.option("-g", "--group", required=True)
@click.option("-t", "--topic", required=True)
@click.option("-f", "--force", type=bool, default=True, show_default=True)
@click.option("-c", "--cluster", default=None, help="Accepted for mqadmin's sake.")
def skip_accumulated_message(ctx: AdminContext, group: str, topic: str, force: bool,
                             cluster: str | None) -> None:
    """Skip all messages that are accumulated (not consumed) currently: each queue's offset
    to its max."""
    _show_reset(ctx, group, topic,
                ctx.run(lambda a: a.reset_offset(group, topic, SKIP_TO_MAX, force)))


def _show_reset(ctx: AdminContext, group: str, topic: str,
                table: dict[MessageQueue, int]) -> None:
    rows = [{"brokerName": q.broker_name, "queueId": q.queue_id, "offset": o}
            for q, o in sorted(table.items())]
    ctx.out.show({"group": group, "topic": topic, "offsets": rows}, Table(RESET_COLUMNS, rows))
