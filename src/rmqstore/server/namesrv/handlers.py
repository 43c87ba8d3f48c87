"""Name server request handlers: namesrv/.../processor/DefaultRequestProcessor.java (4.9.7).

Served codes: PUT/GET/DELETE_KV_CONFIG (100-102), REGISTER_BROKER (103), UNREGISTER_BROKER (104),
GET_ROUTEINFO_BY_TOPIC (105), GET_BROKER_CLUSTER_INFO (106), WIPE_WRITE_PERM_OF_BROKER (205),
GET_ALL_TOPIC_LIST_FROM_NAMESERVER (206), DELETE_TOPIC_IN_NAMESRV (216), GET_TOPICS_BY_CLUSTER
(224), GET_SYSTEM_TOPIC_LIST_FROM_NS (304), QUERY_DATA_VERSION (322), ADD_WRITE_PERM_OF_BROKER
(327). The dispatcher answers every other code with REQUEST_CODE_NOT_SUPPORTED.

A client that asks for a route with routeChangePush=true (ours; RocketMQ's clients never send
it) is told on that connection as soon as a broker name's master changes: NOTIFY_ROUTE_CHANGED
(1901, oneway, header brokerName), so it need not wait for its 30 s route poll.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import zlib

from ...net import Dispatcher, RequestContext
from ...protocol import RemotingCommand, RequestCode, ResponseCode, fastjson
from ...protocol.controller import NotifyRouteChangedRequestHeader
from ...protocol.header_codec import decode_header, encode_header
from ...protocol.headers import (
    AddWritePermOfBrokerResponseHeader,
    BrokerNameRequestHeader,
    GetKVConfigResponseHeader,
    GetRouteInfoRequestHeader,
    GetTopicsByClusterRequestHeader,
    KVConfigKeyHeader,
    PutKVConfigRequestHeader,
    QueryDataVersionRequestHeader,
    QueryDataVersionResponseHeader,
    RegisterBrokerRequestHeader,
    RegisterBrokerResponseHeader,
    TopicRequestHeader,
    UnRegisterBrokerRequestHeader,
    WipeWritePermOfBrokerResponseHeader,
)
from ...protocol.register_body import RegisterBodyError, decode_register_body
from ...protocol.route import (
    encode_cluster_info,
    encode_data_version,
    encode_kv_table,
    encode_topic_list,
    encode_topic_route,
)
from ...protocol.topic_config import parse_data_version
from ..channels import WatchedChannels
from .kvconfig import NAMESPACE_ORDER_TOPIC_CONFIG, KVConfigManager
from .routes import RouteInfoManager

log = logging.getLogger(__name__)

ROUTE_CHANGE_PUSH = "routeChangePush"  # ours: GET_ROUTEINFO_BY_TOPIC's opt-in
PUSH_TIMEOUT_S = 1.0

# FAQUrl.suggestTodo(FAQUrl.APPLY_TOPIC_URL), appended to the TOPIC_NOT_EXIST remark.
_FAQ_TIP = "\nSee http://rocketmq.apache.org/docs/faq/ for further details."


def _ok(ext_fields: dict[str, str] | None = None, body: bytes = b"") -> RemotingCommand:
    return RemotingCommand.response(ResponseCode.SUCCESS, ext_fields=ext_fields, body=body)


class NamesrvHandlers:
    """Binds the handlers to one RouteInfoManager and one KVConfigManager."""

    def __init__(self, routes: RouteInfoManager, kv: KVConfigManager, *,
                 order_message_enable: bool = False) -> None:
        self._routes = routes
        self._kv = kv
        self._order_message_enable = order_message_enable
        # brokers forgotten as soon as their connection closes (BrokerHousekeepingService)
        self._brokers = WatchedChannels(routes.on_channel_destroy)
        self._pushed = WatchedChannels()  # client connections told of master changes
        routes.on_master_changed = self._push_route_change

    def register(self, dispatcher: Dispatcher) -> None:
        for code, handler in (
            (RequestCode.PUT_KV_CONFIG, self.put_kv_config),
            (RequestCode.GET_KV_CONFIG, self.get_kv_config),
            (RequestCode.DELETE_KV_CONFIG, self.delete_kv_config),
            (RequestCode.REGISTER_BROKER, self.register_broker),
            (RequestCode.UNREGISTER_BROKER, self.unregister_broker),
            (RequestCode.GET_ROUTEINFO_BY_TOPIC, self.get_route_info_by_topic),
            (RequestCode.GET_BROKER_CLUSTER_INFO, self.get_broker_cluster_info),
            (RequestCode.GET_ALL_TOPIC_LIST_FROM_NAMESERVER, self.get_all_topic_list),
            (RequestCode.QUERY_DATA_VERSION, self.query_data_version),
            (RequestCode.WIPE_WRITE_PERM_OF_BROKER, self.wipe_write_perm),
            (RequestCode.ADD_WRITE_PERM_OF_BROKER, self.add_write_perm),
            (RequestCode.DELETE_TOPIC_IN_NAMESRV, self.delete_topic),
            (RequestCode.GET_TOPICS_BY_CLUSTER, self.topics_by_cluster),
            (RequestCode.GET_SYSTEM_TOPIC_LIST_FROM_NS, self.system_topics),
        ):
            dispatcher.register(code, handler)

    # -- brokers -----------------------------------------------------------------------------

    async def register_broker(self, request: RemotingCommand,
                              ctx: RequestContext) -> RemotingCommand:
        h = decode_header(RegisterBrokerRequestHeader, request.ext_fields)
        # UtilAll.crc32 keeps 31 bits; 0 means the broker did not compute one.
        if h.body_crc32 != 0 and zlib.crc32(request.body) & 0x7FFFFFFF != h.body_crc32:
            log.warning("%s: REGISTER_BROKER from %s: crc32 not match", ctx.peer, h.broker_addr)
            return RemotingCommand.response(ResponseCode.SYSTEM_ERROR, "crc32 not match")
        try:
            body = decode_register_body(request.body, h.compressed)
        except RegisterBodyError as exc:
            log.warning("%s: REGISTER_BROKER from %s: %s", ctx.peer, h.broker_addr, exc)
            return RemotingCommand.response(ResponseCode.SYSTEM_ERROR, str(exc))
        result = self._routes.register_broker(h.cluster_name, h.broker_addr, h.broker_name,
                                              h.broker_id, h.ha_server_addr, body, ctx.channel)
        self._brokers.add(ctx.channel)
        ext = encode_header(RegisterBrokerResponseHeader(
            ha_server_addr=result.ha_server_addr, master_addr=result.master_addr))
        order_conf = self._kv.namespace(NAMESPACE_ORDER_TOPIC_CONFIG)
        return _ok(ext, encode_kv_table(order_conf) if order_conf is not None else b"")

    async def unregister_broker(self, request: RemotingCommand,
                                ctx: RequestContext) -> RemotingCommand:
        h = decode_header(UnRegisterBrokerRequestHeader, request.ext_fields)
        self._routes.unregister_broker(h.cluster_name, h.broker_addr, h.broker_name, h.broker_id)
        return _ok()

    async def query_data_version(self, request: RemotingCommand,
                                 ctx: RequestContext) -> RemotingCommand:
        h = decode_header(QueryDataVersionRequestHeader, request.ext_fields)
        theirs = parse_data_version(fastjson.loads(request.body) if request.body else None)
        ours = self._routes.topic_config_version(h.broker_addr)
        changed = ours != theirs
        if not changed:  # an unchanged broker counts as alive, as after a registration
            self._routes.touch(h.broker_addr)
        ext = encode_header(QueryDataVersionResponseHeader(changed=changed))
        return _ok(ext, encode_data_version(ours) if ours is not None else b"")

    # -- clients -----------------------------------------------------------------------------

    async def get_route_info_by_topic(self, request: RemotingCommand,
                                      ctx: RequestContext) -> RemotingCommand:
        h = decode_header(GetRouteInfoRequestHeader, request.ext_fields)
        if request.ext_fields.get(ROUTE_CHANGE_PUSH) == "true":
            self._pushed.add(ctx.channel)
        route = self._routes.pickup_topic_route_data(h.topic)
        if route is None:
            return RemotingCommand.response(
                ResponseCode.TOPIC_NOT_EXIST,
                f"No topic route info in name server for the topic: {h.topic}{_FAQ_TIP}")
        if self._order_message_enable:
            route = dataclasses.replace(
                route, order_topic_conf=self._kv.get(NAMESPACE_ORDER_TOPIC_CONFIG, h.topic))
        return _ok(body=encode_topic_route(route))

    async def get_broker_cluster_info(self, request: RemotingCommand,
                                      ctx: RequestContext) -> RemotingCommand:
        return _ok(body=encode_cluster_info(self._routes.broker_addr_table,
                                            self._routes.cluster_addr_table))

    async def get_all_topic_list(self, request: RemotingCommand,
                                 ctx: RequestContext) -> RemotingCommand:
        return _ok(body=encode_topic_list(self._routes.topic_list()))

    def _push_route_change(self, broker_name: str) -> None:
        """NOTIFY_ROUTE_CHANGED to every subscribed client (oneway; a failed one is dropped)."""
        if not self._pushed:
            return
        log.info("master of %s changed: telling %d client(s)", broker_name, len(self._pushed))
        ext = encode_header(NotifyRouteChangedRequestHeader(broker_name=broker_name))
        loop = asyncio.get_running_loop()
        for channel in self._pushed:
            request = RemotingCommand.request(RequestCode.NOTIFY_ROUTE_CHANGED, ext)
            loop.create_task(self._push_one(channel, request))

    async def _push_one(self, channel: object, request: RemotingCommand) -> None:
        try:
            await channel.invoke_oneway(request, PUSH_TIMEOUT_S)  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - its next poll still finds the route
            log.info("route change push failed: %s", exc)

    async def topics_by_cluster(self, request: RemotingCommand,
                                ctx: RequestContext) -> RemotingCommand:
        h = decode_header(GetTopicsByClusterRequestHeader, request.ext_fields)
        return _ok(body=encode_topic_list(self._routes.topics_of_cluster(h.cluster)))

    async def system_topics(self, request: RemotingCommand,
                            ctx: RequestContext) -> RemotingCommand:
        return _ok(body=encode_topic_list(*self._routes.system_topics()))

    # -- admin -------------------------------------------------------------------------------

    async def delete_topic(self, request: RemotingCommand,
                           ctx: RequestContext) -> RemotingCommand:
        h = decode_header(TopicRequestHeader, request.ext_fields)
        log.info("deleteTopic %s called by %s: %s", h.topic, ctx.peer,
                 "removed" if self._routes.delete_topic(h.topic) else "not known")
        return _ok()

    async def wipe_write_perm(self, request: RemotingCommand,
                              ctx: RequestContext) -> RemotingCommand:
        h = decode_header(BrokerNameRequestHeader, request.ext_fields)
        count = self._routes.set_write_perm(h.broker_name, False)
        return _ok(encode_header(WipeWritePermOfBrokerResponseHeader(wipe_topic_count=count)))

    async def add_write_perm(self, request: RemotingCommand,
                             ctx: RequestContext) -> RemotingCommand:
        h = decode_header(BrokerNameRequestHeader, request.ext_fields)
        count = self._routes.set_write_perm(h.broker_name, True)
        return _ok(encode_header(AddWritePermOfBrokerResponseHeader(add_topic_count=count)))

    # -- KV config ---------------------------------------------------------------------------

    async def put_kv_config(self, request: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
        h = decode_header(PutKVConfigRequestHeader, request.ext_fields)
        self._kv.put(h.namespace, h.key, h.value)
        return _ok()

    async def get_kv_config(self, request: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
        h = decode_header(KVConfigKeyHeader, request.ext_fields)
        value = self._kv.get(h.namespace, h.key)
        if value is None:
            return RemotingCommand.response(
                ResponseCode.QUERY_NOT_FOUND,
                f"No config item, Namespace: {h.namespace} Key: {h.key}")
        return _ok(encode_header(GetKVConfigResponseHeader(value=value)))

    async def delete_kv_config(self, request: RemotingCommand,
                               ctx: RequestContext) -> RemotingCommand:
        h = decode_header(KVConfigKeyHeader, request.ext_fields)
        self._kv.delete(h.namespace, h.key)
        return _ok()
