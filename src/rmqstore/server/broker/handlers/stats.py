"""Consume progress and topic statistics (AdminBrokerProcessor of rocketmq-all-4.9.7):
GET_CONSUME_STATS (208), GET_TOPIC_STATS_INFO (202), GET_CONSUMER_CONNECTION_LIST (203).

Bodies are what Java's fastjson writes, so that mqadmin and the Java admin API read them: maps
keyed by MessageQueue write each key as a JSON object (see protocol/fastjson.py), bean fields in
alphabetical order.

    ConsumeStats    {"consumeTps":0.0,"offsetTable":{{"brokerName":..,"queueId":..,"topic":..}:
                     {"brokerOffset":..,"consumerOffset":..,"lastTimestamp":..}}}
    TopicStatsTable {"offsetTable":{{mq}:{"lastUpdateTimestamp":..,"maxOffset":..,"minOffset":..}}}

consumeTps is the group's messages pulled per second over the last minute (stats.History);
the offsets come from stats.ConsumeProgress, which the metrics and the dashboard read too.
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
from ..stats import Statistics
from ..topics import BrokerTopics
from .clients import ClientManager

log = logging.getLogger(__name__)


class StatsProcessor:
    def __init__(self, store: MessageStore, topics: BrokerTopics, clients: ClientManager,
                 broker_name: str, stats: Statistics | None = None) -> None:
        self._store = store
        self._stats = stats or Statistics(store, topics, clients)
        self._progress = self._stats.progress
        self._topics = topics
        self._clients = clients
        self._broker_name = broker_name

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
        for topic in topics:
            cfg = self._topics.get(topic)
            if cfg is None:
                log.warning("consumeStats, topic config not exist, %s", topic)
                continue
            # A group that is online but does not subscribe this topic is skipped (as Java).
            if info is not None and info.subscriptions and topic not in info.subscriptions:
                continue
            for p in self._progress.queues(group, topic, cfg.read_queue_nums):
                table[self._mq(topic, p.queue_id)] = OffsetWrapper(
                    p.broker_offset, p.consumer_offset, p.last_timestamp_ms)
        tps = self._stats.history.group_tps().get(group, 0.0)
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
            last = self._progress.store_time(h.topic, qid, hi - 1) if hi > 0 else 0
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
        return sorted({t for t, g in self._store.offsets.keys() if g == group})


def _ok(body: bytes) -> RemotingCommand:
    return RemotingCommand.response(ResponseCode.SUCCESS, body=body)
