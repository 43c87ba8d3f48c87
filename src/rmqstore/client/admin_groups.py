"""Admin of consumer and producer groups (DefaultMQAdminExtImpl of rocketmq-all-4.9.7, the calls
behind mqadmin's updateSubGroup, deleteSubGroup, consumerProgress, consumerConnection,
producerConnection, consumerStatus, resetOffsetByTime and skipAccumulatedMessage)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..protocol import RequestCode, ResponseCode, fastjson
from ..protocol.admin_bodies import (
    Connection,
    ConsumerConnection,
    DirectResult,
    RunningInfo,
    decode_consume_stats,
    decode_consumer_connection,
    decode_direct_result,
    decode_producer_connection,
    decode_reset_offset,
    decode_running_info,
)
from ..protocol.message import MessageQueue, parse_msg_id
from .admin_base import AdminBase, addr_of_host
from .broker_api import BrokerApi
from .errors import ClientError, RouteNotFound
from .message import RETRY_GROUP_TOPIC_PREFIX

RESET_TO_MAX = -1  # INVOKE_BROKER_TO_RESET_OFFSET's timestamp meaning "each queue's max offset"


@dataclass(frozen=True, slots=True)
class QueueProgress:
    """One queue of ConsumeStats.offsetTable (OffsetWrapper)."""

    queue: MessageQueue
    broker_offset: int
    consumer_offset: int
    last_timestamp_ms: int

    @property
    def lag(self) -> int:
        return max(0, self.broker_offset - self.consumer_offset)


@dataclass(slots=True)
class ConsumeProgress:
    """ConsumeStats merged over brokers; queues sorted (topic, broker, queue id)."""

    group: str
    queues: list[QueueProgress] = field(default_factory=list)
    consume_tps: float = 0.0

    @property
    def total_lag(self) -> int:
        """ConsumeStats.computeTotalDiff."""
        return sum(q.lag for q in self.queues)


class GroupAdmin(AdminBase):
    # -- subscription groups ------------------------------------------------------------------

    async def create_group(self, addr: str, config: dict) -> None:
        """UPDATE_AND_CREATE_SUBSCRIPTIONGROUP with a SubscriptionGroupConfig JSON body."""
        await self._call(addr, RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP,
                         body=fastjson.dumps(config))

    async def groups(self, addr: str) -> dict[str, dict]:
        """GET_ALL_SUBSCRIPTIONGROUP_CONFIG: group name -> SubscriptionGroupConfig."""
        resp = await self._call(addr, RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG)
        return dict(fastjson.loads(resp.body).get("subscriptionGroupTable") or {})

    async def delete_group(self, addr: str, group: str, clean_offset: bool = False) -> None:
        await self._call(addr, RequestCode.DELETE_SUBSCRIPTIONGROUP,
                         {"groupName": group, "cleanOffset": "true" if clean_offset else "false"})

    # -- progress and connections ----------------------------------------------------------------

    async def consume_stats(self, group: str, topic: str | None = None) -> ConsumeProgress:
        """GET_CONSUME_STATS at every master of ``topic`` (or, with no topic, of the group's
        retry topic, as examineConsumeStats does), merged."""
        route = await self.routes.fetch(topic or RETRY_GROUP_TOPIC_PREFIX + group)
        ext = {"consumerGroup": group, **({"topic": topic} if topic else {})}
        out = ConsumeProgress(group)
        for bd in route.broker_datas:
            if bd.master_addr is None:
                continue
            resp = await self._call(bd.master_addr, RequestCode.GET_CONSUME_STATS, ext)
            table, tps = decode_consume_stats(resp.body)
            out.queues += [QueueProgress(q, o.broker_offset, o.consumer_offset, o.last_timestamp)
                           for q, o in table.items()]
            out.consume_tps += tps
        out.queues.sort(key=lambda q: q.queue)
        return out

    async def consumer_connection(self, group: str) -> ConsumerConnection | None:
        """GET_CONSUMER_CONNECTION_LIST at a broker of the group's retry topic; None when the
        group is online nowhere."""
        for addr in await self._group_brokers(group):
            resp = await self._call(addr, RequestCode.GET_CONSUMER_CONNECTION_LIST,
                                    {"consumerGroup": group},
                                    ok=(ResponseCode.SUCCESS, ResponseCode.CONSUMER_NOT_ONLINE))
            if resp.code == ResponseCode.SUCCESS:
                return decode_consumer_connection(resp.body)
        return None

    async def consumer_connections(self, group: str) -> list[Connection]:
        cc = await self.consumer_connection(group)
        return cc.connections if cc is not None else []

    async def producer_connection(self, group: str, topic: str) -> list[Connection]:
        """GET_PRODUCER_CONNECTION_LIST at the brokers of ``topic``: [] when none knows the
        group."""
        route = await self.routes.fetch(topic)
        found: dict[str, Connection] = {}
        for bd in route.broker_datas:
            addr = bd.select_addr()
            if addr is None:
                continue
            resp = await self._call(addr, RequestCode.GET_PRODUCER_CONNECTION_LIST,
                                    {"producerGroup": group},
                                    ok=(ResponseCode.SUCCESS, ResponseCode.SYSTEM_ERROR))
            if resp.code == ResponseCode.SUCCESS:
                found.update((c.client_id, c) for c in decode_producer_connection(resp.body))
        return sorted(found.values(), key=lambda c: c.client_id)

    async def running_info(self, group: str, client_id: str,
                           jstack: bool = False) -> RunningInfo:
        """GET_CONSUMER_RUNNING_INFO, forwarded by a broker of the group to the consumer."""
        for addr in await self._group_brokers(group):
            resp = await self._call(addr, RequestCode.GET_CONSUMER_RUNNING_INFO, {
                "consumerGroup": group, "clientId": client_id,
                "jstackEnable": "true" if jstack else "false"})
            return decode_running_info(resp.body)
        raise ClientError(f"group {group} has no broker")

    async def consume_directly(self, group: str, client_id: str, msg_id: str,
                               topic: str | None = None) -> DirectResult:
        """CONSUME_MESSAGE_DIRECTLY: the consumer's listener takes one message now. ``msg_id``
        is an offset message id, or with ``topic`` the producer's id (UNIQ_KEY)."""
        offset_id = msg_id
        if topic is not None:
            msg = await self.query_by_uniq_key(topic, msg_id)  # type: ignore[attr-defined]
            if msg is None:
                raise ClientError(f"no message of {topic} with msg id {msg_id}")
            offset_id = msg.offset_msg_id
        addr = addr_of_host(parse_msg_id(offset_id)[0])
        resp = await self._call(addr, RequestCode.CONSUME_MESSAGE_DIRECTLY, {
            "consumerGroup": group, "clientId": client_id, "msgId": offset_id}, b"")
        return decode_direct_result(resp.body)

    # -- reset -------------------------------------------------------------------------------

    async def set_offset(self, group: str, mq: MessageQueue, offset: int) -> None:
        """UPDATE_CONSUMER_OFFSET of one queue (an online consumer commits over it)."""
        await BrokerApi(self._transport, self.routes).update_consumer_offset(
            group, mq, offset, oneway=False)

    async def reset_offset(self, group: str, topic: str, timestamp_ms: int,
                           force: bool = True) -> dict[MessageQueue, int]:
        """INVOKE_BROKER_TO_RESET_OFFSET at every master of ``topic`` (its online consumers are
        told and obey); where the group is not online, each queue's offset is searched by time
        and committed here (resetOffsetByTimestampOld). ``timestamp_ms`` -1: each queue's max
        offset (skipAccumulatedMessage). The new offset of every queue."""
        route = await self.routes.fetch(topic)
        out: dict[MessageQueue, int] = {}
        for bd in route.broker_datas:
            if bd.master_addr is None:
                continue
            resp = await self._call(bd.master_addr, RequestCode.INVOKE_BROKER_TO_RESET_OFFSET, {
                "topic": topic, "group": group, "timestamp": str(timestamp_ms),
                "isForce": "true" if force else "false"},
                ok=(ResponseCode.SUCCESS, ResponseCode.CONSUMER_NOT_ONLINE))
            if resp.code == ResponseCode.SUCCESS:
                out.update(decode_reset_offset(resp.body))
            else:
                out.update(await self._reset_offline(bd.master_addr, group, topic,
                                                     timestamp_ms, force))
        return dict(sorted(out.items()))

    async def _reset_offline(self, addr: str, group: str, topic: str, timestamp_ms: int,
                             force: bool) -> dict[MessageQueue, int]:
        """DefaultMQAdminExtImpl.resetOffsetByTimestampOld at one broker."""
        resp = await self._call(addr, RequestCode.GET_CONSUME_STATS,
                                {"consumerGroup": group, "topic": topic})
        table, _ = decode_consume_stats(resp.body)
        api = BrokerApi(self._transport, self.routes)
        out = {}
        for mq, o in table.items():
            if mq.topic != topic:
                continue
            target = (o.broker_offset if timestamp_ms == RESET_TO_MAX
                      else await api.search_offset(mq, timestamp_ms))
            if force or target <= o.consumer_offset:
                await api.update_consumer_offset(group, mq, target, oneway=False)
                out[mq] = target
            else:
                out[mq] = o.consumer_offset
        return out

    async def _group_brokers(self, group: str) -> list[str]:
        """Addresses of the brokers of the group's retry topic (every group member has it)."""
        try:
            route = await self.routes.fetch(RETRY_GROUP_TOPIC_PREFIX + group)
        except RouteNotFound:  # no member ever sent a heartbeat
            return []
        return [a for a in (bd.select_addr() for bd in route.broker_datas) if a is not None]
