"""Admin requests (AdminBrokerProcessor of rocketmq-all-4.9.7): UPDATE_AND_CREATE_TOPIC (17),
GET_ALL_TOPIC_CONFIG (21), UPDATE_AND_CREATE_SUBSCRIPTIONGROUP (200),
GET_ALL_SUBSCRIPTIONGROUP_CONFIG (201). Topic changes reach the NameServers at once through
BrokerTopics' change callback.
"""

from __future__ import annotations

import json
import logging

from ....errors import InvalidTopicError
from ....net import RequestContext
from ....net.dispatch import Dispatcher
from ....protocol import RemotingCommand, RequestCode, ResponseCode, fastjson
from ....protocol.header_codec import decode_header
from ....protocol.headers import CreateTopicRequestHeader
from ....protocol.topic_config import TopicConfig
from ....record import check_topic
from ....topic_validator import check_group, is_system_topic, perm_is_valid
from ..subgroups import SubscriptionGroupManager
from ..topics import BrokerTopics

log = logging.getLogger(__name__)

FILTER_TYPES = ("SINGLE_TAG", "MULTI_TAG")  # TopicFilterType


class AdminProcessor:
    def __init__(self, topics: BrokerTopics, groups: SubscriptionGroupManager,
                 register_timeout_s: float = 6.0) -> None:
        self._topics = topics
        self._groups = groups
        self._register_timeout_s = register_timeout_s

    def register_handlers(self, dispatcher: Dispatcher) -> None:
        dispatcher.register(RequestCode.UPDATE_AND_CREATE_TOPIC, self.create_topic)
        dispatcher.register(RequestCode.GET_ALL_TOPIC_CONFIG, self.all_topic_config)
        dispatcher.register(RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, self.create_group)
        dispatcher.register(RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG, self.all_groups)

    async def create_topic(self, request: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
        h = decode_header(CreateTopicRequestHeader, request.ext_fields)
        refusal = topic_refusal(h)
        if refusal is not None:
            return RemotingCommand.response(ResponseCode.SYSTEM_ERROR, refusal)
        self._topics.put(TopicConfig(h.topic, h.read_queue_nums, h.write_queue_nums,
                                     perm=h.perm, order=h.order))
        # Java's registerIncrementBrokerData: the NameServers know the topic before we answer.
        await self._topics.registered(self._register_timeout_s)
        return RemotingCommand.response(ResponseCode.SUCCESS)

    async def all_topic_config(self, request: RemotingCommand,
                               ctx: RequestContext) -> RemotingCommand:
        return _json_response(self._topics.serialize_wrapper())

    async def create_group(self, request: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
        try:
            cfg = fastjson.loads(request.body)
            if not isinstance(cfg, dict) or not isinstance(cfg.get("groupName"), str):
                raise ValueError("groupName missing")
            check_group(cfg["groupName"])
        except ValueError as exc:
            return RemotingCommand.response(ResponseCode.SYSTEM_ERROR, f"bad group config: {exc}")
        self._groups.put(cfg)
        return RemotingCommand.response(ResponseCode.SUCCESS)

    async def all_groups(self, request: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
        return _json_response(self._groups.all())


def topic_refusal(h: CreateTopicRequestHeader) -> str | None:
    """Why a topic config cannot be created or changed, or None: updateAndCreateTopic's
    TopicValidator.validateTopic and isSystemTopic, PermName.isValid, and queue counts a
    store can hold (at least one; the upper bounds are BrokerTopics' caps, whose
    TopicLimitExceeded the dispatcher answers with its reason)."""
    try:
        check_topic(h.topic)
    except InvalidTopicError as exc:
        return str(exc)
    if is_system_topic(h.topic):
        return f"The topic[{h.topic}] is conflict with system topic."
    if not perm_is_valid(h.perm):
        return f"perm {h.perm} is invalid: READ (4), WRITE (2) and INHERIT (1) bits only"
    if min(h.read_queue_nums, h.write_queue_nums) < 1:
        return "queue nums must be at least 1"
    if h.topic_filter_type not in FILTER_TYPES:
        return f"topicFilterType {h.topic_filter_type[:40]!r} is not one of {FILTER_TYPES}"
    return None


def _json_response(obj: dict) -> RemotingCommand:
    return RemotingCommand.response(ResponseCode.SUCCESS,
                                    body=json.dumps(obj, separators=(",", ":")).encode())
