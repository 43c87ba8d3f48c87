"""Topic routes: GET_ROUTEINFO_BY_TOPIC (105) answers, and the cache producers and consumers read.

TopicRouteData JSON (common/.../protocol/route/; rmqstore.protocol.route reads it)::

    {"brokerDatas":[{"brokerAddrs":{"0":"127.0.0.1:10911"},"brokerName":"broker-a","cluster":"C"}],
     "queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":4,"writeQueueNums":4,
                    "topicSysFlag":0}], "orderTopicConf": "broker-a:4" (optional)}

Producers write to (brokerName, 0..writeQueueNums-1) of WRITE queues whose broker has a master
(id 0); consumers read 0..readQueueNums-1 of READ queues. A topic unknown to the NameServer
(code 17) is sent through TBW102's brokers with min(4, its queues) queues, as both official
clients do; the broker then creates it. A route is kept when a refresh fails, so a broker
restart does not empty the cache.

Every route request asks our NameServer to push master changes (routeChangePush=true; a Java
NameServer ignores the field): on NOTIFY_ROUTE_CHANGED the routes through that broker name are
fetched again at once, so a failover is seen in milliseconds rather than at the next 30 s
refresh (route_push.py keeps the subscriptions).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from ..net import RequestContext
from ..protocol import RemotingCommand, RequestCode, ResponseCode
from ..protocol.route import MASTER_ID, BrokerData, TopicRouteData, decode_topic_route
from .errors import BrokerError, RouteNotFound
from .message import MessageQueue
from .route_push import RoutePushSubscriptions
from .transport import Transport

log = logging.getLogger(__name__)

AUTO_CREATE_TOPIC = "TBW102"
DEFAULT_TOPIC_QUEUE_NUMS = 4
PERM_WRITE = 0x2
PERM_READ = 0x4
ROUTE_TIMEOUT_S = 3.0
SUBSCRIBE_EVERY_S = 30.0  # route-change subscriptions renewed at every NameServer


def publish_queues(route: TopicRouteData, topic: str, cap: int | None = None) -> list[MessageQueue]:
    """MQClientInstance.topicRouteData2TopicPublishInfo; orderTopicConf wins when present."""
    out: list[MessageQueue] = []
    if route.order_topic_conf:
        for item in route.order_topic_conf.split(";"):
            name, _, nums = item.partition(":")
            out += [MessageQueue(topic, name, i) for i in range(int(nums or 0))]
        return out
    for qd in sorted(route.queue_datas, key=lambda q: q.broker_name):
        bd = route.broker(qd.broker_name)
        if not qd.perm & PERM_WRITE or bd is None or bd.master_addr is None:
            continue
        n = qd.write_queue_nums if cap is None else min(cap, qd.write_queue_nums)
        out += [MessageQueue(topic, qd.broker_name, i) for i in range(n)]
    return out


def subscribe_queues(route: TopicRouteData, topic: str) -> list[MessageQueue]:
    """MQClientInstance.topicRouteData2TopicSubscribeInfo, sorted as Java sorts mqAll."""
    out = [MessageQueue(topic, qd.broker_name, i)
           for qd in route.queue_datas if qd.perm & PERM_READ
           for i in range(qd.read_queue_nums)]
    return sorted(out)


@dataclass(slots=True)
class _Entry:
    route: TopicRouteData
    fetched: float
    from_default: bool = False  # learnt through TBW102 (topic not created yet)
    # Made from the route once, not per send (an entry is replaced when its route is).
    brokers: dict[str, BrokerData] = field(default_factory=dict)
    publish: dict[int | None, list[MessageQueue]] = field(default_factory=dict)  # by cap

    def __post_init__(self) -> None:
        for bd in reversed(self.route.broker_datas):  # the first of a name, as route.broker
            self.brokers[bd.broker_name] = bd

    def publish_queues(self, topic: str, cap: int | None) -> list[MessageQueue]:
        """publish_queues(route, topic, cap), shared by every send: never modified."""
        queues = self.publish.get(cap)
        if queues is None:
            queues = self.publish[cap] = publish_queues(self.route, topic, cap)
        return queues


class _Routes(dict[str, _Entry]):
    """topic -> _Entry, counting its changes (``changes``): what is made from all the routes
    (the brokers' table) is made again after one, whoever changed it."""

    __slots__ = ("changes",)

    def __init__(self) -> None:
        super().__init__()
        self.changes = 0

    def __setitem__(self, topic: str, entry: _Entry) -> None:
        super().__setitem__(topic, entry)
        self.changes += 1

    def __delitem__(self, topic: str) -> None:
        super().__delitem__(topic)
        self.changes += 1

    def pop(self, *args):  # type: ignore[no-untyped-def, override]
        self.changes += 1
        return super().pop(*args)

    def popitem(self) -> tuple[str, _Entry]:
        self.changes += 1
        return super().popitem()

    def setdefault(self, topic: str, entry: _Entry) -> _Entry:  # type: ignore[override]
        self.changes += 1
        return super().setdefault(topic, entry)

    def update(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def, override]
        self.changes += 1
        super().update(*args, **kwargs)

    def clear(self) -> None:
        self.changes += 1
        super().clear()

    def __ior__(self, other):  # type: ignore[no-untyped-def, override]
        self.changes += 1
        return super().__ior__(other)


@dataclass(slots=True)
class RouteCache:
    """Routes by topic, fetched on first use and refreshed by ``refresh_all`` (every 30 s)."""

    transport: Transport
    routes: _Routes = field(default_factory=_Routes)
    _subscribed_at: float = -1e9
    _push: RoutePushSubscriptions = field(init=False)
    # broker name -> its BrokerData in the most recently fetched route naming it, made again
    # when the routes change (at ``_brokers_at`` changes): a send looks its broker up here,
    # not through every cached route (47 us a send with 1,000 topics cached)
    _brokers: dict[str, BrokerData] = field(default_factory=dict)
    _brokers_at: int = -1

    def __post_init__(self) -> None:
        self.transport.serve(RequestCode.NOTIFY_ROUTE_CHANGED, self._on_route_changed)
        self._push = RoutePushSubscriptions(self.transport,
                                            lambda: next(iter(self.routes), None))

    async def _on_route_changed(self, request: RemotingCommand,
                                ctx: RequestContext) -> None:
        """NOTIFY_ROUTE_CHANGED: refetch every route through that broker name."""
        name = request.ext_fields.get("brokerName")
        old = self.broker_addr(name) if name is not None else None
        # the NameServer that pushed knows the new master and is reachable; the one asked so
        # far may be on the deposed master's side of a partition (a 3 s timeout each fetch)
        self.transport.prefer_namesrv(ctx.peer)
        for topic, entry in list(self.routes.items()):
            if name is None or entry.route.broker(name) is not None:
                try:
                    await self.update(topic)
                except Exception as exc:  # noqa: BLE001 - the periodic refresh comes anyway
                    log.info("route of %s after a master change: %s", topic, exc)
        if old is not None and name is not None and self.broker_addr(name) != old:
            # requests still waiting on the deposed master fail now, and are retried
            await self.transport.remoting.drop(old)
        return None

    async def fetch(self, topic: str, timeout_s: float = ROUTE_TIMEOUT_S) -> TopicRouteData:
        """Ask a NameServer; raises RouteNotFound on code 17."""
        req = self.transport.request(RequestCode.GET_ROUTEINFO_BY_TOPIC,
                                     {"topic": topic, "routeChangePush": "true"})
        resp = await self.transport.invoke_namesrv(req, timeout_s)
        if resp.code == ResponseCode.TOPIC_NOT_EXIST:
            raise RouteNotFound(resp.remark or f"no route for {topic}")
        if resp.code != ResponseCode.SUCCESS:
            raise BrokerError(resp.code, resp.remark, "namesrv")
        return decode_topic_route(resp.body)

    async def route(self, topic: str) -> TopicRouteData:
        """The cached route, fetched if absent. Raises RouteNotFound."""
        entry = self.routes.get(topic)
        if entry is not None and not entry.from_default:
            return entry.route
        return await self.update(topic)

    async def update(self, topic: str) -> TopicRouteData:
        route = await self.fetch(topic)
        self.routes[topic] = _Entry(route, time.monotonic())
        if time.monotonic() - self._subscribed_at > SUBSCRIBE_EVERY_S:
            self._subscribed_at = time.monotonic()
            asyncio.get_running_loop().create_task(self._push.subscribe_everywhere(topic))
        return route

    def cached_publish_queues(self, topic: str) -> list[MessageQueue] | None:
        """publish_route's queues when the cache answers alone (a send's common case, without
        a coroutine); None when publish_route must be awaited."""
        entry = self.routes.get(topic)
        if entry is None or entry.from_default:
            return None
        return entry.publish_queues(topic, None) or None

    async def publish_route(self, topic: str) -> tuple[TopicRouteData, list[MessageQueue]]:
        """Route and write queues for a producer, through TBW102 if the topic is unknown. The
        list may be the cache's own: callers copy it before anything could modify it."""
        entry = self.routes.get(topic)
        if entry is not None and (not entry.from_default
                                  or time.monotonic() - entry.fetched < 1.0):
            cap = DEFAULT_TOPIC_QUEUE_NUMS if entry.from_default else None
            queues = entry.publish_queues(topic, cap)
            if queues:
                return entry.route, queues
        try:
            route = await self.update(topic)
            queues = publish_queues(route, topic)
        except RouteNotFound:
            queues = []
            if entry is not None and not entry.from_default:
                route = entry.route  # the NameServer forgot it (broker restarting): keep ours
                queues = publish_queues(route, topic)
        if not queues:
            try:
                route = await self.fetch(AUTO_CREATE_TOPIC)
            except RouteNotFound:
                raise RouteNotFound(f"No route info of this topic: {topic}") from None
            self.routes[topic] = _Entry(route, time.monotonic(), from_default=True)
            queues = publish_queues(route, topic, DEFAULT_TOPIC_QUEUE_NUMS)
            if not queues:
                raise RouteNotFound(f"No route info of this topic: {topic}")
        return route, queues

    def broker_data(self, broker_name: str) -> BrokerData | None:
        """The broker's members as the most recently fetched route names them (the client's
        brokerAddrTable, which every route update overwrites)."""
        if self._brokers_at != self.routes.changes:
            newest: dict[str, tuple[float, BrokerData]] = {}
            for entry in self.routes.values():
                for name, bd in entry.brokers.items():
                    if entry.fetched > newest.get(name, (-1.0, bd))[0]:
                        newest[name] = (entry.fetched, bd)
            self._brokers = {name: bd for name, (_, bd) in newest.items()}
            self._brokers_at = self.routes.changes
        return self._brokers.get(broker_name)

    def broker_addr(self, broker_name: str) -> str | None:
        """Master address of ``broker_name`` (None while it has none)."""
        bd = self.broker_data(broker_name)
        return bd.master_addr if bd is not None else None

    def any_broker_addr(self, broker_name: str) -> str | None:
        """The master, else a slave (findBrokerAddressInAdmin): where offsets go."""
        bd = self.broker_data(broker_name)
        return bd.select_addr() if bd is not None else None

    def pull_addr(self, broker_name: str, broker_id: int) -> tuple[str, int] | None:
        """(address, broker id) to pull from, given the id the broker last suggested
        (findBrokerAddressInSubscribe): that one, else for a slave id the next one, else the
        master or the lowest-numbered slave there is."""
        bd = self.broker_data(broker_name)
        if bd is None or not bd.broker_addrs:
            return None
        addrs = bd.broker_addrs
        for want in (broker_id, broker_id + 1) if broker_id != MASTER_ID else (broker_id,):
            if want in addrs:
                return addrs[want], want
        first = min(addrs)
        return addrs[first], first

    def master_addrs(self) -> set[str]:
        """Every master address in the cache (producers heartbeat to these)."""
        return {bd.master_addr for e in self.routes.values() for bd in e.route.broker_datas
                if bd.master_addr}

    def all_addrs(self) -> set[str]:
        """Every broker address, masters and slaves (consumers heartbeat to these)."""
        return {a for e in self.routes.values() for bd in e.route.broker_datas
                for a in bd.broker_addrs.values()}

    async def refresh_all(self) -> None:
        """Refetch every cached topic (MQClientInstance.updateTopicRouteInfoFromNameServer);
        failures keep the old route."""
        for topic in list(self.routes):
            try:
                await self.update(topic)
            except RouteNotFound:
                pass
            except Exception as exc:  # noqa: BLE001 - a timer must survive a bad round
                log.info("route refresh of %s failed: %s", topic, exc)
