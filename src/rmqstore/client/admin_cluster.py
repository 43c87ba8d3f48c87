"""Admin of brokers and topics (DefaultMQAdminExtImpl of rocketmq-all-4.9.7, the calls behind
mqadmin's clusterList, brokerStatus, get/updateBrokerConfig, topicList, topicRoute,
topicStatus, updateTopic, updateTopicPerm, deleteTopic, wipeWritePerm, addWritePerm and
statsAll)."""

from __future__ import annotations

import asyncio

from ..protocol import RequestCode, ResponseCode
from ..protocol.admin_bodies import (
    CallSnapshot,
    TopicOffset,
    decode_broker_stats,
    decode_group_list,
    decode_kv_table,
    decode_topic_stats,
)
from ..protocol.header_codec import encode_header
from ..protocol.headers import CreateTopicRequestHeader
from ..protocol.java_properties import format_properties, parse_properties
from ..protocol.message import MessageQueue
from ..protocol.route import TopicRouteData, decode_topic_list
from .admin_base import AdminBase
from .errors import BrokerError

PERM_READ_WRITE = 6


class ClusterAdmin(AdminBase):
    # -- brokers -----------------------------------------------------------------------------

    async def runtime_info(self, addr: str) -> dict[str, str]:
        """GET_BROKER_RUNTIME_INFO: the broker's KVTable (putTps, commitLogDiskRatio, ...)."""
        return decode_kv_table((await self._call(addr, RequestCode.GET_BROKER_RUNTIME_INFO)).body)

    async def broker_config(self, addr: str) -> dict[str, str]:
        """GET_BROKER_CONFIG: every key in force (a secret is never sent)."""
        resp = await self._call(addr, RequestCode.GET_BROKER_CONFIG)
        return parse_properties(resp.body.decode("utf-8"))

    async def update_broker_config(self, addr: str, items: dict[str, str]) -> None:
        """UPDATE_BROKER_CONFIG; BrokerError (NO_PERMISSION) for a key it may not change."""
        await self._call(addr, RequestCode.UPDATE_BROKER_CONFIG,
                         body=format_properties(items).encode("utf-8"))

    async def broker_stats(self, addr: str, name: str,
                           key: str) -> dict[str, CallSnapshot] | None:
        """VIEW_BROKER_STATS_DATA: the minute, hour and day windows of one stats item
        (TOPIC_PUT_NUMS of a topic, GROUP_GET_NUMS of topic@group, ...); None if the broker
        never counted it."""
        resp = await self._invoke(addr, RequestCode.VIEW_BROKER_STATS_DATA,
                                  {"statsName": name, "statsKey": key})
        if resp.code != ResponseCode.SUCCESS:
            if "not exist" in (resp.remark or ""):
                return None
            raise BrokerError(resp.code, resp.remark, addr)
        return decode_broker_stats(resp.body)

    async def set_write_perm(self, broker_name: str, writable: bool) -> dict[str, int]:
        """WIPE_WRITE_PERM_OF_BROKER / ADD_WRITE_PERM_OF_BROKER at every NameServer: how many
        topics each changed."""
        code, field = ((RequestCode.ADD_WRITE_PERM_OF_BROKER, "addTopicCount") if writable
                       else (RequestCode.WIPE_WRITE_PERM_OF_BROKER, "wipeTopicCount"))
        answers = await self._each_namesrv(code, {"brokerName": broker_name})
        return {addr: int(r.ext_fields.get(field, 0)) for addr, r in answers.items()}

    # -- topics --------------------------------------------------------------------------------

    async def topic_list(self, cluster: str | None = None) -> list[str]:
        """GET_ALL_TOPIC_LIST_FROM_NAMESERVER, or GET_TOPICS_BY_CLUSTER for one cluster."""
        if cluster is None:
            resp = await self._namesrv(RequestCode.GET_ALL_TOPIC_LIST_FROM_NAMESERVER)
        else:
            resp = await self._namesrv(RequestCode.GET_TOPICS_BY_CLUSTER, {"cluster": cluster})
        return decode_topic_list(resp.body)

    async def route(self, topic: str) -> TopicRouteData:
        """GET_ROUTEINFO_BY_TOPIC; RouteNotFound when the NameServers know none."""
        return await self.routes.fetch(topic)

    async def create_topic(self, addr: str, topic: str, read_queues: int = 8,
                           write_queues: int = 8, perm: int = PERM_READ_WRITE,
                           order: bool = False) -> None:
        """UPDATE_AND_CREATE_TOPIC on one broker, as mqadmin updateTopic sends it."""
        ext = encode_header(CreateTopicRequestHeader(
            topic=topic, default_topic="TBW102", read_queue_nums=read_queues,
            write_queue_nums=write_queues, perm=perm, topic_filter_type="SINGLE_TAG",
            topic_sys_flag=0, order=order))
        await self._call(addr, RequestCode.UPDATE_AND_CREATE_TOPIC, ext)

    async def delete_topic(self, topic: str, cluster: str) -> tuple[list[str], list[str]]:
        """DELETE_TOPIC_IN_BROKER at every master of ``cluster``, then DELETE_TOPIC_IN_NAMESRV
        at every NameServer (mqadmin deleteTopic); the brokers and NameServers that did it."""
        masters = await self.masters(cluster)
        await asyncio.gather(*(self._call(a, RequestCode.DELETE_TOPIC_IN_BROKER,
                                          {"topic": topic}) for a in masters.values()))
        done = await self._each_namesrv(RequestCode.DELETE_TOPIC_IN_NAMESRV, {"topic": topic})
        self.routes.routes.pop(topic, None)
        return list(masters.values()), list(done)

    async def topic_stats(self, topic: str) -> dict[MessageQueue, TopicOffset]:
        """GET_TOPIC_STATS_INFO at every master of the topic: min/max offset and last store
        time per queue, sorted."""
        route = await self.routes.fetch(topic)
        out: dict[MessageQueue, TopicOffset] = {}
        for bd in route.broker_datas:
            if bd.master_addr is not None:
                resp = await self._call(bd.master_addr, RequestCode.GET_TOPIC_STATS_INFO,
                                        {"topic": topic})
                out.update(decode_topic_stats(resp.body))
        return dict(sorted(out.items()))

    async def consumed_by(self, topic: str) -> list[str]:
        """QUERY_TOPIC_CONSUME_BY_WHO at every master of the topic: the groups consuming it."""
        route = await self.routes.fetch(topic)
        groups: set[str] = set()
        for bd in route.broker_datas:
            if bd.master_addr is not None:
                resp = await self._call(bd.master_addr, RequestCode.QUERY_TOPIC_CONSUME_BY_WHO,
                                        {"topic": topic})
                groups.update(decode_group_list(resp.body))
        return sorted(groups)

    async def put_kv(self, namespace: str, key: str, value: str) -> None:
        """PUT_KV_CONFIG at every NameServer (ORDER_TOPIC_CONFIG for ordered topics)."""
        await self._each_namesrv(RequestCode.PUT_KV_CONFIG,
                                 {"namespace": namespace, "key": key, "value": value})
