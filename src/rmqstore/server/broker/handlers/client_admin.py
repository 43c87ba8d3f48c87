"""Admin requests about the clients connected to this broker (AdminBrokerProcessor and
Broker2Client of rocketmq-all-4.9.7): GET_PRODUCER_CONNECTION_LIST (204),
GET_ALL_PRODUCER_INFO (328), INVOKE_BROKER_TO_RESET_OFFSET (222), and the two the broker
forwards to one consumer and answers with the consumer's answer, GET_CONSUMER_RUNNING_INFO
(307) and CONSUME_MESSAGE_DIRECTLY (309).

Reset by time: for each write queue of the topic, the offset stored at the timestamp (-1: the
queue's max offset), taken when ``isForce`` or when it is behind the group's committed offset;
each online consumer of the group is told with RESET_CONSUMER_CLIENT_OFFSET (220, oneway; the
C++ client reads ResetOffsetBodyForC, the others ResetOffsetBody). Beyond Java's broker, which
leaves the offsets to the consumers, the broker commits them too, so that a consumer starting
afterwards, or one that does not obey 220, starts there. A group online nowhere answers
CONSUMER_NOT_ONLINE, as Java does (mqadmin then commits offsets itself, queue by queue).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ....errors import StoreError
from ....net import RemotingTimeout, RequestContext
from ....net.dispatch import Dispatcher
from ....protocol import LanguageCode, RemotingCommand, RequestCode, ResponseCode
from ....protocol.admin_bodies import (
    Connection,
    encode_producer_connection,
    encode_producer_table,
    encode_reset_offset,
    encode_reset_offset_for_c,
)
from ....protocol.header_codec import decode_header, encode_header
from ....protocol.headers import (
    ConsumeMessageDirectlyRequestHeader,
    GetConsumerRunningInfoRequestHeader,
    GetProducerConnectionListRequestHeader,
    ResetOffsetRequestHeader,
)
from ....protocol.message import MessageQueue, parse_msg_id
from ....store import MessageStore
from ..topics import BrokerTopics
from .clients import ClientChannel, ClientManager

log = logging.getLogger(__name__)

CALL_CLIENT_TIMEOUT_S = 10.0  # Broker2Client.callClient
NOTIFY_TIMEOUT_S = 5.0


class ClientAdminProcessor:
    def __init__(self, store: MessageStore, topics: BrokerTopics, clients: ClientManager,
                 broker_name: str, offset_for_time: Callable[[str, int, int], int]) -> None:
        self._store = store
        self._topics = topics
        self._clients = clients
        self._broker_name = broker_name
        self._offset_for_time = offset_for_time  # OffsetProcessor's rule (getOffsetInQueueByTime)

    def register_handlers(self, dispatcher: Dispatcher) -> None:
        for code, handler in (
                (RequestCode.GET_PRODUCER_CONNECTION_LIST, self.producer_connections),
                (RequestCode.GET_ALL_PRODUCER_INFO, self.all_producers),
                (RequestCode.INVOKE_BROKER_TO_RESET_OFFSET, self.reset_offset),
                (RequestCode.GET_CONSUMER_RUNNING_INFO, self.running_info),
                (RequestCode.CONSUME_MESSAGE_DIRECTLY, self.consume_directly)):
            dispatcher.register(code, handler)

    # -- producers ---------------------------------------------------------------------------
    async def producer_connections(self, request: RemotingCommand,
                                   ctx: RequestContext) -> RemotingCommand:
        h = decode_header(GetProducerConnectionListRequestHeader, request.ext_fields)
        members = self._clients.producers.get(h.producer_group)
        if not members:
            return RemotingCommand.response(ResponseCode.SYSTEM_ERROR,
                                            f"the producer group[{h.producer_group}] not exist")
        return RemotingCommand.response(ResponseCode.SUCCESS, body=encode_producer_connection(
            Connection(c.client_id, c.channel.peer, str(c.language), c.version)
            for c in members.values()))

    async def all_producers(self, request: RemotingCommand,
                            ctx: RequestContext) -> RemotingCommand:
        """ProducerTableInfo (RocketMQ 5's ProducerManager.getProducerTable), for the
        exporter's rocketmq_producer_count."""
        return RemotingCommand.response(ResponseCode.SUCCESS, body=encode_producer_table({
            group: [_producer_info(c) for c in members.values()]
            for group, members in sorted(self._clients.producers.items())}))

    # -- reset offset ------------------------------------------------------------------------
    async def reset_offset(self, request: RemotingCommand,
                           ctx: RequestContext) -> RemotingCommand:
        h = decode_header(ResetOffsetRequestHeader, request.ext_fields)
        cfg = self._topics.get(h.topic)
        if cfg is None:
            return RemotingCommand.response(
                ResponseCode.SYSTEM_ERROR,
                f"[reset-offset] reset offset failed, no topic in this broker. topic={h.topic}")
        table: dict[MessageQueue, int] = {}
        for qid in range(cfg.write_queue_nums):
            current = self._store.committed_offset(h.group, h.topic, qid)
            if current is None:
                return RemotingCommand.response(ResponseCode.SYSTEM_ERROR,
                                                f"THe consumer group <{h.group}> not exist")
            target = (self._store.max_offset(h.topic, qid) if h.timestamp == -1
                      else self._offset_for_time(h.topic, qid, h.timestamp))
            target = max(0, target)
            table[MessageQueue(h.topic, self._broker_name, qid)] = \
                target if h.is_force or target < current else current
        info = self._clients.consumers.get(h.group)
        if info is None or not info.clients:
            return RemotingCommand.response(
                ResponseCode.CONSUMER_NOT_ONLINE,
                f"Consumer not online, so can not reset offset, Group: {h.group} Topic: "
                f"{h.topic} Timestamp: {h.timestamp}")
        for q, offset in table.items():
            try:
                self._store.check_commit(h.group, h.topic, q.queue_id, offset)
            except StoreError as exc:
                return RemotingCommand.response(ResponseCode.SYSTEM_ERROR, str(exc))
            self._store.offsets.commit(h.group, h.topic, q.queue_id, offset)
        ext = encode_header(h)
        for client in list(info.clients.values()):
            body = (encode_reset_offset_for_c(table) if client.language == LanguageCode.CPP.name
                    else encode_reset_offset(table))
            push = RemotingCommand.request(RequestCode.RESET_CONSUMER_CLIENT_OFFSET, ext, body)
            try:
                await client.channel.invoke_oneway(push, NOTIFY_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001 - one gone client must not stop the rest
                log.warning("[reset-offset] %s of group %s not told: %s", client.client_id,
                            h.group, exc)
        log.info("[reset-offset] group %s topic %s to %d by %s: %s", h.group, h.topic,
                 h.timestamp, ctx.peer, {q.queue_id: o for q, o in table.items()})
        return RemotingCommand.response(ResponseCode.SUCCESS, body=encode_reset_offset(table))

    # -- forwarded to one consumer ---------------------------------------------------------------
    async def running_info(self, request: RemotingCommand,
                           ctx: RequestContext) -> RemotingCommand:
        h = decode_header(GetConsumerRunningInfoRequestHeader, request.ext_fields)
        return await self._call_consumer(request, h.consumer_group, h.client_id, b"")

    async def consume_directly(self, request: RemotingCommand,
                               ctx: RequestContext) -> RemotingCommand:
        """The message (by offset message id) goes to the consumer as a stored record."""
        h = decode_header(ConsumeMessageDirectlyRequestHeader, request.ext_fields)
        try:
            _, offset = parse_msg_id(h.msg_id)
        except ValueError as exc:
            return RemotingCommand.response(ResponseCode.SYSTEM_ERROR, str(exc))
        msg = self._store.get_by_commitlog_offset(offset)
        if msg is None:
            return RemotingCommand.response(ResponseCode.SYSTEM_ERROR,
                                            f"no message with offset msg id {h.msg_id}")
        request.ext_fields["brokerName"] = self._broker_name
        return await self._call_consumer(request, h.consumer_group, h.client_id,
                                         bytes(msg.record_view))

    async def _call_consumer(self, request: RemotingCommand, group: str, client_id: str,
                             body: bytes) -> RemotingCommand:
        """AdminBrokerProcessor.callConsumer: the consumer's own answer, or why there is none."""
        client = self._find(group, client_id)
        if client is None:
            return RemotingCommand.response(ResponseCode.SYSTEM_ERROR,
                                            f"The Consumer <{group}> <{client_id}> not online")
        forward = RemotingCommand.request(request.code, dict(request.ext_fields), body)
        try:
            return await client.channel.invoke(forward, CALL_CLIENT_TIMEOUT_S)
        except RemotingTimeout as exc:
            return RemotingCommand.response(ResponseCode.CONSUME_MSG_TIMEOUT,
                                            f"consumer <{group}> <{client_id}> Timeout: {exc}")
        except Exception as exc:  # noqa: BLE001 - a gone client is an answer to the admin
            return RemotingCommand.response(
                ResponseCode.SYSTEM_ERROR,
                f"invoke consumer <{group}> <{client_id}> Exception: {exc}")

    def _find(self, group: str, client_id: str) -> ClientChannel | None:
        info = self._clients.consumers.get(group)
        if info is None:
            return None
        return next((c for c in info.clients.values() if c.client_id == client_id), None)


def _producer_info(c: ClientChannel) -> dict:
    seen_ms = int((time.time() - (time.monotonic() - c.last_seen)) * 1000)
    return {"clientId": c.client_id, "language": str(c.language), "lastUpdateTimestamp": seen_ms,
            "remoteIP": c.channel.peer, "version": c.version}
