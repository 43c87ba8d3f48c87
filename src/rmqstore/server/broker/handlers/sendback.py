"""CONSUMER_SEND_MSG_BACK (36): a consumer hands back a message it failed to consume
(SendMessageProcessor.asyncConsumerSendMsgBack of rocketmq-all-4.9.7).

The message is looked up by its commit-log offset and stored again, with reconsume times + 1,
RETRY_TOPIC (the topic it was first sent to, kept from earlier retries) and ORIGIN_MESSAGE_ID
(the first message id, likewise kept):

* in %RETRY%<group>, a random one of the group's retryQueueNums queues, through delay level
  ``delayLevel`` (0 = the broker picks 3 + reconsume times, as Java), so it comes back after that
  level's delay via SCHEDULE_TOPIC_XXXX;
* in %DLQ%<group> (one queue, perm read|write as 4.9.7 creates it) once the message has been
  reconsumed maxReconsumeTimes times (the header's value, else the group's retryMaxTimes) or
  when the consumer sent a negative delay level.

The answer does not wait for a sync flush (Java sets waitStoreMsgOK=false). A group with
retryQueueNums 0 answers SUCCESS and stores nothing, as Java.
"""

from __future__ import annotations

import logging
import random

from ....delay_levels import PROP_DELAY
from ....errors import (
    InvalidPropertyError,
    MessageTooLargeError,
    StoreClosedError,
    WritesStoppedError,
)
from ....message import Message
from ....net import RequestContext
from ....net.dispatch import Dispatcher
from ....options import RecordInput
from ....protocol import RemotingCommand, RequestCode, ResponseCode
from ....protocol.header_codec import decode_header
from ....protocol.headers import ConsumerSendMsgBackRequestHeader
from ....store import MessageStore
from ..config import BrokerConfig
from ..delivery.delay_levels import DelayLevels
from ..longpoll import ArrivalWaiters
from ..role import BrokerRole
from ..stats.traffic import Traffic
from ..subgroups import SubscriptionGroupManager
from ..topics import DLQ_PREFIX, PERM_WRITE, RETRY_PREFIX, BrokerTopics
from .send import DEFAULT_MAX_RECONSUME, PROP_WAIT

log = logging.getLogger(__name__)

PROP_RETRY_TOPIC = "RETRY_TOPIC"
PROP_ORIGIN_MESSAGE_ID = "ORIGIN_MESSAGE_ID"
DLQ_QUEUE_NUMS = 1  # MixAll.DLQ_NUMS_PER_GROUP
FIRST_RETRY_LEVEL = 3  # delayLevel 0 -> 3 + reconsumeTimes (10 s on the default ladder)


class SendBackProcessor:
    def __init__(self, config: BrokerConfig, store: MessageStore, topics: BrokerTopics,
                 groups: SubscriptionGroupManager, arrivals: ArrivalWaiters,
                 delays: DelayLevels, *, traffic: Traffic | None = None,
                 role: BrokerRole | None = None) -> None:
        self._config = config
        self._role = role if role is not None else BrokerRole(config)
        self._traffic = traffic or Traffic()
        self._store = store
        self._topics = topics
        self._groups = groups
        self._arrivals = arrivals
        self._delays = delays

    def register_handlers(self, dispatcher: Dispatcher) -> None:
        dispatcher.register(RequestCode.CONSUMER_SEND_MSG_BACK, self.send_back)

    async def send_back(self, request: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
        h = decode_header(ConsumerSendMsgBackRequestHeader, request.ext_fields)
        refusal = self._role.write_refusal()
        if refusal is not None:  # its store refuses the put: Java answers the status's name
            return _fail(ResponseCode.SYSTEM_ERROR, f"SERVICE_NOT_AVAILABLE: {refusal[1]}; send "
                         "it back to the master")
        group_cfg = self._groups.find_or_create(h.group)
        if group_cfg is None:
            return _fail(ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST,
                         f"subscription group not exist, {h.group}")
        if not self._config.broker_permission & PERM_WRITE:
            return _fail(ResponseCode.NO_PERMISSION,
                         f"the broker[{self._config.broker_ip}] sending message is forbidden")
        retry_queues = int(group_cfg.get("retryQueueNums", 1))
        if retry_queues <= 0:
            return RemotingCommand.response(ResponseCode.SUCCESS)
        topic = RETRY_PREFIX + h.group
        topic_cfg = self._topics.ensure_system(topic, retry_queues)
        if not topic_cfg.perm & PERM_WRITE:
            return _fail(ResponseCode.NO_PERMISSION,
                         f"the topic[{topic}] sending message is forbidden")
        msg = self._store.get_by_commitlog_offset(h.offset) if h.offset >= 0 else None
        if msg is None or msg.commitlog_offset != h.offset:
            return _fail(ResponseCode.SYSTEM_ERROR, f"look message by offset failed, {h.offset}")
        limit = h.max_reconsume_times
        if limit is None:
            limit = int(group_cfg.get("retryMaxTimes", DEFAULT_MAX_RECONSUME))
        try:
            if msg.reconsume_times >= limit or h.delay_level < 0:
                self._to_dlq(h.group, msg)
            else:
                level = h.delay_level or FIRST_RETRY_LEVEL + msg.reconsume_times
                self._to_retry(topic, random.randrange(retry_queues), level, msg)
        except (WritesStoppedError, StoreClosedError, InvalidPropertyError,
                MessageTooLargeError) as exc:
            return _fail(ResponseCode.SYSTEM_ERROR, f"send back failed: {exc}")
        self._traffic.gave_back(h.group, h.origin_topic or msg.topic)
        return RemotingCommand.response(ResponseCode.SUCCESS)

    def _to_retry(self, topic: str, queue_id: int, level: int, msg: Message) -> None:
        self._delays.service.put_delayed_record(topic, bytes(msg.body_view), level, queue_id,
                                                _resend(msg))

    def _to_dlq(self, group: str, msg: Message) -> None:
        dlq = DLQ_PREFIX + group
        self._topics.ensure_system(dlq, DLQ_QUEUE_NUMS)
        record = _resend(msg)
        # Java sets level 0: stored at once, never scheduled.
        record.properties.pop(PROP_DELAY, None)
        queue_id = random.randrange(DLQ_QUEUE_NUMS)
        self._store.put_record(dlq, bytes(msg.body_view), queue_id, record)
        self._arrivals.notify(dlq, queue_id)
        self._traffic.sent_to_dlq(group, record.properties.get(PROP_RETRY_TOPIC, msg.topic))
        log.info("message %s of %s reconsumed %d times: stored in %s", msg.msg_id,
                 record.properties.get(PROP_RETRY_TOPIC), msg.reconsume_times, dlq)


def _resend(msg: Message) -> RecordInput:
    """msg as handed back: same body, flag, sysflag and born time/host; reconsume times + 1;
    RETRY_TOPIC and ORIGIN_MESSAGE_ID set once."""
    props = msg.properties
    props.setdefault(PROP_RETRY_TOPIC, msg.topic)
    if not props.get(PROP_ORIGIN_MESSAGE_ID):
        props[PROP_ORIGIN_MESSAGE_ID] = msg.msg_id
    props.pop(PROP_WAIT, None)
    return RecordInput.copy_of(msg, props, reconsume_times=msg.reconsume_times + 1)


def _fail(code: ResponseCode, remark: str) -> RemotingCommand:
    log.info("send back refused: %s", remark)
    return RemotingCommand.response(code, remark)
