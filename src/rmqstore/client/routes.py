"""Topic routes: GET_ROUTEINFO_BY_TOPIC (105) answers, and the cache producers and consumers read.

TopicRouteData JSON (common/.../protocol/route/, spec 2.16)::

    {"brokerDatas":[{"brokerAddrs":{"0":"127.0.0.1:10911"},"brokerName":"broker-a","cluster":"C"}],
     "queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":4,"writeQueueNums":4,
                    "topicSysFlag":0}], "orderTopicConf": "broker-a:4" (optional)}

Producers write to (brokerName, 0..writeQueueNums-1) of WRITE queues whose broker has a master
(id 0); consumers read 0..readQueueNums-1 of READ queues. A topic unknown to the NameServer
(code 17) is sent through TBW102's brokers with min(4, its queues) queues, as both official
clients do; the broker then creates it. A route is kept when a refresh fails, so a broker
restart does not empty the cache.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from ..metadata import loads_fastjson
from ..server.remoting import RequestCode, ResponseCode
from .errors import BrokerError, RouteNotFound
from .message import MessageQueue
from .transport import Transport

log = logging.getLogger(__name__)

AUTO_CREATE_TOPIC = "TBW102"
DEFAULT_TOPIC_QUEUE_NUMS = 4
MASTER_ID = 0
PERM_WRITE = 0x2
PERM_READ = 0x4
ROUTE_TIMEOUT_S = 3.0


@dataclass(frozen=True, slots=True)
class QueueData:
    broker_name: str
    read_queue_nums: int
    write_queue_nums: int
    perm: int
    topic_sys_flag: int = 0


@dataclass(frozen=True, slots=True)
class BrokerData:
    cluster: str
    broker_name: str
    broker_addrs: dict[int, str]

    @property
    def master_addr(self) -> str | None:
        return self.broker_addrs.get(MASTER_ID)

    def any_addr(self) -> str | None:
        """Master if present, else the lowest-id slave (BrokerData.selectBrokerAddr prefers master)."""
        if MASTER_ID in self.broker_addrs:
            return self.broker_addrs[MASTER_ID]
        return self.broker_addrs[min(self.broker_addrs)] if self.broker_addrs else None


@dataclass(frozen=True, slots=True)
class TopicRoute:
    queue_datas: tuple[QueueData, ...]
    broker_datas: tuple[BrokerData, ...]
    order_topic_conf: str | None = None

    @classmethod
    def from_json(cls, body: bytes) -> TopicRoute:
        obj = loads_fastjson(body.decode("utf-8"))
        qds = tuple(QueueData(q["brokerName"], int(q.get("readQueueNums", 0)),
                              int(q.get("writeQueueNums", 0)), int(q.get("perm", 6)),
                              int(q.get("topicSysFlag", 0)))
                    for q in obj.get("queueDatas") or [])
        bds = tuple(BrokerData(b.get("cluster", ""), b["brokerName"],
                               {int(k): v for k, v in (b.get("brokerAddrs") or {}).items()})
                    for b in obj.get("brokerDatas") or [])
        return cls(qds, bds, obj.get("orderTopicConf") or None)

    def broker(self, broker_name: str) -> BrokerData | None:
        return next((b for b in self.broker_datas if b.broker_name == broker_name), None)

    def publish_queues(self, topic: str, cap: int | None = None) -> list[MessageQueue]:
        """MQClientInstance.topicRouteData2TopicPublishInfo; orderTopicConf wins when present."""
        out: list[MessageQueue] = []
        if self.order_topic_conf:
            for item in self.order_topic_conf.split(";"):
                name, _, nums = item.partition(":")
                out += [MessageQueue(topic, name, i) for i in range(int(nums or 0))]
            return out
        for qd in sorted(self.queue_datas, key=lambda q: q.broker_name):
            bd = self.broker(qd.broker_name)
            if not qd.perm & PERM_WRITE or bd is None or bd.master_addr is None:
                continue
            n = qd.write_queue_nums if cap is None else min(cap, qd.write_queue_nums)
            out += [MessageQueue(topic, qd.broker_name, i) for i in range(n)]
        return out

    def subscribe_queues(self, topic: str) -> list[MessageQueue]:
        """MQClientInstance.topicRouteData2TopicSubscribeInfo, sorted as Java sorts mqAll."""
        out = [MessageQueue(topic, qd.broker_name, i)
               for qd in self.queue_datas if qd.perm & PERM_READ
               for i in range(qd.read_queue_nums)]
        return sorted(out)


@dataclass(slots=True)
class _Entry:
    route: TopicRoute
    fetched: float
    from_default: bool = False  # learnt through TBW102 (topic not created yet)


@dataclass(slots=True)
class RouteCache:
    """Routes by topic, fetched on first use and refreshed by ``refresh_all`` (every 30 s)."""

    transport: Transport
    routes: dict[str, _Entry] = field(default_factory=dict)

    async def fetch(self, topic: str, timeout_s: float = ROUTE_TIMEOUT_S) -> TopicRoute:
        """Ask a NameServer; raises RouteNotFound on code 17."""
        req = self.transport.request(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": topic})
        resp = await self.transport.invoke_namesrv(req, timeout_s)
        if resp.code == ResponseCode.TOPIC_NOT_EXIST:
            raise RouteNotFound(resp.remark or f"no route for {topic}")
        if resp.code != ResponseCode.SUCCESS:
            raise BrokerError(resp.code, resp.remark, "namesrv")
        return TopicRoute.from_json(resp.body)

    async def route(self, topic: str) -> TopicRoute:
        """The cached route, fetched if absent. Raises RouteNotFound."""
        entry = self.routes.get(topic)
        if entry is not None and not entry.from_default:
            return entry.route
        return await self.update(topic)

    async def update(self, topic: str) -> TopicRoute:
        route = await self.fetch(topic)
        self.routes[topic] = _Entry(route, time.monotonic())
        return route

    async def publish_route(self, topic: str) -> tuple[TopicRoute, list[MessageQueue]]:
        """Route and write queues for a producer, through TBW102 if the topic is unknown."""
        entry = self.routes.get(topic)
        if entry is not None and (not entry.from_default
                                  or time.monotonic() - entry.fetched < 1.0):
            cap = DEFAULT_TOPIC_QUEUE_NUMS if entry.from_default else None
            queues = entry.route.publish_queues(topic, cap)
            if queues:
                return entry.route, queues
        try:
            route = await self.update(topic)
            queues = route.publish_queues(topic)
        except RouteNotFound:
            queues = []
            if entry is not None and not entry.from_default:
                route = entry.route  # the NameServer forgot it (broker restarting): keep ours
                queues = route.publish_queues(topic)
        if not queues:
            try:
                route = await self.fetch(AUTO_CREATE_TOPIC)
            except RouteNotFound:
                raise RouteNotFound(f"No route info of this topic: {topic}") from None
            self.routes[topic] = _Entry(route, time.monotonic(), from_default=True)
            queues = route.publish_queues(topic, DEFAULT_TOPIC_QUEUE_NUMS)
            if not queues:
                raise RouteNotFound(f"No route info of this topic: {topic}")
        return route, queues

    def broker_addr(self, broker_name: str) -> str | None:
        """Master address of ``broker_name`` from any cached route."""
        for entry in self.routes.values():
            bd = entry.route.broker(broker_name)
            if bd is not None and bd.master_addr:
                return bd.master_addr
        return None

    def any_broker_addr(self, broker_name: str) -> str | None:
        for entry in self.routes.values():
            bd = entry.route.broker(broker_name)
            if bd is not None and (addr := bd.any_addr()):
                return addr
        return None

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
