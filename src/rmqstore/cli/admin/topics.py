"""mqadmin's topic commands: updateTopic, deleteTopic, topicList, topicRoute, topicStatus,
updateTopicPerm (tools/.../command/topic/ of rocketmq-all-4.9.7, same flags and columns)."""

from __future__ import annotations

import json

import click

from ...client.admin import Admin
from ...client.errors import ClientError
from ...protocol.route import TopicRouteData, encode_topic_route
from ..output import Column, Table
from .common import AdminContext, admin_command, broker_or_cluster, fail, show_time
from .group import admin

ORDER_TOPIC_CONFIG = "ORDER_TOPIC_CONFIG"  # the NameServer's KV namespace of ordered topics


def perm_text(perm: int) -> str:
    """PermName.perm2String: R, W, X (inherit) or '-' in three places."""
    return "".join(c if perm & bit else "-" for c, bit in (("R", 4), ("W", 2), ("X", 1)))


def topic_config_text(topic: str, read: int, write: int, perm: int, order: bool) -> str:
    """TopicConfig.toString, as mqadmin updateTopic prints it."""
    return (f"TopicConfig [topicName={topic}, readQueueNums={read}, writeQueueNums={write}, "
            f"perm={perm_text(perm)}, topicFilterType=SINGLE_TAG, topicSysFlag=0, "
            f"order={'true' if order else 'false'}]")


@admin_command(admin, "updateTopic")
@broker_or_cluster
@click.option("-t", "--topic", required=True)
@click.option("-r", "--readQueueNums", "read", type=click.IntRange(1, 1024), default=8,
              show_default=True)
@click.option("-w", "--writeQueueNums", "write", type=click.IntRange(1, 1024), default=8,
              show_default=True)
@click.option("-p", "--perm", type=click.Choice(["2", "4", "6"]), default="6", show_default=True,
              help="2 write, 4 read, 6 read and write.")
@click.option("-o", "--order", type=bool, default=False, show_default=True,
              help="Ordered: the NameServers keep brokerName:queues (with -c).")
def update_topic(ctx: AdminContext, broker: str | None, cluster: str | None, topic: str,
                 read: int, write: int, perm: str, order: bool) -> None:
    """Update or create topic (UPDATE_AND_CREATE_TOPIC)."""
    async def go(a: Admin) -> dict[str, str]:
        targets = await a.broker_addrs(broker, cluster)
        for addr in targets.values():
            await a.create_topic(addr, topic, read, write, int(perm), order)
        if order and cluster:
            await a.put_kv(ORDER_TOPIC_CONFIG, topic,
                           ";".join(f"{name}:{write}" for name in sorted(targets)))
        return targets
    targets = ctx.run(go)
    config = {"topicName": topic, "readQueueNums": read, "writeQueueNums": write,
              "perm": int(perm), "order": order}
    ctx.out.show({"brokers": targets, "topicConfig": config},
                 *(f"create topic to {addr} success." for addr in targets.values()),
                 topic_config_text(topic, read, write, int(perm), order))


@admin_command(admin, "updateTopicPerm")
@broker_or_cluster
@click.option("-t", "--topic", required=True)
@click.option("-p", "--perm", type=click.Choice(["2", "4", "6"]), required=True,
              help="2 write, 4 read, 6 read and write.")
def update_topic_perm(ctx: AdminContext, broker: str | None, cluster: str | None, topic: str,
                      perm: str) -> None:
    """Update topic perm (its route's queue counts kept, UPDATE_AND_CREATE_TOPIC)."""
    async def go(a: Admin) -> list[dict]:
        route = await a.route(topic)
        changed = []
        for name, addr in (await a.broker_addrs(broker, cluster)).items():
            qd = next((q for q in route.queue_datas if q.broker_name == name), None)
            if qd is None:
                raise ClientError(f"topic {topic} has no queues on broker {name} ({addr})")
            await a.create_topic(addr, topic, qd.read_queue_nums, qd.write_queue_nums,
                                 int(perm))
            changed.append({"broker": addr, "oldPerm": qd.perm, "perm": int(perm)})
        return changed
    changed = ctx.run(go)
    ctx.out.show(changed, *(f"update topic perm from {c['oldPerm']} to {c['perm']} in "
                            f"{c['broker']} success." for c in changed))


