"""Consumer-side broker requests (MQClientAPIImpl of rocketmq-all-4.9.7): pull, offsets,
group membership, queue locks and send-back, over a Transport + RouteCache.

Pulls go where the queue's broker last suggested (suggestWhichBrokerId, PullAPIWrapper's
pullFromWhichNodeTable): the master, or a slave when the master says the consumer is far
behind; when the one suggested is not in the route (a master gone) to the master or a slave
that is. A pull that fails, or that goes elsewhere than suggested, refreshes the topic's route
(at most every ROUTE_RETRY_S), so a consumer moves to a slave when its master dies and back
when it returns without waiting for the 30 s refresh. Offsets go to the master, else a slave
(findBrokerAddressInAdmin); locks to the master only.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from enum import Enum

from ..protocol import RequestCode, ResponseCode
from ..protocol.admin_bodies import subscription_json
from ..protocol.route import MASTER_ID
from .errors import BrokerError
from .message import (
    PROP_MAX_OFFSET,
    PROP_MIN_OFFSET,
    PROP_RETRY_TOPIC,
    RETRY_GROUP_TOPIC_PREFIX,
    MessageExt,
    MessageQueue,
    decode_messages,
)
from .routes import RouteCache
from .transport import Transport, is_network_error

log = logging.getLogger(__name__)

# PullSysFlag
FLAG_COMMIT_OFFSET = 0x1
FLAG_SUSPEND = 0x2
FLAG_SUBSCRIPTION = 0x4
FLAG_LITE_PULL_MESSAGE = 0x10
ROUTE_RETRY_S = 3.0  # a topic's route is fetched again at most this often for a pull


class PullStatus(Enum):
    FOUND = 0
    NO_NEW_MSG = 19
    NO_MATCHED_MSG = 20
    OFFSET_ILLEGAL = 21


@dataclass(slots=True)
class PullResult:
    status: PullStatus
    next_begin_offset: int
    min_offset: int
    max_offset: int
    messages: list[MessageExt]


@dataclass(frozen=True, slots=True)
class Subscription:
    """A topic subscription: ``expression`` is ``*``, ``TagA || TagB`` or an SQL92 text."""

    topic: str
    expression: str = "*"
    expression_type: str = "TAG"
    version: int = 0  # ms timestamp, SubscriptionData.subVersion

    @property
    def tags(self) -> frozenset[str]:
        if self.expression_type.upper() != "TAG":
            return frozenset()
        tags = frozenset(t.strip() for t in self.expression.split("||") if t.strip())
        return frozenset() if "*" in tags else tags

    def matches(self, msg: MessageExt) -> bool:
        """Client-side re-filter by tag string (PullAPIWrapper.processPullResult)."""
        tags = self.tags
        return not tags or (msg.tags or "") in tags

    def to_json(self) -> dict[str, object]:
        return subscription_json(self.topic, self.expression, self.tags, self.version,
                                 self.expression_type)


class BrokerApi:
    def __init__(self, transport: Transport, routes: RouteCache) -> None:
        self.transport = transport
        self.routes = routes
        self._pull_from: dict[MessageQueue, int] = {}  # the broker id each queue's broker suggested
        self._route_asked: dict[str, float] = {}  # topic -> when a pull last refetched its route

    async def addr(self, mq: MessageQueue, *, master: bool = True) -> str:
        """The broker address of ``mq`` (route fetched if needed)."""
        find = self.routes.broker_addr if master else self.routes.any_broker_addr
        addr = find(mq.broker_name)
        if addr is None:
            await self.routes.update(mq.topic)
            addr = find(mq.broker_name)
        if addr is None:
            raise BrokerError(-1, f"the broker[{mq.broker_name}] not exist")
        return addr

    async def _call(self, addr: str, code: int, ext: dict[str, str], body: bytes = b"",
                    timeout_s: float = 3.0):
        return await self.transport.invoke(addr, self.transport.request(code, ext, body), timeout_s)

    async def pull(self, group: str, mq: MessageQueue, offset: int, sub: Subscription, *,
                   max_nums: int, sys_flag: int, commit_offset: int, suspend_ms: int,
                   timeout_s: float) -> PullResult:
        """PULL_MESSAGE; messages decoded, re-filtered by tag, retry topics restored."""
        addr = await self._pull_addr(mq)
        ext = {"consumerGroup": group, "topic": mq.topic, "queueId": str(mq.queue_id),
               "queueOffset": str(offset), "maxMsgNums": str(max_nums), "sysFlag": str(sys_flag),
               "commitOffset": str(commit_offset), "suspendTimeoutMillis": str(suspend_ms),
               "subscription": sub.expression, "subVersion": str(sub.version),
               "expressionType": sub.expression_type}
        try:
            resp = await self._call(addr, RequestCode.PULL_MESSAGE, ext, timeout_s=timeout_s)
        except Exception as exc:
            if is_network_error(exc):  # the broker may be gone: ask where it is now
                await self._route_again(mq.topic)
            raise
        if resp.code not in (0, 19, 20, 21):
            raise BrokerError(resp.code, resp.remark, addr)
        e = resp.ext_fields
        self._pull_from[mq] = int(e.get("suggestWhichBrokerId", MASTER_ID))
        result = PullResult(PullStatus(resp.code), int(e.get("nextBeginOffset", offset)),
                            int(e.get("minOffset", 0)), int(e.get("maxOffset", 0)), [])
        if result.status is PullStatus.FOUND:
            msgs = decode_messages(resp.body, mq.broker_name)
            for m in msgs:
                m.properties[PROP_MIN_OFFSET] = str(result.min_offset)
                m.properties[PROP_MAX_OFFSET] = str(result.max_offset)
                retry_topic = m.properties.get(PROP_RETRY_TOPIC)
                if retry_topic and m.topic.startswith(RETRY_GROUP_TOPIC_PREFIX):
                    m.topic = retry_topic
            result.messages = [m for m in msgs if sub.matches(m)
                               or m.topic != sub.topic]  # retried messages: always deliver
        return result

    async def _pull_addr(self, mq: MessageQueue) -> str:
        want = self._pull_from.get(mq, MASTER_ID)
        found = self.routes.pull_addr(mq.broker_name, want)
        if found is None or found[1] != want:
            await self._route_again(mq.topic)
            found = self.routes.pull_addr(mq.broker_name, want) or found
        if found is None:
            raise BrokerError(-1, f"the broker[{mq.broker_name}] not exist")
        return found[0]

    async def _route_again(self, topic: str) -> None:
        now = time.monotonic()
        if now - self._route_asked.get(topic, 0.0) < ROUTE_RETRY_S:
            return
        self._route_asked[topic] = now
        try:
            await self.routes.update(topic)
        except Exception as exc:  # noqa: BLE001 - the cached route stays
            log.info("route of %s not refreshed: %s", topic, exc)

    async def query_consumer_offset(self, group: str, mq: MessageQueue) -> int | None:
        """QUERY_CONSUMER_OFFSET at the master, else a slave; None when it has none
        (code 22)."""
        addr = await self.addr(mq, master=False)
        resp = await self._call(addr, RequestCode.QUERY_CONSUMER_OFFSET, {
            "consumerGroup": group, "topic": mq.topic, "queueId": str(mq.queue_id)})
        if resp.code == ResponseCode.QUERY_NOT_FOUND:
            return None
        if resp.code != ResponseCode.SUCCESS:
            raise BrokerError(resp.code, resp.remark, addr)
        return int(resp.ext_fields["offset"])

    async def update_consumer_offset(self, group: str, mq: MessageQueue, offset: int, *,
                                     oneway: bool) -> None:
        """UPDATE_CONSUMER_OFFSET at the master, else a slave: oneway on the timer (as Java),
        two-way when a queue is handed over so that the next owner reads it."""
        addr = await self.addr(mq, master=False)
        req = self.transport.request(RequestCode.UPDATE_CONSUMER_OFFSET, {
            "consumerGroup": group, "topic": mq.topic, "queueId": str(mq.queue_id),
            "commitOffset": str(offset)})
        if oneway:
            await self.transport.invoke_oneway(addr, req)
            return
        resp = await self.transport.invoke(addr, req, 3.0)
        if resp.code != ResponseCode.SUCCESS:
            raise BrokerError(resp.code, resp.remark, addr)

    async def _offset_query(self, code: int, mq: MessageQueue,
                            extra: dict[str, str] | None = None) -> int:
        addr = await self.addr(mq)
        resp = await self._call(addr, code, {"topic": mq.topic, "queueId": str(mq.queue_id),
                                             **(extra or {})})
        if resp.code != ResponseCode.SUCCESS:
            raise BrokerError(resp.code, resp.remark, addr)
        return int(resp.ext_fields.get("offset", 0))

    async def max_offset(self, mq: MessageQueue) -> int:
        return await self._offset_query(RequestCode.GET_MAX_OFFSET, mq)

    async def min_offset(self, mq: MessageQueue) -> int:
        return await self._offset_query(RequestCode.GET_MIN_OFFSET, mq)

    async def search_offset(self, mq: MessageQueue, timestamp_ms: int) -> int:
        return await self._offset_query(RequestCode.SEARCH_OFFSET_BY_TIMESTAMP, mq,
                                        {"timestamp": str(timestamp_ms)})

    async def consumer_ids(self, group: str, topic: str) -> list[str]:
        """GET_CONSUMER_LIST_BY_GROUP at one broker of ``topic``; [] if it knows none."""
        route = await self.routes.route(topic)
        for bd in route.broker_datas:
            addr = bd.select_addr()
            if addr is None:
                continue
            resp = await self._call(addr, RequestCode.GET_CONSUMER_LIST_BY_GROUP,
                                    {"consumerGroup": group})
            if resp.code == ResponseCode.SUCCESS:
                return list(json.loads(resp.body or b"{}").get("consumerIdList") or [])
            log.info("consumer list of %s from %s: %s %s", group, addr, resp.code, resp.remark)
            return []
        return []

    async def lock_batch(self, group: str, client_id: str,
                         mqs: list[MessageQueue]) -> set[MessageQueue]:
        """LOCK_BATCH_MQ at the master of ``mqs`` (all of one broker); the queues now ours."""
        if not mqs:
            return set()
        addr = await self.addr(mqs[0])
        body = json.dumps({"clientId": client_id, "consumerGroup": group, "mqSet": [
            {"brokerName": m.broker_name, "queueId": m.queue_id, "topic": m.topic}
            for m in mqs]}).encode()
        resp = await self._call(addr, RequestCode.LOCK_BATCH_MQ, {}, body)
        if resp.code != ResponseCode.SUCCESS:
            raise BrokerError(resp.code, resp.remark, addr)
        got = json.loads(resp.body or b"{}").get("lockOKMQSet") or []
        return {MessageQueue(m["topic"], m["brokerName"], int(m["queueId"])) for m in got}

    async def unlock_batch(self, group: str, client_id: str, mqs: list[MessageQueue]) -> None:
        if not mqs:
            return
        addr = await self.addr(mqs[0])
        body = json.dumps({"clientId": client_id, "consumerGroup": group, "mqSet": [
            {"brokerName": m.broker_name, "queueId": m.queue_id, "topic": m.topic}
            for m in mqs]}).encode()
        resp = await self._call(addr, RequestCode.UNLOCK_BATCH_MQ, {}, body)
        if resp.code != ResponseCode.SUCCESS:
            raise BrokerError(resp.code, resp.remark, addr)

    async def send_back(self, group: str, msg: MessageExt, delay_level: int,
                        max_reconsume_times: int) -> None:
        """CONSUMER_SEND_MSG_BACK to the message's broker; raises BrokerError (code 3 when the
        broker does not serve it)."""
        addr = self.routes.broker_addr(msg.broker_name) or msg.store_addr
        resp = await self._call(addr, RequestCode.CONSUMER_SEND_MSG_BACK, {
            "offset": str(msg.commitlog_offset), "group": group, "delayLevel": str(delay_level),
            "originMsgId": msg.msg_id, "originTopic": msg.topic, "unitMode": "false",
            "maxReconsumeTimes": str(max_reconsume_times)})
        if resp.code != ResponseCode.SUCCESS:
            raise BrokerError(resp.code, resp.remark, addr)
