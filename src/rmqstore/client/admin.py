"""Admin: look messages up, read consume progress and message traces (MQAdminImpl and
DefaultMQAdminExt of rocketmq-all-4.9.7, the parts mqadmin's queryMsgByKey, queryMsgById,
queryMsgByUniqueKey, consumerProgress and QueryMsgTraceById use).

    async with Admin(namesrv="127.0.0.1:9876") as admin:
        msgs = await admin.query_by_key("TopicA", "order-42")
        stats = await admin.consume_stats("GroupA")       # lag per queue and in total
        for rec in await admin.traces(msgs[0].msg_id): ...

Lookups by key go to every master of the topic's route (QUERY_MESSAGE) and are merged; an
offset message id names its broker itself (VIEW_MESSAGE_BY_ID goes to the ip:port inside it).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Self

from ..net import TlsClientConfig
from ..protocol import RequestCode, ResponseCode, fastjson
from ..protocol.acl_signature import Credentials
from ..protocol.message import decode_host, parse_msg_id
from .errors import BrokerError, ClientError, RouteNotFound
from .message import RETRY_GROUP_TOPIC_PREFIX, MessageExt, MessageQueue, decode_messages
from .routes import RouteCache
from .trace import TRACE_TOPIC, TraceRecord, TraceType, decode_records
from .transport import Transport

log = logging.getLogger(__name__)

UNIQUE_MSG_QUERY_FLAG = "_UNIQUE_KEY_QUERY"
DEFAULT_MAX_NUM = 32
END_OF_TIME_MS = (1 << 63) - 1  # Long.MAX_VALUE, what Java's uniq-key lookup sends


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


@dataclass(frozen=True, slots=True)
class TopicQueueStats:
    """One queue of TopicStatsTable.offsetTable (TopicOffset)."""

    queue: MessageQueue
    min_offset: int
    max_offset: int
    last_update_ms: int


@dataclass(frozen=True, slots=True)
class Connection:
    client_id: str
    client_addr: str
    language: str
    version: int


class Admin:
    """An asyncio admin client; runs on the loop that started it."""

    def __init__(self, namesrv: str | None = None, *, credentials: Credentials | None = None,
                 namesrv_domain: str | None = None, timeout_s: float = 5.0,
                 tls: TlsClientConfig | None = None) -> None:
        self.timeout_s = timeout_s
        self._transport = Transport(namesrv, credentials, namesrv_domain, tls)
        self.routes = RouteCache(self._transport)

    async def start(self) -> None:
        await self._transport.resolve_namesrv()

    async def close(self) -> None:
        await self._transport.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

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
        addr = _addr(host)
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

    # -- consume progress ----------------------------------------------------------------

    async def consume_stats(self, group: str, topic: str | None = None) -> ConsumeProgress:
        """GET_CONSUME_STATS at every master of ``topic`` (or, with no topic, of the group's
        retry topic, as examineConsumeStats does), merged."""
        route = await self.routes.fetch(topic or RETRY_GROUP_TOPIC_PREFIX + group)
        ext = {"consumerGroup": group}
        if topic:
            ext["topic"] = topic
        out = ConsumeProgress(group)
        for bd in route.broker_datas:
            if bd.master_addr is None:
                continue
            resp = await self._invoke(bd.master_addr, RequestCode.GET_CONSUME_STATS, ext)
            if resp.code != ResponseCode.SUCCESS:
                raise BrokerError(resp.code, resp.remark, bd.master_addr)
            out.queues += _parse_consume_stats(resp.body)
            out.consume_tps += float(fastjson.loads(resp.body).get("consumeTps", 0.0))
        out.queues.sort(key=lambda q: q.queue)
        return out

    async def topic_stats(self, topic: str) -> list[TopicQueueStats]:
        """GET_TOPIC_STATS_INFO at every master of ``topic``: min/max offset and the last
        store time per queue, sorted."""
        route = await self.routes.fetch(topic)
        out = []
        for bd in route.broker_datas:
            if bd.master_addr is None:
                continue
            resp = await self._invoke(bd.master_addr, RequestCode.GET_TOPIC_STATS_INFO,
                                      {"topic": topic})
            if resp.code != ResponseCode.SUCCESS:
                raise BrokerError(resp.code, resp.remark, bd.master_addr)
            for key, value in (fastjson.loads(resp.body).get("offsetTable") or {}).items():
                out.append(TopicQueueStats(_mq(key), int(value.get("minOffset", 0)),
                                           int(value.get("maxOffset", 0)),
                                           int(value.get("lastUpdateTimestamp", 0))))
        return sorted(out, key=lambda q: q.queue)

    async def consumer_connections(self, group: str, topic: str | None = None) -> list[Connection]:
        """GET_CONSUMER_CONNECTION_LIST at a broker of the group's retry topic (or ``topic``);
        [] when the group is online nowhere."""
        try:
            route = await self.routes.fetch(topic or RETRY_GROUP_TOPIC_PREFIX + group)
        except RouteNotFound:  # no member ever sent a heartbeat: no retry topic yet
            return []
        for bd in route.broker_datas:
            addr = bd.select_addr()
            if addr is None:
                continue
            resp = await self._invoke(addr, RequestCode.GET_CONSUMER_CONNECTION_LIST,
                                      {"consumerGroup": group})
            if resp.code == ResponseCode.SUCCESS:
                body = json.loads(resp.body)
                return sorted((Connection(c["clientId"], c.get("clientAddr", ""),
                                          str(c.get("language", "")), int(c.get("version", 0)))
                               for c in body.get("connectionSet") or ()),
                              key=lambda c: c.client_id)
            if resp.code != ResponseCode.CONSUMER_NOT_ONLINE:
                raise BrokerError(resp.code, resp.remark, addr)
        return []

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

    # -- internals ---------------------------------------------------------------------------

    async def _invoke(self, addr: str, code: int, ext: dict[str, str]):
        return await self._transport.invoke(addr, self._transport.request(code, ext),
                                            self.timeout_s)


def _addr(host: bytes) -> str:

    ip, port = decode_host(host)
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _parse_consume_stats(body: bytes) -> list[QueueProgress]:
    """ConsumeStats.offsetTable from fastjson's object-keyed map (protocol/fastjson.py)."""
    data = fastjson.loads(body)
    out = []
    for key, value in (data.get("offsetTable") or {}).items():
        out.append(QueueProgress(_mq(key), int(value.get("brokerOffset", 0)),
                                 int(value.get("consumerOffset", 0)),
                                 int(value.get("lastTimestamp", 0))))
    return out


def _mq(key: object) -> MessageQueue:
    """A MessageQueue from an object key as fastjson.loads gives it."""
    mq = dict(key) if isinstance(key, tuple) else {}
    return MessageQueue(str(mq.get("topic", "")), str(mq.get("brokerName", "")),
                        int(mq.get("queueId", -1)))
