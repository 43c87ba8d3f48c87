"""Consume progress and topic statistics (AdminBrokerProcessor of rocketmq-all-4.9.7):
GET_CONSUME_STATS (208), GET_TOPIC_STATS_INFO (202), GET_CONSUMER_CONNECTION_LIST (203).

Bodies are what Java's fastjson writes, so that mqadmin and the Java admin API read them: maps
keyed by MessageQueue write each key as a JSON object (see protocol/fastjson.py), bean fields in
alphabetical order.

    ConsumeStats    {"consumeTps":0.0,"offsetTable":{{"brokerName":..,"queueId":..,"topic":..}:
                     {"brokerOffset":..,"consumerOffset":..,"lastTimestamp":..}}}
    TopicStatsTable {"offsetTable":{{mq}:{"lastUpdateTimestamp":..,"maxOffset":..,"minOffset":..}}}

consumeTps is the group's GROUP_GET_NUMS over the last minute, summed over its topics
(ConsumerStatsManager's view, as the broker counts pulls: broker_stats.py).
"""

from __future__ import annotations

import logging

from ....net import RequestContext
from ....net.dispatch import Dispatcher
from ....protocol import RemotingCommand, RequestCode, ResponseCode
from ....protocol.admin_bodies import (
    Connection,
    ConsumerConnection,
    OffsetWrapper,
    TopicOffset,
    encode_consume_stats,
    encode_consumer_connection,
    encode_topic_stats,
    subscription_json,
)
from ....protocol.header_codec import decode_header
from ....protocol.headers import (
    GetConsumerConnectionListRequestHeader,
    GetConsumeStatsRequestHeader,
    GetTopicStatsInfoRequestHeader,
)
from ....protocol.message import MessageQueue
from ....store import MessageStore
from ..broker_stats import GROUP_GET_NUMS, BrokerStats
from ..topics import BrokerTopics
from .clients import ClientManager

log = logging.getLogger(__name__)


class StatsProcessor:
    def __init__(self, store: MessageStore, topics: BrokerTopics, clients: ClientManager,
                 broker_name: str, stats: BrokerStats) -> None:
        self._store = store
        self._topics = topics
        self._clients = clients
        self._broker_name = broker_name
        self._stats = stats

    def register_handlers(self, dispatcher: Dispatcher) -> None:
        dispatcher.register(RequestCode.GET_CONSUME_STATS, self.consume_stats)
        dispatcher.register(RequestCode.GET_TOPIC_STATS_INFO, self.topic_stats)
        dispatcher.register(RequestCode.GET_CONSUMER_CONNECTION_LIST, self.consumer_connections)

    async def consume_stats(self, request: RemotingCommand,
                            ctx: RequestContext) -> RemotingCommand:
        h = decode_header(GetConsumeStatsRequestHeader, request.ext_fields)
        group = h.consumer_group
        topics = [h.topic] if h.topic and h.topic.strip() else self._topics_of(group)
        info = self._clients.consumers.get(group)
        table: dict[MessageQueue, OffsetWrapper] = {}
        tps = 0.0
        for topic in topics:
            cfg = self._topics.get(topic)
            if cfg is None:
                log.warning("consumeStats, topic config not exist, %s", topic)
                continue
            # A group that is online but does not subscribe this topic is skipped (as Java).
            if info is not None and info.subscriptions and topic not in info.subscriptions:
                continue
            for qid in range(cfg.read_queue_nums):
                broker_offset = max(0, self._store.max_offset(topic, qid))
                consumer_offset = max(0, self._store.committed_offset(group, topic, qid) or 0)
                last = self._store_time(topic, qid, consumer_offset - 1) \
                    if consumer_offset > 0 else 0
                table[self._mq(topic, qid)] = OffsetWrapper(broker_offset, consumer_offset, last)
            window = self._stats.view(GROUP_GET_NUMS, f"{topic}@{group}")
            tps += window[0].tps if window is not None else 0.0
        return _ok(encode_consume_stats(table, tps))

    async def topic_stats(self, request: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
        h = decode_header(GetTopicStatsInfoRequestHeader, request.ext_fields)
        cfg = self._topics.get(h.topic)
        if cfg is None:
            return RemotingCommand.response(ResponseCode.TOPIC_NOT_EXIST,
                                            f"topic[{h.topic}] not exist")
        table: dict[MessageQueue, TopicOffset] = {}
        for qid in range(cfg.write_queue_nums):
            lo = max(0, self._store.min_offset(h.topic, qid))
            hi = max(0, self._store.max_offset(h.topic, qid))
            last = self._store_time(h.topic, qid, hi - 1) if hi > 0 else 0
            table[self._mq(h.topic, qid)] = TopicOffset(lo, hi, last)
        return _ok(encode_topic_stats(table))

    async def consumer_connections(self, request: RemotingCommand,
                                   ctx: RequestContext) -> RemotingCommand:
        h = decode_header(GetConsumerConnectionListRequestHeader, request.ext_fields)
        info = self._clients.consumers.get(h.consumer_group)
        if info is None or not info.clients:
            return RemotingCommand.response(ResponseCode.CONSUMER_NOT_ONLINE,
                                            f"the consumer group[{h.consumer_group}] not online")
        return _ok(encode_consumer_connection(ConsumerConnection(
            [Connection(c.client_id, c.channel.peer, str(c.language), c.version)
             for c in info.clients.values()],
            info.consume_type, info.message_model, info.consume_from_where,
            {t: subscription_json(t, s.sub_string, s.tags, s.sub_version, s.expression_type)
             for t, s in sorted(info.subscriptions.items())})))

    # -- helpers ------------------------------------------------------------------------

    def _mq(self, topic: str, queue_id: int) -> MessageQueue:
        return MessageQueue(topic, self._broker_name, queue_id)

    def _topics_of(self, group: str) -> list[str]:
        """ConsumerOffsetManager.whichTopicByConsumer: topics with a committed offset."""
        return sorted({t for t, g in self._store.offsets.pairs() if g == group})

    def _store_time(self, topic: str, queue_id: int, offset: int) -> int:
        """Store timestamp of the message at offset; 0 if it is gone (getMessageStoreTimeStamp)."""
        if offset < 0:
            return 0
        got = self._store.get(topic, queue_id, offset, 1)
        return got.messages[0].store_timestamp if got.messages else 0


def _ok(body: bytes) -> RemotingCommand:
    return RemotingCommand.response(ResponseCode.SUCCESS, body=body)
