"""mqadmin's broker and cluster commands: clusterList, brokerStatus, getBrokerConfig,
updateBrokerConfig, wipeWritePerm, addWritePerm, statsAll (tools/.../command/ of
rocketmq-all-4.9.7, same flags and columns)."""

from __future__ import annotations

import time

import click

from ...client.admin import Admin
from ...client.errors import ClientError
from ..output import Column, Fields, Table
from .common import AdminContext, admin_command, broker_or_cluster
from .group import admin

CLUSTER_COLUMNS = (
    Column("cluster", "Cluster Name"), Column("brokerName", "Broker Name"),
    Column("brokerId", "BID", True), Column("addr", "Addr"), Column("version", "Version"),
    Column("inTps", "InTPS(LOAD)", True), Column("outTps", "OutTPS(LOAD)", True),
    Column("pageCacheWaitMs", "PCWait(ms)", True), Column("hours", "Hour", True),
    Column("space", "SPACE", True))
MORE_COLUMNS = (
    Column("inTotalYesterday", "InTotalYest", True), Column("outTotalYesterday", "OutTotalYest",
                                                            True),
    Column("inTotalToday", "InTotalToday", True), Column("outTotalToday", "OutTotalToday", True))


@admin_command(admin, "clusterList")
@click.option("-m", "--moreStats", "more", is_flag=True, help="Yesterday's and today's totals.")
@click.option("-i", "--interval", type=click.IntRange(1), default=None,
              help="Print again every this many seconds, until interrupted.")
@click.option("-c", "--clusterName", "cluster", default=None)
def cluster_list(ctx: AdminContext, more: bool, interval: int | None,
                 cluster: str | None) -> None:
    """List cluster infos (GET_BROKER_CLUSTER_INFO, then GET_BROKER_RUNTIME_INFO per broker)."""
    while True:
        rows = ctx.run(lambda a: _cluster_rows(ctx, a, cluster))
        ctx.out.show(rows, Table((*CLUSTER_COLUMNS, *(MORE_COLUMNS if more else ())), rows))
        if interval is None:
            return
        time.sleep(interval)


async def _cluster_rows(ctx: AdminContext, a: Admin, only: str | None) -> list[dict]:
    info = await a.cluster_info()
    if only is not None and only not in info.clusters:
        raise ClientError(f"no cluster {only!r} in the name server")
    members = [(c, name, bid, addr) for c, names in sorted(info.clusters.items())
               if only in (None, c) for name in sorted(names) if name in info.brokers
               for bid, addr in sorted(info.brokers[name].broker_addrs.items())]
    rows = []
    with ctx.out.progress(len(members), "brokers") as done:
        for cluster, name, bid, addr in members:
            try:
                kv = await a.runtime_info(addr)
            except (ClientError, OSError) as exc:
                kv = {"error": str(exc)}
            rows.append(_cluster_row(cluster, name, bid, addr, kv))
            done()
    return rows


def _cluster_row(cluster: str, name: str, bid: int, addr: str, kv: dict[str, str]) -> dict:
    """ClusterListSubCommand.printClusterBaseInfo's values; a key the broker lacks is 0."""
    def first(key: str) -> float:
        return float((kv.get(key) or "0").split()[0])
    earliest = int(kv.get("earliestMessageTimeStamp") or 0)
    hours = (time.time() * 1000 - earliest) / 3_600_000 if earliest > 0 else 0.0
    return {
        "cluster": cluster, "brokerName": name, "brokerId": bid, "addr": addr,
        "version": kv.get("brokerVersionDesc", ""),
        "inTps": f"{first('putTps'):.2f}({kv.get('sendThreadPoolQueueSize', '0')},"
                 f"{kv.get('sendThreadPoolQueueHeadWaitTimeMills', '0')}ms)",
        "outTps": f"{first('getTransferedTps'):.2f}({kv.get('pullThreadPoolQueueSize', '0')},"
                  f"{kv.get('pullThreadPoolQueueHeadWaitTimeMills', '0')}ms)",
        "pageCacheWaitMs": kv.get("pageCacheLockTimeMills", "0"), "hours": f"{hours:.2f}",
        "space": f"{first('commitLogDiskRatio'):.4f}",
        "inTotalYesterday": _delta(kv, "msgPutTotalTodayMorning", "msgPutTotalYesterdayMorning"),
        "outTotalYesterday": _delta(kv, "msgGetTotalTodayMorning", "msgGetTotalYesterdayMorning"),
        "inTotalToday": _delta(kv, "msgPutTotalTodayNow", "msgPutTotalTodayMorning"),
        "outTotalToday": _delta(kv, "msgGetTotalTodayNow", "msgGetTotalTodayMorning"),
        **({"error": kv["error"]} if "error" in kv else {})}


def _delta(kv: dict[str, str], later: str, earlier: str) -> int:
    return int(kv.get(later) or 0) - int(kv.get(earlier) or 0)


@admin_command(admin, "brokerStatus")
@broker_or_cluster
def broker_status(ctx: AdminContext, broker: str | None, cluster: str | None) -> None:
    """Fetch broker runtime status data (GET_BROKER_RUNTIME_INFO)."""
    async def go(a: Admin) -> dict[str, dict[str, str]]:
        addrs = (await a.broker_addrs(broker, cluster)).values()
        return {addr: await a.runtime_info(addr) for addr in addrs}
    tables = ctx.run(go)
    ctx.out.show(tables, *(Fields(sorted(kv.items()), title=addr if len(tables) > 1 else None)
                           for addr, kv in tables.items()))


