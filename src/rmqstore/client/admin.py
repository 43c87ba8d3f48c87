"""Admin: what mqadmin does, from Python (MQAdminImpl and DefaultMQAdminExt of
rocketmq-all-4.9.7): messages by key, id and trace here; brokers and topics in
admin_cluster.py; groups, progress, connections and offset resets in admin_groups.py.

    async with Admin(namesrv="127.0.0.1:9876") as admin:
        msgs = await admin.query_by_key("TopicA", "order-42")
        stats = await admin.consume_stats("GroupA")       # lag per queue and in total
        for rec in await admin.traces(msgs[0].msg_id): ...
        await admin.reset_offset("GroupA", "TopicA", timestamp_ms)

Lookups by key go to every master of the topic's route (QUERY_MESSAGE) and are merged; an
offset message id names its broker itself (VIEW_MESSAGE_BY_ID goes to the ip:port inside it).
"""

from __future__ import annotations

import asyncio
import logging

from ..protocol import RequestCode, ResponseCode
from ..protocol.message import parse_msg_id
from .admin_base import addr_of_host
from .admin_cluster import ClusterAdmin
from .admin_groups import ConsumeProgress, GroupAdmin, QueueProgress
from .broker_api import FLAG_SUBSCRIPTION, BrokerApi, PullResult, Subscription
from .errors import BrokerError, ClientError
from .message import MessageExt, MessageQueue, decode_messages
from .trace import TRACE_TOPIC, TraceRecord, TraceType, decode_records

log = logging.getLogger(__name__)

UNIQUE_MSG_QUERY_FLAG = "_UNIQUE_KEY_QUERY"
DEFAULT_MAX_NUM = 32
END_OF_TIME_MS = (1 << 63) - 1  # Long.MAX_VALUE, what Java's uniq-key lookup sends
TOOLS_CONSUMER = "TOOLS_CONSUMER"  # MixAll.TOOLS_CONSUMER_GROUP


