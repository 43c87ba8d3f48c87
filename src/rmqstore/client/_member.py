"""What PushConsumer and LitePullConsumer share as members of a consumer group: subscriptions,
routes, heartbeats, and the rebalance loop (RebalanceImpl of rocketmq-all-4.9.7).

A rebalance runs at start, when the broker sends NOTIFY_CONSUMER_IDS_CHANGED, and every
``rebalance_interval_s``. For each subscribed topic it computes this member's queues (all of
them when broadcasting; the allocation strategy's share of the sorted queues among the sorted
member ids when clustering) and hands the set to ``_assign``, which the subclass implements.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from enum import Enum

from ..net import RequestContext, TlsClientConfig
from ..protocol import RemotingCommand, RequestCode
from ..protocol.acl_signature import Credentials
from ._lifecycle import Lifecycle
from ._tasks import TaskGroup
from .broker_api import BrokerApi, Subscription
from .errors import ClientClosed, RouteNotFound
from .ids import make_client_id
from .message import RETRY_GROUP_TOPIC_PREFIX, MessageQueue
from .rebalance import AllocateStrategy
from .routes import RouteCache, subscribe_queues
from .transport import Transport

log = logging.getLogger(__name__)


class MessageModel(Enum):
    BROADCASTING = "BROADCASTING"
    CLUSTERING = "CLUSTERING"


class ConsumeFromWhere(Enum):
    """Where a queue with no stored offset starts (ConsumeFromWhere.java)."""

    LAST_OFFSET = "CONSUME_FROM_LAST_OFFSET"
    FIRST_OFFSET = "CONSUME_FROM_FIRST_OFFSET"
    TIMESTAMP = "CONSUME_FROM_TIMESTAMP"


class GroupMember(Lifecycle):
    consume_type = "CONSUME_PASSIVELY"

    def __init__(self, group: str, namesrv: str | None, *, message_model: MessageModel,
                 consume_from_where: ConsumeFromWhere, consume_timestamp_ms: int | None,
                 allocate: AllocateStrategy, credentials: Credentials | None,
                 namesrv_domain: str | None, instance_name: str | None,
                 rebalance_interval_s: float, heartbeat_s: float, route_refresh_s: float,
                 tls: TlsClientConfig | None) -> None:
        self.group = group
        self.message_model = message_model
        self.consume_from_where = consume_from_where
        self.consume_timestamp_ms = consume_timestamp_ms or int((time.time() - 1800) * 1000)
        self.allocate = allocate
        self.client_id = make_client_id(instance_name)
        self.subscriptions: dict[str, Subscription] = {}
        self.transport = Transport(namesrv, credentials, namesrv_domain, tls)
        self.routes = RouteCache(self.transport)
        self.api = BrokerApi(self.transport, self.routes)
        self.tasks = TaskGroup()
        self._rebalance_interval_s = rebalance_interval_s
        self._heartbeat_s = heartbeat_s
        self._route_refresh_s = route_refresh_s
        self._rebalance_wanted: asyncio.Event | None = None
        self._rebalance_lock: asyncio.Lock | None = None
        self.started = False
        self.transport.serve(RequestCode.NOTIFY_CONSUMER_IDS_CHANGED, self._on_ids_changed)

    @property
    def clustering(self) -> bool:
        return self.message_model is MessageModel.CLUSTERING

    def _subscribe(self, topic: str, expression: str, expression_type: str) -> None:
        self.subscriptions[topic] = Subscription(topic, expression or "*", expression_type.upper(),
                                                 int(time.time() * 1000))

    def _with_retry_topic(self) -> None:
        """Clustering members also consume their group's retry topic (%RETRY%<group>, '*')."""
        retry = RETRY_GROUP_TOPIC_PREFIX + self.group
        if self.clustering and self.subscriptions and retry not in self.subscriptions:
            self._subscribe(retry, "*", "TAG")

    async def _start_member(self) -> None:
        await self.transport.resolve_namesrv()
        self._rebalance_wanted = asyncio.Event()
        self._rebalance_lock = asyncio.Lock()
        for topic in self.subscriptions:
            try:
                await self.routes.update(topic)
            except RouteNotFound:
                log.info("no route yet for %s", topic)
        self.started = True
        await self.heartbeat()
        self.tasks.every(self._route_refresh_s, self._refresh_routes, name="route-refresh")
        self.tasks.every(self._heartbeat_s, self.heartbeat, name="heartbeat")
        if self.transport.uses_http_namesrv:
            self.tasks.every(120.0, self.transport.refresh_namesrv_from_http, name="nsaddr")
        await self.rebalance()
        self.tasks.spawn(self._rebalance_loop(), "rebalance")

    async def _refresh_routes(self) -> None:
        before = {t: e.route for t, e in self.routes.routes.items()}
        for topic in self.subscriptions:
            try:
                await self.routes.update(topic)
            except RouteNotFound:
                pass
        await self.routes.refresh_all()
        if any(before.get(t) != e.route for t, e in self.routes.routes.items()):
            await self.heartbeat()
            self.request_rebalance()

    async def _stop_member(self) -> None:
        await self.tasks.cancel_all()
        for addr in self.routes.all_addrs():
            req = self.transport.request(RequestCode.UNREGISTER_CLIENT, {
                "clientID": self.client_id, "consumerGroup": self.group})
            try:
                await self.transport.invoke(addr, req, 1.0)
            except Exception as exc:  # noqa: BLE001 - best effort at shutdown
                log.debug("unregister at %s failed: %s", addr, exc)
        await self.transport.close()

    def _check_started(self) -> None:
        if not self.started:
            raise ClientClosed("consumer not started")

    # -- heartbeat -------------------------------------------------------------------------

    def heartbeat_body(self) -> bytes:
        return json.dumps({"clientID": self.client_id, "producerDataSet": [], "consumerDataSet": [{
            "groupName": self.group, "consumeType": self.consume_type,
            "messageModel": self.message_model.value,
            "consumeFromWhere": self.consume_from_where.value, "unitMode": False,
            "subscriptionDataSet": [s.to_json() for s in self.subscriptions.values()]}]}).encode()

    async def heartbeat(self) -> None:
        """HEART_BEAT to every broker of our routes (masters and slaves)."""
        body = self.heartbeat_body()
        for addr in self.routes.all_addrs():
            try:
                await self.transport.invoke(addr, self.transport.request(
                    RequestCode.HEART_BEAT, body=body), 3.0)
            except Exception as exc:  # noqa: BLE001
                log.info("heartbeat to %s failed: %s", addr, exc)

    # -- rebalance -------------------------------------------------------------------------

    async def _on_ids_changed(self, request: RemotingCommand,
                              ctx: RequestContext) -> RemotingCommand | None:
        log.debug("%s: consumer ids of %s changed", self.client_id, self.group)
        self.request_rebalance()
        return None

    def request_rebalance(self) -> None:
        if self._rebalance_wanted is not None:
            self._rebalance_wanted.set()

    async def _rebalance_loop(self) -> None:
        assert self._rebalance_wanted is not None
        while True:
            try:
                async with asyncio.timeout(self._rebalance_interval_s):
                    await self._rebalance_wanted.wait()
            except TimeoutError:
                pass
            self._rebalance_wanted.clear()
            try:
                await self.rebalance()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("rebalance of %s failed", self.group)

    async def rebalance(self) -> None:
        """RebalanceImpl.doRebalance: recompute this member's queues of every topic."""
        assert self._rebalance_lock is not None
        async with self._rebalance_lock:
            for topic in list(self.subscriptions):
                try:
                    route = await self.routes.route(topic)
                except RouteNotFound:
                    continue
                except Exception as exc:  # noqa: BLE001
                    log.info("route of %s unavailable: %s", topic, exc)
                    continue
                mq_all = subscribe_queues(route, topic)
                if self.clustering:
                    try:
                        cids = sorted(await self.api.consumer_ids(self.group, topic))
                    except Exception as exc:  # noqa: BLE001
                        log.info("consumer list of %s unavailable: %s", self.group, exc)
                        continue
                    if not cids:
                        continue
                    mine = self.allocate(self.client_id, mq_all, cids)
                else:
                    mine = mq_all
                await self._assign(topic, set(mine))

    async def _assign(self, topic: str, mqs: set[MessageQueue]) -> None:
        raise NotImplementedError

    async def start_offset(self, mq: MessageQueue, stored: int | None) -> int:
        """RebalancePushImpl.computePullFromWhere, given the stored offset (None = none)."""
        if stored is not None and stored >= 0:
            return stored
        if self.consume_from_where is ConsumeFromWhere.FIRST_OFFSET:
            return 0
        if mq.topic.startswith(RETRY_GROUP_TOPIC_PREFIX):
            return 0
        if self.consume_from_where is ConsumeFromWhere.TIMESTAMP:
            return await self.api.search_offset(mq, self.consume_timestamp_ms)
        return await self.api.max_offset(mq)