@admin_command(admin, "getBrokerConfig")
@broker_or_cluster
def get_broker_config(ctx: AdminContext, broker: str | None, cluster: str | None) -> None:
    """Get broker config by cluster or special broker (GET_BROKER_CONFIG)."""
    async def go(a: Admin) -> dict[str, dict[str, str]]:
        addrs = (await a.broker_addrs(broker, cluster)).values()
        return {addr: await a.broker_config(addr) for addr in addrs}
    configs = ctx.run(go)
    ctx.out.show(configs, *(Fields(sorted(props.items()), title=f"============{addr}============",
                                   width=50, sep="=  ") for addr, props in configs.items()))


@admin_command(admin, "updateBrokerConfig")
@broker_or_cluster
@click.option("-k", "--key", required=True)
@click.option("-v", "--value", required=True)
def update_broker_config(ctx: AdminContext, broker: str | None, cluster: str | None, key: str,
                         value: str) -> None:
    """Update broker's config (UPDATE_BROKER_CONFIG; the broker refuses a key it may not
    change at runtime)."""
    async def go(a: Admin) -> list[str]:
        addrs = list((await a.broker_addrs(broker, cluster)).values())
        for addr in addrs:
            await a.update_broker_config(addr, {key: value})
        return addrs
    addrs = ctx.run(go)
    ctx.out.show({"updated": addrs, "key": key, "value": value},
                 *(f"update broker config success, {addr}" for addr in addrs))


@admin_command(admin, "wipeWritePerm")
@click.option("-b", "--brokerName", "broker_name", required=True)
def wipe_write_perm(ctx: AdminContext, broker_name: str) -> None:
    """Wipe write perm of broker in all name server you defined in the -n param."""
    counts = ctx.run(lambda a: a.set_write_perm(broker_name, False))
    ctx.out.show(counts, *(f"wipe write perm of broker[{broker_name}] in name server[{ns}] OK, "
                           f"{n}" for ns, n in counts.items()))


@admin_command(admin, "addWritePerm")
@click.option("-b", "--brokerName", "broker_name", required=True)
def add_write_perm(ctx: AdminContext, broker_name: str) -> None:
    """Add write perm of broker in all name server you defined in the -n param."""
    counts = ctx.run(lambda a: a.set_write_perm(broker_name, True))
    ctx.out.show(counts, *(f"add write perm of broker[{broker_name}] in name server[{ns}] OK, "
                           f"{n}" for ns, n in counts.items()))


STATS_COLUMNS = (
    Column("topic", "Topic"), Column("group", "Consumer Group"),
    Column("accumulation", "Accumulation", True), Column("inTps", "InTPS", True),
    Column("outTps", "OutTPS", True), Column("inMsg24Hour", "InMsg24Hour", True),
    Column("outMsg24Hour", "OutMsg24Hour", True))


@admin_command(admin, "statsAll")
@click.option("-a", "--activeTopic", "active", is_flag=True,
              help="Only topics with messages in or out today.")
@click.option("-t", "--topic", default=None)
def stats_all(ctx: AdminContext, active: bool, topic: str | None) -> None:
    """Topic and Consumer tps stats (VIEW_BROKER_STATS_DATA TOPIC_PUT_NUMS and GROUP_GET_NUMS,
    GET_CONSUME_STATS, per topic and group)."""
    async def go(a: Admin) -> list[dict]:
        topics = [topic] if topic else [t for t in await a.topic_list()
                                        if not t.startswith(("%RETRY%", "%DLQ%"))]
        rows: list[dict] = []
        with ctx.out.progress(len(topics), "topics") as done:
            for t in topics:
                rows += await _topic_stats(a, t, active)
                done()
        return rows
    rows = ctx.run(go)
    ctx.out.show(rows, Table(STATS_COLUMNS, rows))


async def _topic_stats(a: Admin, topic: str, active: bool) -> list[dict]:
    """StatsAllSubCommand.printTopicDetail for one topic."""
    try:
        route = await a.route(topic)
    except ClientError:
        return []
    masters = [b.master_addr for b in route.broker_datas if b.master_addr]
    in_tps, in_day = await _stat_sum(a, masters, "TOPIC_PUT_NUMS", topic)
    rows = []
    for group in await a.consumed_by(topic):
        out_tps, out_day = await _stat_sum(a, masters, "GROUP_GET_NUMS", f"{topic}@{group}")
        if active and not (in_day or out_day):
            continue
        try:
            lag = (await a.consume_stats(group, topic)).total_lag
        except ClientError:
            lag = 0
        rows.append({"topic": topic, "group": group, "accumulation": lag, "inTps": in_tps,
                     "outTps": out_tps, "inMsg24Hour": in_day, "outMsg24Hour": out_day})
    if not rows and (in_day or not active):
        rows.append({"topic": topic, "group": "", "accumulation": 0, "inTps": in_tps,
                     "outTps": 0.0, "inMsg24Hour": in_day, "outMsg24Hour": 0})
    return rows


async def _stat_sum(a: Admin, addrs: list[str], name: str, key: str) -> tuple[float, int]:
    """The minute's TPS and the last 24 hours' sum of one stats item, over brokers
    (compute24HourSum: the day's sum, else the hour's, else the minute's)."""
    tps, total = 0.0, 0
    for addr in addrs:
        windows = await a.broker_stats(addr, name, key)
        if windows is None:
            continue
        tps += windows["minute"].tps
        total += next((windows[w].sum for w in ("day", "hour", "minute") if windows[w].sum), 0)
    return round(tps, 2), total