class Admin(ClusterAdmin, GroupAdmin):
    """An asyncio admin client (mqadmin's calls); runs on the loop that started it."""

    # -- messages ------------------------------------------------------------------------

    async def query_by_key(self, topic: str, key: str, begin_ms: int = 0,
                           end_ms: int | None = None, max_num: int = DEFAULT_MAX_NUM
                           ) -> list[MessageExt]:
        """Messages of ``topic`` whose KEYS hold ``key``, stored within [begin_ms, end_ms]
        (default: no upper bound), oldest first; at most ``max_num`` per broker."""
        end_ms = END_OF_TIME_MS if end_ms is None else end_ms
        found = await self._query(topic, key, begin_ms, end_ms, max_num, uniq=False)
        return [m for m in found if key in (m.keys or "").split(" ")]

    async def query_by_uniq_key(self, topic: str, msg_id: str) -> MessageExt | None:
        """The message whose UNIQ_KEY (the producer's msg id) is ``msg_id``, or None
        (MQAdminImpl.queryMessageByUniqKey: all time, the broker's max count)."""
        found = await self._query(topic, msg_id, 0, END_OF_TIME_MS, DEFAULT_MAX_NUM, uniq=True)
        hits = [m for m in found if m.msg_id == msg_id]
        return hits[0] if hits else None

    async def view_by_offset_id(self, offset_msg_id: str) -> MessageExt:
        """The message an offset message id points at (VIEW_MESSAGE_BY_ID at the broker inside
        the id). Raises ValueError for a malformed id, BrokerError when the broker has none."""
        host, offset = parse_msg_id(offset_msg_id)
        addr = addr_of_host(host)
        resp = await self._invoke(addr, RequestCode.VIEW_MESSAGE_BY_ID, {"offset": str(offset)})
        if resp.code != ResponseCode.SUCCESS:
            raise BrokerError(resp.code, resp.remark, addr)
        msgs = decode_messages(resp.body)
        if not msgs:
            raise BrokerError(resp.code, "empty answer", addr)
        return msgs[0]

    async def _query(self, topic: str, key: str, begin_ms: int, end_ms: int, max_num: int,
                     *, uniq: bool) -> list[MessageExt]:
        route = await self.routes.fetch(topic)
        ext = {"topic": topic, "key": key, "maxNum": str(max_num),
               "beginTimestamp": str(begin_ms), "endTimestamp": str(end_ms)}
        if uniq:
            ext[UNIQUE_MSG_QUERY_FLAG] = "true"
        targets = [(bd.broker_name, bd.select_addr()) for bd in route.broker_datas]
        answers = await asyncio.gather(*(self._invoke(addr, RequestCode.QUERY_MESSAGE, ext)
                                         for _, addr in targets if addr is not None),
                                       return_exceptions=True)
        found: list[MessageExt] = []
        errors = []
        reached = [t for t in targets if t[1] is not None]
        for (name, addr), resp in zip(reached, answers, strict=True):
            if isinstance(resp, BaseException):
                errors.append(resp)
                log.info("QUERY_MESSAGE at %s failed: %s", addr, resp)
            elif resp.code == ResponseCode.SUCCESS:
                found += decode_messages(resp.body, name)
            elif resp.code != ResponseCode.QUERY_NOT_FOUND:
                errors.append(BrokerError(resp.code, resp.remark, addr or ""))
        if errors and not found and len(errors) == len(answers):
            raise ClientError(f"query of {topic}#{key} failed everywhere: {errors[0]}") \
                from errors[0]
        found.sort(key=lambda m: (m.store_timestamp, m.broker_name, m.commitlog_offset))
        return found

    # -- reading queues (mqadmin queryMsgByOffset, printMsg, consumeMessage) --------------------

    async def pull(self, mq: MessageQueue, offset: int, max_nums: int = 32,
                   expression: str = "*") -> PullResult:
        """PULL_MESSAGE as the tools group (TOOLS_CONSUMER), which commits nothing."""
        return await self._api.pull(TOOLS_CONSUMER, mq, offset, Subscription(mq.topic, expression),
                                    max_nums=max_nums, sys_flag=FLAG_SUBSCRIPTION,
                                    commit_offset=0, suspend_ms=0, timeout_s=self.timeout_s)

    async def queue_bounds(self, mq: MessageQueue) -> tuple[int, int]:
        """GET_MIN_OFFSET and GET_MAX_OFFSET of one queue."""
        return await self._api.min_offset(mq), await self._api.max_offset(mq)

    async def offset_at(self, mq: MessageQueue, timestamp_ms: int) -> int:
        """SEARCH_OFFSET_BY_TIMESTAMP."""
        return await self._api.search_offset(mq, timestamp_ms)

    async def message_track(self, msg: MessageExt) -> list[dict[str, str]]:
        """Has each group of the message's topic consumed it (DefaultMQAdminExtImpl.
        messageTrackDetail)? CONSUMED, NOT_CONSUME_YET or NOT_ONLINE, by group."""
        out = []
        broker = msg.broker_name or await self._broker_name_of(msg.topic, msg.store_addr)
        mq = MessageQueue(msg.topic, broker, msg.queue_id)
        for group in await self.consumed_by(msg.topic):
            if await self.consumer_connection(group) is None:
                out.append({"consumerGroup": group, "trackType": "NOT_ONLINE"})
                continue
            stats = await self.consume_stats(group, msg.topic)
            offset = next((q.consumer_offset for q in stats.queues if q.queue == mq), 0)
            out.append({"consumerGroup": group, "trackType": "CONSUMED"
                        if offset > msg.queue_offset else "NOT_CONSUME_YET"})
        return out

    async def _broker_name_of(self, topic: str, addr: str) -> str:
        """The name of the broker of ``topic`` at ``addr`` (a message read by its offset id
        knows only where it is stored)."""
        route = await self.routes.fetch(topic)
        return next((b.broker_name for b in route.broker_datas
                     if addr in b.broker_addrs.values()), "")

    @property
    def _api(self) -> BrokerApi:
        return BrokerApi(self._transport, self.routes)

    # -- traces ----------------------------------------------------------------------------

    async def traces(self, msg_id: str, trace_topic: str = TRACE_TOPIC,
                     max_num: int = 64) -> list[TraceRecord]:
        """The trace records of the message whose msg id (UNIQ_KEY) is ``msg_id``: Pub first,
        then consumption records by time (QueryMsgTraceByIdSubCommand)."""
        found = await self.query_by_key(trace_topic, msg_id, 0, None, max_num)
        records = [r for m in found for r in decode_records(m.body) if r.msg_id == msg_id]
        order = {TraceType.PUB: 0, TraceType.SUB_BEFORE: 1, TraceType.SUB_AFTER: 2,
                 TraceType.END_TRANSACTION: 1}
        records.sort(key=lambda r: (order[r.type] != 0, r.timestamp_ms, order[r.type]))
        return records


__all__ = ["Admin", "ConsumeProgress", "QueueProgress"]
