"""Admin requests on topics and groups (AdminBrokerProcessor of rocketmq-all-4.9.7):
UPDATE_AND_CREATE_TOPIC (17), GET_ALL_TOPIC_CONFIG (21), UPDATE_AND_CREATE_SUBSCRIPTIONGROUP
(200), GET_ALL_SUBSCRIPTIONGROUP_CONFIG (201), DELETE_SUBSCRIPTIONGROUP (207),
DELETE_TOPIC_IN_BROKER (215), QUERY_TOPIC_CONSUME_BY_WHO (300), and RocketMQ 5's
GET_TOPIC_CONFIG (351) and GET_SUBSCRIPTIONGROUP_CONFIG (352), which the dashboard sends.
Topic changes reach the NameServers at once through BrokerTopics' change callback.
"""

from __future__ import annotations

import json
import logging

from ....errors import InvalidTopicError
from ....net import RequestContext
from ....net.dispatch import Dispatcher
from ....protocol import RemotingCommand, RequestCode, ResponseCode, fastjson
from ....protocol.admin_bodies import encode_group_list
from ....protocol.header_codec import decode_header
from ....protocol.headers import (
    CreateTopicRequestHeader,
    DeleteSubscriptionGroupRequestHeader,
    GetSubscriptionGroupConfigRequestHeader,
    TopicRequestHeader,
)
from ....protocol.topic_config import TopicConfig
from ....record import check_topic
from ....store import MessageStore
from ....topic_validator import check_group, is_system_topic, perm_is_valid
from ..subgroups import SubscriptionGroupManager
from ..topics import BrokerTopics
from .clients import ClientManager

log = logging.getLogger(__name__)

FILTER_TYPES = ("SINGLE_TAG", "MULTI_TAG")  # TopicFilterType


class AdminProcessor:
    def __init__(self, store: MessageStore, topics: BrokerTopics,
                 groups: SubscriptionGroupManager, clients: ClientManager,
                 register_timeout_s: float = 6.0) -> None:
        self._store = store
        self._topics = topics
        self._groups = groups
        self._clients = clients
        self._register_timeout_s = register_timeout_s

    def register_handlers(self, dispatcher: Dispatcher) -> None:
        for code, handler in (
                (RequestCode.UPDATE_AND_CREATE_TOPIC, self.create_topic),
                (RequestCode.GET_ALL_TOPIC_CONFIG, self.all_topic_config),
                (RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, self.create_group),
                (RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG, self.all_groups),
                (RequestCode.DELETE_SUBSCRIPTIONGROUP, self.delete_group),
                (RequestCode.DELETE_TOPIC_IN_BROKER, self.delete_topic),
                (RequestCode.QUERY_TOPIC_CONSUME_BY_WHO, self.consumed_by),
                (RequestCode.GET_TOPIC_CONFIG, self.topic_config),
                (RequestCode.GET_SUBSCRIPTIONGROUP_CONFIG, self.group_config)):
            dispatcher.register(code, handler)

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

    async def delete_topic(self, request: RemotingCommand,
                           ctx: RequestContext) -> RemotingCommand:
        """Config, consume queues and offsets of the topic go (its records stay in the commit
        log until retention); a topic this broker never had succeeds too, as in Java, so that
        mqadmin deleteTopic may ask every master of a cluster."""
        h = decode_header(TopicRequestHeader, request.ext_fields)
        try:
            check_topic(h.topic)
        except InvalidTopicError as exc:
            return RemotingCommand.response(ResponseCode.SYSTEM_ERROR, str(exc))
        if is_system_topic(h.topic):
            return RemotingCommand.response(
                ResponseCode.SYSTEM_ERROR, f"The topic[{h.topic}] is conflict with system topic.")
        log.info("deleteTopic %s called by %s", h.topic, ctx.peer)
        self._topics.delete(h.topic)
        return RemotingCommand.response(ResponseCode.SUCCESS)

    async def delete_group(self, request: RemotingCommand,
                           ctx: RequestContext) -> RemotingCommand:
        h = decode_header(DeleteSubscriptionGroupRequestHeader, request.ext_fields)
        log.info("deleteSubscriptionGroup %s called by %s (clean offsets: %s)", h.group_name,
                 ctx.peer, h.clean_offset)
        self._groups.delete(h.group_name)
        if h.clean_offset:
            self._store.offsets.remove(group=h.group_name)
        return RemotingCommand.response(ResponseCode.SUCCESS)

    async def consumed_by(self, request: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
        """The groups online on the topic, and those with offsets of it (queryTopicConsumeByWho
        + whichGroupByTopic)."""
        h = decode_header(TopicRequestHeader, request.ext_fields)
        online = {g for g, info in self._clients.consumers.items() if h.topic in info.subscriptions}
        stored = {g for t, g in self._store.offsets.keys() if t == h.topic}
        return RemotingCommand.response(ResponseCode.SUCCESS,
                                        body=encode_group_list(online | stored))

    async def topic_config(self, request: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
        h = decode_header(TopicRequestHeader, request.ext_fields)
        cfg = self._topics.get(h.topic)
        return _config_or(cfg.to_json() if cfg else None, ResponseCode.TOPIC_NOT_EXIST,
                          f"No topic in this broker. topic: {h.topic}")

    async def group_config(self, request: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
        h = decode_header(GetSubscriptionGroupConfigRequestHeader, request.ext_fields)
        return _config_or(self._groups.get(h.group), ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST,
                          f"No group in this broker. group: {h.group}")


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


def _config_or(config: dict | None, code: ResponseCode, remark: str) -> RemotingCommand:
    """A config as JSON, or ``code`` with RocketMQ's remark when there is none."""
    if config is None:
        return RemotingCommand.response(code, remark)
    return _json_response(config)


def _json_response(obj: dict) -> RemotingCommand:
    return RemotingCommand.response(ResponseCode.SUCCESS,
                                    body=json.dumps(obj, separators=(",", ":")).encode())