@admin_command(admin, "deleteTopic")
@click.option("-t", "--topic", required=True)
@click.option("-c", "--clusterName", "cluster", required=True)
def delete_topic(ctx: AdminContext, topic: str, cluster: str) -> None:
    """Delete topic from broker and NameServer (DELETE_TOPIC_IN_BROKER to every master of the
    cluster, DELETE_TOPIC_IN_NAMESRV to every NameServer)."""
    brokers, namesrvs = ctx.run(lambda a: a.delete_topic(topic, cluster))
    ctx.out.show({"topic": topic, "cluster": cluster, "brokers": brokers, "nameServers": namesrvs},
                 f"delete topic [{topic}] from cluster [{cluster}] success.",
                 f"delete topic [{topic}] from NameServer success.")


LIST_COLUMNS = (Column("cluster", "Cluster Name"), Column("topic", "Topic"),
                Column("group", "Consumer Group"))


@admin_command(admin, "topicList")
@click.option("-c", "--clusterModel", "by_cluster", is_flag=True,
              help="With each topic's cluster and consumer groups.")
def topic_list(ctx: AdminContext, by_cluster: bool) -> None:
    """Fetch all topic list from name server."""
    if not by_cluster:
        topics = ctx.run(lambda a: a.topic_list())
        ctx.out.show({"topics": topics}, *topics)
        return

    async def go(a: Admin) -> list[dict]:
        topics = await a.topic_list()
        rows = []
        with ctx.out.progress(len(topics), "topics") as done:
            for topic in topics:
                try:
                    route = await a.route(topic)
                    groups = await a.consumed_by(topic)
                except ClientError:
                    route, groups = None, []
                cluster = route.broker_datas[0].cluster if route and route.broker_datas else ""
                rows += [{"cluster": cluster, "topic": topic, "group": g} for g in groups or [""]]
                done()
        return rows
    rows = ctx.run(go)
    ctx.out.show(rows, Table(LIST_COLUMNS, rows))


ROUTE_COLUMNS = (Column("cluster", "ClusterName"), Column("brokerName", "BrokerName"),
                 Column("brokerAddrs", "BrokerAddrs"), Column("readQueueNums", "ReadQueue", True),
                 Column("writeQueueNums", "WriteQueue", True), Column("perm", "Perm", True))


@admin_command(admin, "topicRoute")
@click.option("-t", "--topic", required=True)
@click.option("-l", "--list", "as_list", is_flag=True, help="A table instead of JSON.")
def topic_route(ctx: AdminContext, topic: str, as_list: bool) -> None:
    """Examine topic route info (GET_ROUTEINFO_BY_TOPIC)."""
    route = ctx.run(lambda a: a.route(topic))
    data = route_json(route)
    if not as_list:
        ctx.out.show(data, json.dumps(data, indent=2))
        return
    rows = []
    for qd in route.queue_datas:
        bd = route.broker(qd.broker_name)
        rows.append({"cluster": bd.cluster if bd else "", "brokerName": qd.broker_name,
                     "brokerAddrs": ",".join(f"{i}:{a}" for i, a in
                                             sorted(bd.broker_addrs.items())) if bd else "",
                     "readQueueNums": qd.read_queue_nums, "writeQueueNums": qd.write_queue_nums,
                     "perm": qd.perm})
    total = {"cluster": "Total", "readQueueNums": sum(r["readQueueNums"] for r in rows),
             "writeQueueNums": sum(r["writeQueueNums"] for r in rows)}
    ctx.out.show(data, Table(ROUTE_COLUMNS, [*rows, total]))


def route_json(route: TopicRouteData) -> dict:
    """TopicRouteData's JSON, as mqadmin topicRoute prints it."""
    return json.loads(encode_topic_route(route))


STATUS_COLUMNS = (Column("brokerName", "Broker Name"), Column("queueId", "QID", True),
                  Column("minOffset", "Min Offset", True), Column("maxOffset", "Max Offset", True),
                  Column("lastUpdated", "Last Updated"))


@admin_command(admin, "topicStatus")
@click.option("-t", "--topic", required=True)
@click.option("-c", "--cluster", default=None, help="Accepted for mqadmin's sake; the route "
              "says where the topic is.")
def topic_status(ctx: AdminContext, topic: str, cluster: str | None) -> None:
    """Examine topic Status info (GET_TOPIC_STATS_INFO at every master of the topic)."""
    stats = ctx.run(lambda a: a.topic_stats(topic))
    if not stats:
        fail(f"topic {topic} has no queue on any master")
    rows = [{"brokerName": q.broker_name, "queueId": q.queue_id, "minOffset": o.min_offset,
             "maxOffset": o.max_offset, "lastUpdateTimestamp": o.last_update_timestamp,
             "lastUpdated": show_time(o.last_update_timestamp)} for q, o in stats.items()]
    ctx.out.show(rows, Table(STATUS_COLUMNS, rows))
