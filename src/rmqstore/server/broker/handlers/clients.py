"""Producers and consumers known from heartbeats (ProducerManager, ConsumerManager and
ClientManageProcessor of rocketmq-all-4.9.7), and the handlers that feed them:
HEART_BEAT (34), UNREGISTER_CLIENT (35), GET_CONSUMER_LIST_BY_GROUP (38).

A client is registered per (group, channel), as Java does. A consumer group whose members or
subscribed topics change gets NOTIFY_CONSUMER_IDS_CHANGED (40, oneway, header consumerGroup)
on each of its channels, so that clients rebalance at once. Clients leave on
UNREGISTER_CLIENT, when their connection closes, or after channel_expired_ms of silence.
All state is touched on the event loop thread only.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ....net import RequestContext
from ....net.dispatch import Channel, Dispatcher
from ....protocol import RemotingCommand, RequestCode, ResponseCode, fastjson
from ....protocol.header_codec import decode_header, encode_header
from ....protocol.headers import ConsumerGroupHeader, UnregisterClientRequestHeader
from ..subgroups import SubscriptionGroupManager
from ..topics import RETRY_PREFIX, BrokerTopics

log = logging.getLogger(__name__)

NOTIFY_TIMEOUT_S = 3.0
# The C++ client sends these enums as ordinals (rocketmq-client-cpp 1.2.4 HeartbeatData.h),
# Java as names.
CONSUME_TYPES = ("CONSUME_ACTIVELY", "CONSUME_PASSIVELY")
MESSAGE_MODELS = ("BROADCASTING", "CLUSTERING")
CONSUME_FROM = ("CONSUME_FROM_LAST_OFFSET", "CONSUME_FROM_LAST_OFFSET_AND_FROM_MIN_WHEN_BOOT_FIRST",
                "CONSUME_FROM_MIN_OFFSET", "CONSUME_FROM_MAX_OFFSET",
                "CONSUME_FROM_FIRST_OFFSET", "CONSUME_FROM_TIMESTAMP")


@dataclass(frozen=True, slots=True)
class SubscriptionData:
    topic: str
    sub_string: str
    tags: frozenset[str]  # empty = every tag
    sub_version: int
    expression_type: str = "TAG"


@dataclass(slots=True)
class ClientChannel:
    client_id: str
    channel: Channel
    language: str
    version: int
    last_seen: float  # time.monotonic()


@dataclass(slots=True)
class ConsumerGroupInfo:
    group: str
    consume_type: str
    message_model: str
    consume_from_where: str
    clients: dict[Channel, ClientChannel] = field(default_factory=dict)
    subscriptions: dict[str, SubscriptionData] = field(default_factory=dict)

    def client_ids(self) -> list[str]:
        return [c.client_id for c in self.clients.values()]


def parse_tags(sub_string: str) -> frozenset[str]:
    """SubscriptionData tag set: '*' or empty -> every tag; else 'A || B' split and trimmed."""
    tags = frozenset(t.strip() for t in (sub_string or "").split("||") if t.strip())
    return frozenset() if not tags or "*" in tags else tags


class ClientManager:
    def __init__(self, topics: BrokerTopics, groups: SubscriptionGroupManager,
                 spawn: Callable[[Awaitable[None]], None], expired_s: float,
                 register_timeout_s: float = 6.0) -> None:
        self._topics = topics
        self._register_timeout_s = register_timeout_s
        self._groups = groups
        self._spawn = spawn
        self._expired_s = expired_s
        self.consumers: dict[str, ConsumerGroupInfo] = {}
        self.producers: dict[str, dict[Channel, ClientChannel]] = {}
        self._watched: set[Channel] = set()

    # -- handlers -----------------------------------------------------------------------
    def register_handlers(self, dispatcher: Dispatcher) -> None:
        dispatcher.register(RequestCode.HEART_BEAT, self.heart_beat)
        dispatcher.register(RequestCode.UNREGISTER_CLIENT, self.unregister_client)
        dispatcher.register(RequestCode.GET_CONSUMER_LIST_BY_GROUP, self.consumer_list)

    async def heart_beat(self, request: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
        try:
            data = _loads(request.body)
            client_id = str(data["clientID"])
        except (ValueError, KeyError, TypeError) as exc:
            return RemotingCommand.response(ResponseCode.SYSTEM_ERROR, f"bad heartbeat body: {exc}")
        self._watch(ctx.channel)
        now = time.monotonic()
        version = self._topics.version
        for cdata in data.get("consumerDataSet") or ():
            group = str(cdata["groupName"])
            if self._groups.find_or_create(group) is None:
                log.warning("heartbeat: subscription group %s does not exist", group)
                continue
            self._topics.ensure_system(RETRY_PREFIX + group)
            client = ClientChannel(client_id, ctx.channel, request.language, request.version, now)
            if self._register_consumer(group, cdata, client):
                self.notify_ids_changed(group)
        for pdata in data.get("producerDataSet") or ():
            group = str(pdata["groupName"])
            self.producers.setdefault(group, {})[ctx.channel] = ClientChannel(
                client_id, ctx.channel, request.language, request.version, now)
        if self._topics.version != version:  # a new %RETRY% topic: routed before we answer
            await self._topics.registered(self._register_timeout_s)
        return RemotingCommand.response(ResponseCode.SUCCESS)

    async def unregister_client(self, request: RemotingCommand,
                                ctx: RequestContext) -> RemotingCommand:
        h = decode_header(UnregisterClientRequestHeader, request.ext_fields)
        if h.producer_group:
            members = self.producers.get(h.producer_group, {})
            _drop(members, ctx.channel, h.client_id)
            if not members:
                self.producers.pop(h.producer_group, None)
        if h.consumer_group:
            info = self.consumers.get(h.consumer_group)
            if info is not None and _drop(info.clients, ctx.channel, h.client_id):
                log.info("consumer %s left group %s", h.client_id, h.consumer_group)
                self._after_leave(info)
        return RemotingCommand.response(ResponseCode.SUCCESS)

    async def consumer_list(self, request: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
        h = decode_header(ConsumerGroupHeader, request.ext_fields)
        info = self.consumers.get(h.consumer_group)
        ids = info.client_ids() if info is not None else []
        if not ids:
            return RemotingCommand.response(ResponseCode.SYSTEM_ERROR,
                                            f"no consumer for this group, {h.consumer_group}")
        body = json.dumps({"consumerIdList": ids}, separators=(",", ":")).encode()
        return RemotingCommand.response(ResponseCode.SUCCESS, body=body)

    # -- queries ------------------------------------------------------------------------
    def subscription(self, group: str, topic: str) -> SubscriptionData | None:
        info = self.consumers.get(group)
        return info.subscriptions.get(topic) if info is not None else None

    def producer_channel(self, group: str) -> Channel | None:
        """ProducerManager.getAvailableChannel: the producer of ``group`` heard from last."""
        members = self.producers.get(group)
        if not members:
            return None
        return max(members.values(), key=lambda c: c.last_seen).channel

    # -- membership -----------------------------------------------------------------------
    def _register_consumer(self, group: str, cdata: dict, client: ClientChannel) -> bool:
        """ConsumerManager.registerConsumer: True when members or topics changed."""
        info = self.consumers.get(group)
        if info is None:
            info = self.consumers[group] = ConsumerGroupInfo(
                group, _enum(cdata.get("consumeType"), CONSUME_TYPES),
                _enum(cdata.get("messageModel"), MESSAGE_MODELS),
                _enum(cdata.get("consumeFromWhere"), CONSUME_FROM))
        else:
            info.consume_type = _enum(cdata.get("consumeType"), CONSUME_TYPES)
            info.message_model = _enum(cdata.get("messageModel"), MESSAGE_MODELS)
            info.consume_from_where = _enum(cdata.get("consumeFromWhere"), CONSUME_FROM)
        old = info.clients.get(client.channel)
        changed = old is None or old.client_id != client.client_id
        if changed:
            log.info("consumer %s joined group %s", client.client_id, group)
        info.clients[client.channel] = client
        return self._update_subscriptions(info, cdata.get("subscriptionDataSet") or ()) or changed

    @staticmethod
    def _update_subscriptions(info: ConsumerGroupInfo, subs: list[dict]) -> bool:
        """ConsumerGroupInfo.updateSubscription: a new or dropped topic counts as a change; a
        newer version of a known one replaces it quietly."""
        changed = False
        seen = set()
        for s in subs:
            topic = str(s["topic"])
            seen.add(topic)
            sub_string = str(s.get("subString") or "*")
            new = SubscriptionData(topic, sub_string, parse_tags(sub_string),
                                   int(s.get("subVersion") or 0),
                                   str(s.get("expressionType") or "TAG"))
            old = info.subscriptions.get(topic)
            if old is None:
                info.subscriptions[topic] = new
                changed = True
            elif new.sub_version > old.sub_version or new.sub_string != old.sub_string:
                info.subscriptions[topic] = new
        for topic in [t for t in info.subscriptions if t not in seen]:
            del info.subscriptions[topic]
            changed = True
        return changed

    def _after_leave(self, info: ConsumerGroupInfo) -> None:
        if info.clients:
            self.notify_ids_changed(info.group)
        else:
            del self.consumers[info.group]

    def _watch(self, channel: Channel) -> None:
        if channel in self._watched:
            return
        on_lost = getattr(channel, "on_lost", None)
        if on_lost is not None:
            self._watched.add(channel)
            on_lost(lambda: self.channel_closed(channel))

    def channel_closed(self, channel: Channel) -> None:
        """ClientHousekeepingService.onChannelClose: forget every client of that channel."""
        self._watched.discard(channel)
        for group, members in list(self.producers.items()):
            if members.pop(channel, None) is not None and not members:
                del self.producers[group]
        for info in list(self.consumers.values()):
            gone = info.clients.pop(channel, None)
            if gone is not None:
                log.info("consumer %s of group %s: connection closed", gone.client_id, info.group)
                self._after_leave(info)

    def scan_expired(self) -> None:
        """Drop (and close) clients silent for longer than the channel expiry."""
        limit = time.monotonic() - self._expired_s
        stale = {c.channel for info in self.consumers.values() for c in info.clients.values()
                 if c.last_seen < limit}
        stale |= {c.channel for members in self.producers.values() for c in members.values()
                  if c.last_seen < limit}
        for channel in stale:
            log.warning("%s: no heartbeat for %d ms, closing", channel.peer, self._expired_s * 1000)
            self.channel_closed(channel)
            close = getattr(channel, "close", None)
            if close is not None:
                close()

    def notify_ids_changed(self, group: str) -> None:
        """Oneway NOTIFY_CONSUMER_IDS_CHANGED to every channel of group (Broker2Client)."""
        info = self.consumers.get(group)
        cfg = self._groups.get(group)
        notify = cfg is None or cfg.get("notifyConsumerIdsChangedEnable", True)
        if info is None or not notify:
            return
        ext = encode_header(ConsumerGroupHeader(consumer_group=group))
        for channel in list(info.clients):
            self._spawn(_notify(channel, ext))


async def _notify(channel: Channel, ext: dict[str, str]) -> None:
    request = RemotingCommand.request(RequestCode.NOTIFY_CONSUMER_IDS_CHANGED, ext)
    try:
        await channel.invoke_oneway(request, NOTIFY_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - a gone client must not fail the heartbeat that changed the group
        log.info("%s: NOTIFY_CONSUMER_IDS_CHANGED not sent: %s", channel.peer, exc)


def _drop(members: dict[Channel, ClientChannel], channel: Channel, client_id: str) -> bool:
    """Remove the client by its channel, else by its id; True if one was removed."""
    if members.pop(channel, None) is not None:
        return True
    for ch, c in list(members.items()):
        if c.client_id == client_id:
            del members[ch]
            return True
    return False


def _enum(value: object, names: tuple[str, ...]) -> str:
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        i = int(value)
        return names[i] if 0 <= i < len(names) else str(value)
    return str(value) if value is not None else names[0]


def _loads(body: bytes) -> dict:
    text = body.decode("utf-8")
    try:
        data = json.loads(text)
    except ValueError:
        data = fastjson.loads(text)
    if not isinstance(data, dict):
        raise TypeError("not a JSON object")
    return data
