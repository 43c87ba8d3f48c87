"""Offset requests (ConsumerManageProcessor and AdminBrokerProcessor of rocketmq-all-4.9.7):
QUERY_CONSUMER_OFFSET (14), UPDATE_CONSUMER_OFFSET (15), SEARCH_OFFSET_BY_TIMESTAMP (29),
GET_MAX_OFFSET (30), GET_MIN_OFFSET (31), GET_EARLIEST_MSG_STORETIME (32),
GET_ALL_CONSUMER_OFFSET (43: every committed offset, what a slave copies, as
ConsumerOffsetSerializeWrapper: {"offsetTable":{"topic@group":{0:12}}}).

Consumer offsets live in the store's ConsumerOffsetManager (config/consumerOffset.json),
committed in memory and persisted every 5 s and at close, as Java's broker does. A commit must
name an existing topic, one of its queues and an offset within the queue (the checks of
RocketMQ 5's ConsumerManageProcessor, and the bounds 4.9.7 lacked): else TOPIC_NOT_EXIST or
SYSTEM_ERROR, and nothing is written.
"""

from __future__ import annotations

import logging

from ....errors import StoreError
from ....net import RequestContext
from ....net.dispatch import Dispatcher
from ....protocol import RemotingCommand, RequestCode, ResponseCode, fastjson
from ....protocol.header_codec import decode_header, encode_header
from ....protocol.headers import (
    EarliestMsgStoretimeResponseHeader,
    OffsetResponseHeader,
    QueryConsumerOffsetRequestHeader,
    QueueOffsetRequestHeader,
    SearchOffsetRequestHeader,
    UpdateConsumerOffsetRequestHeader,
)
from ....store import MessageStore

log = logging.getLogger(__name__)


class OffsetProcessor:
    def __init__(self, store: MessageStore) -> None:
        self._store = store

    def register_handlers(self, dispatcher: Dispatcher) -> None:
        dispatcher.register(RequestCode.QUERY_CONSUMER_OFFSET, self.query_consumer_offset)
        dispatcher.register(RequestCode.UPDATE_CONSUMER_OFFSET, self.update_consumer_offset)
        dispatcher.register(RequestCode.SEARCH_OFFSET_BY_TIMESTAMP, self.search_offset)
        dispatcher.register(RequestCode.GET_MAX_OFFSET, self.max_offset)
        dispatcher.register(RequestCode.GET_MIN_OFFSET, self.min_offset)
        dispatcher.register(RequestCode.GET_EARLIEST_MSG_STORETIME, self.earliest_store_time)
        dispatcher.register(RequestCode.GET_ALL_CONSUMER_OFFSET, self.all_consumer_offsets)

    async def all_consumer_offsets(self, request: RemotingCommand,
                                   ctx: RequestContext) -> RemotingCommand:
        body = fastjson.dumps_config({"offsetTable": self._store.offsets.table()}).encode()
        return RemotingCommand.response(ResponseCode.SUCCESS, body=body)

    async def query_consumer_offset(self, request: RemotingCommand,
                                    ctx: RequestContext) -> RemotingCommand:
        """The committed offset; with none, 0 while the queue still starts at 0 (a new group
        on a young queue reads from the start, as Java's broker answers), else QUERY_NOT_FOUND."""
        h = decode_header(QueryConsumerOffsetRequestHeader, request.ext_fields)
        offset = self._store.committed_offset(h.consumer_group, h.topic, h.queue_id)
        if offset is None or offset < 0:
            if self._store.min_offset(h.topic, h.queue_id) > 0:
                return RemotingCommand.response(
                    ResponseCode.QUERY_NOT_FOUND,
                    "Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first")
            offset = 0
        return _offset(offset)

    async def update_consumer_offset(self, request: RemotingCommand,
                                     ctx: RequestContext) -> RemotingCommand:
        h = decode_header(UpdateConsumerOffsetRequestHeader, request.ext_fields)
        if self._store.topics.get(h.topic) is None:
            return RemotingCommand.response(ResponseCode.TOPIC_NOT_EXIST,
                                            f"topic[{h.topic[:130]}] not exist")
        try:
            self._store.check_commit(h.consumer_group, h.topic, h.queue_id, h.commit_offset)
        except StoreError as exc:  # a bad group, queue id or offset: nothing written
            return RemotingCommand.response(ResponseCode.SYSTEM_ERROR, str(exc))
        self._store.offsets.commit(h.consumer_group, h.topic, h.queue_id, h.commit_offset)
        return RemotingCommand.response(ResponseCode.SUCCESS)

    async def max_offset(self, request: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
        h = decode_header(QueueOffsetRequestHeader, request.ext_fields)
        return _offset(self._store.max_offset(h.topic, h.queue_id))

    async def min_offset(self, request: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
        h = decode_header(QueueOffsetRequestHeader, request.ext_fields)
        return _offset(self._store.min_offset(h.topic, h.queue_id))

    async def search_offset(self, request: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
        h = decode_header(SearchOffsetRequestHeader, request.ext_fields)
        return _offset(self.offset_by_time(h.topic, h.queue_id, h.timestamp))

    async def earliest_store_time(self, request: RemotingCommand,
                                  ctx: RequestContext) -> RemotingCommand:
        """Store time of the queue's first message; -1 when it has none (Java's value)."""
        h = decode_header(QueueOffsetRequestHeader, request.ext_fields)
        ts = self._store_time(h.topic, h.queue_id, self._store.min_offset(h.topic, h.queue_id))
        ext = encode_header(EarliestMsgStoretimeResponseHeader(timestamp=-1 if ts is None else ts))
        return RemotingCommand.response(ResponseCode.SUCCESS, ext_fields=ext)

    def offset_by_time(self, topic: str, queue_id: int, timestamp_ms: int) -> int:
        """ConsumeQueue.getOffsetInQueueByTime: an exact match, else the closer in time of the
        last message before and the first after (the earlier on a tie); all older -> the
        last message, all newer -> the first; an empty queue -> 0."""
        lo, hi = self._store.min_offset(topic, queue_id), self._store.max_offset(topic, queue_id)
        if hi <= lo:
            return 0
        after = self._store.offset_for_time(topic, queue_id, timestamp_ms)
        if after >= hi:
            return hi - 1
        if after <= lo:
            return lo
        t_after = self._store_time(topic, queue_id, after)
        t_before = self._store_time(topic, queue_id, after - 1)
        if t_after is None or t_before is None or t_after == timestamp_ms:
            return after
        return after if t_after - timestamp_ms < timestamp_ms - t_before else after - 1

    def _store_time(self, topic: str, queue_id: int, offset: int) -> int | None:
        got = self._store.get(topic, queue_id, offset, 1)
        return got.messages[0].store_timestamp if got.messages else None


def _offset(value: int) -> RemotingCommand:
    return RemotingCommand.response(ResponseCode.SUCCESS,
                                    ext_fields=encode_header(OffsetResponseHeader(offset=value)))
