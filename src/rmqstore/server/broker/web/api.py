"""The dashboard's JSON calls (GET reads, POST and DELETE act), answered from the broker's
own objects on its event loop: lists from the snapshot, details and searches on demand.

    GET    /api/overview                 broker, store, disk alarm, totals and TPS
    GET    /api/topics                   every topic with its queues, messages and TPS
    GET    /api/topics/{topic}           route (queues, perm) and status per queue
    POST   /api/topics                   create or update {topic, readQueues, writeQueues, perm}
    DELETE /api/topics/{topic}           delete a topic as mqadmin deleteTopic does: its config,
                                         queues and offsets here, then its routes at the
                                         NameServers (DELETE_TOPIC_IN_NAMESRV)
    GET    /api/groups                   every group: members online, topics, lag, TPS
    GET    /api/groups/{group}           members, lag per queue, lag and TPS over time
    GET    /api/producers                producer connections
    GET    /api/messages?topic&key|id|begin&end    search (at most 64 results)
    GET    /api/message?id[&topic]       one message with its trace
    GET    /api/dlq?group[&begin&end]    messages of %DLQ%<group>
    POST   /api/dlq/resend               {group, msgIds}: back to %RETRY%<group>
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from aiohttp import web

from ....net import RequestRefused
from ....protocol.headers import CreateTopicRequestHeader
from ....protocol.topic_config import TopicConfig
from ....store_stats import read_store_stats
from ..handlers.admin import deletion_refusal, topic_refusal
from ..metrics.collector import BrokerState
from ..metrics.labels import language, version_desc
from ..topics import PERM_READ, PERM_WRITE
from .messages import LookupRefused, MessageLookup, detail, summary
from .snapshot import Snapshots

log = logging.getLogger(__name__)

MAX_RESEND = 64  # message ids one resend call may name


class DashboardApi:
    def __init__(self, state: BrokerState, acl_enabled: bool) -> None:
        self._s = state
        self._acl = acl_enabled
        self.snapshots = Snapshots(state, self.overview)
        self._lookup = MessageLookup(state.store, state.topics,
                                     state.config.msg_trace_topic_name)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/overview", self._overview),
            web.get("/api/topics", self._topics),
            web.get("/api/topics/{topic}", self._topic),
            web.post("/api/topics", self._create_topic),
            web.delete("/api/topics/{topic}", self._delete_topic),
            web.get("/api/groups", self._groups),
            web.get("/api/groups/{group}", self._group),
            web.get("/api/producers", self._producers),
            web.get("/api/messages", self._messages),
            web.get("/api/message", self._message),
            web.get("/api/dlq", self._dlq),
            web.post("/api/dlq/resend", self._resend),
        ]

    def overview(self) -> dict[str, Any]:
        s = self._s
        c = s.config
        st = read_store_stats(s.store)
        tps_in = sum(s.stats.history.topic_tps().values())
        tps_out = sum(s.stats.history.group_tps().values())
        return {
            "cluster": c.cluster_name, "broker": c.broker_name, "brokerId": c.broker_id,
            "address": c.addr, "bootTimestamp": s.stats.boot_ms, "aclEnabled": self._acl,
            "flushDiskType": "SYNC_FLUSH" if c.sync_flush else "ASYNC_FLUSH",
            "permission": c.broker_permission, "topics": len(s.topics.all_configs()),
            "messagesIn": s.stats.traffic.messages_in_total(),
            "messagesOut": s.stats.traffic.messages_out_total(),
            "tpsIn": round(tps_in, 2), "tpsOut": round(tps_out, 2),
            "store": {"root": str(s.store.root), "commitlogMinOffset": st.commitlog_min_offset,
                      "commitlogMaxOffset": st.commitlog_max_offset,
                      "flushBehindBytes": st.flush_behind_bytes,
                      "diskUsedBytes": st.disk_used_bytes, "diskTotalBytes": st.disk_total_bytes,
                      "diskUsedRatio": round(st.disk_used_ratio, 4),
                      "diskAlarmLevel": st.disk_alarm_level,
                      "earliestStoreTimestamp": st.earliest_store_time_ms,
                      "writesStopped": list(st.writes_stopped),
                      "syncFailedOffset": st.sync_failed_at},
            "diskThresholds": {"maxUsed": c.disk_max_used_ratio,
                               "cleanForcibly": c.disk_clean_forcibly_ratio,
                               "warning": c.disk_full_ratio},
        }

    # -- lists ----------------------------------------------------------------------------
    async def _overview(self, request: web.Request) -> web.Response:
        return web.json_response(self.snapshots.current().overview)

    async def _topics(self, request: web.Request) -> web.Response:
        snap = self.snapshots.current()
        return web.json_response({"takenAt": snap.taken_ms, "topics": snap.topics})

    async def _groups(self, request: web.Request) -> web.Response:
        snap = self.snapshots.current()
        return web.json_response({"takenAt": snap.taken_ms, "groups": snap.groups})

    async def _producers(self, request: web.Request) -> web.Response:
        snap = self.snapshots.current()
        return web.json_response({"takenAt": snap.taken_ms, "producers": snap.producers})

    # -- details --------------------------------------------------------------------------
    async def _topic(self, request: web.Request) -> web.Response:
        name = request.match_info["topic"]
        cfg = self._s.topics.get(name)
        if cfg is None:
            raise _not_found(f"no topic {name[:130]!r}")
        store = self._s.store
        progress = self._s.stats.progress
        queues = []
        for qid in range(max(cfg.read_queue_nums, cfg.write_queue_nums)):
            hi = max(0, store.max_offset(name, qid))
            queues.append({"queueId": qid, "minOffset": max(0, store.min_offset(name, qid)),
                           "maxOffset": hi,
                           "lastUpdateTimestamp": progress.store_time(name, qid, hi - 1)})
        consumers = sorted(g for g, topics in self._s.stats.group_topics().items()
                           if name in topics)
        c = self._s.config
        return web.json_response({
            "topic": name, "readQueues": cfg.read_queue_nums, "writeQueues": cfg.write_queue_nums,
            "perm": cfg.perm, "order": cfg.order,
            "route": {"brokerName": c.broker_name, "brokerAddr": c.addr,
                      "cluster": c.cluster_name},
            "queues": queues, "consumerGroups": consumers})

    async def _group(self, request: web.Request) -> web.Response:
        group = request.match_info["group"]
        s = self._s
        topics = s.stats.group_topics().get(group, set())
        info = s.clients.consumers.get(group)
        if not topics and info is None and s.groups.get(group) is None:
            raise _not_found(f"no group {group[:130]!r}")
        queues = []
        for topic in sorted(topics):
            cfg = s.topics.get(topic)
            if cfg is None:
                continue
            for p in s.stats.progress.queues(group, topic, cfg.read_queue_nums):
                queues.append({"topic": topic, "queueId": p.queue_id,
                               "brokerOffset": p.broker_offset,
                               "consumerOffset": p.consumer_offset, "lag": p.lag,
                               "inflight": p.inflight, "lastTimestamp": p.last_timestamp_ms})
        members = [] if info is None else [
            {"clientId": m.client_id, "address": m.channel.peer, "language": language(m.language),
             "version": version_desc(m.version)} for m in info.clients.values()]
        history = [{"at": p.at_ms, "lag": p.lag, "tps": round(p.tps, 2)}
                   for p in s.stats.history.series(group)]
        return web.json_response({
            "group": group, "members": members, "queues": queues, "history": history,
            "consumeType": info.consume_type if info else "",
            "messageModel": info.message_model if info else "",
            "tps": round(s.stats.history.group_tps().get(group, 0.0), 2),
            "sampleIntervalSeconds": s.stats.history.interval_s})

    # -- messages -------------------------------------------------------------------------
    async def _messages(self, request: web.Request) -> web.Response:
        q = request.query
        topic, key, msg_id = q.get("topic", ""), q.get("key", ""), q.get("id", "")
        try:
            if msg_id:
                found = self._lookup.by_id(msg_id, topic)
                messages = [] if found is None else [found]
            elif key:
                messages = self._lookup.by_key(topic, key, _ms(q, "begin", 0),
                                               _ms(q, "end", None))
            elif topic:
                end = _ms(q, "end", None) or _now_ms()
                messages = self._lookup.by_time(topic, _ms(q, "begin", end - 3_600_000), end)
            else:
                raise LookupRefused("give a message id, a topic and key, or a topic and times")
        except LookupRefused as exc:
            raise _bad(str(exc)) from None
        return web.json_response({"messages": [summary(m) for m in messages]})

    async def _message(self, request: web.Request) -> web.Response:
        msg = self._lookup.by_id(request.query.get("id", ""), request.query.get("topic", ""))
        if msg is None:
            raise _not_found("no such message")
        return web.json_response({"message": detail(msg), "trace": self._lookup.trace(msg)})

    async def _dlq(self, request: web.Request) -> web.Response:
        q = request.query
        group = q.get("group", "")
        if not group:
            raise _bad("give a consumer group")
        messages = self._lookup.dlq(group, _ms(q, "begin", 0), _ms(q, "end", None))
        return web.json_response({"group": group, "messages": [summary(m) for m in messages]})

    # -- actions --------------------------------------------------------------------------
    async def _create_topic(self, request: web.Request) -> web.Response:
        body = await _json(request)
        try:
            h = CreateTopicRequestHeader(
                topic=str(body.get("topic", "")), default_topic="",
                read_queue_nums=int(body.get("readQueues", 8)),
                write_queue_nums=int(body.get("writeQueues", body.get("readQueues", 8))),
                perm=int(body.get("perm", PERM_READ | PERM_WRITE)))
        except (TypeError, ValueError) as exc:
            raise _bad(f"bad topic request: {exc}") from None
        refusal = topic_refusal(h)
        if refusal is not None:
            raise _bad(refusal)
        try:
            self._s.topics.put(TopicConfig(h.topic, h.read_queue_nums, h.write_queue_nums,
                                           perm=h.perm))
        except RequestRefused as exc:
            raise _bad(str(exc)) from None
        self.snapshots.invalidate()
        log.info("dashboard: topic %s created or updated by %s", h.topic, request.remote)
        await self._s.topics.registered(self._s.config.register_timeout_ms / 1000)
        return web.json_response({"topic": h.topic})

    async def _delete_topic(self, request: web.Request) -> web.Response:
        name = request.match_info["topic"]
        refusal = deletion_refusal(name)
        if refusal is not None:
            raise _bad(refusal[:200])
        if not self._s.topics.delete(name):  # DELETE_TOPIC_IN_BROKER's path: files removed
            raise _not_found(f"no topic {name[:130]!r}")
        self.snapshots.invalidate()
        log.info("dashboard: topic %s deleted by %s", name, request.remote)
        # The registration without the topic first, else it would bring the route back.
        await self._s.topics.registered(self._s.config.register_timeout_ms / 1000)
        registrar = self._s.registrar
        name_servers = await registrar.delete_topic(name) if registrar is not None else []
        return web.json_response({"deleted": name, "nameServers": name_servers})

    async def _resend(self, request: web.Request) -> web.Response:
        body = await _json(request)
        group, ids = str(body.get("group", "")), body.get("msgIds")
        if not group or not isinstance(ids, list) or not 1 <= len(ids) <= MAX_RESEND:
            raise _bad(f"give a group and 1 to {MAX_RESEND} msgIds")
        results = []
        for msg_id in ids:
            try:
                results.append({"msgId": msg_id, **self._lookup.resend(group, str(msg_id))})
            except LookupRefused as exc:
                results.append({"msgId": msg_id, "error": str(exc)})
        self.snapshots.invalidate()
        log.info("dashboard: %d DLQ message(s) of %s resent by %s",
                 sum("error" not in r for r in results), group, request.remote)
        return web.json_response({"results": results})


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise _bad("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise _bad("the body must be a JSON object")
    return body


def _ms(query: Any, name: str, default: int | None) -> int | None:
    raw = query.get(name, "")
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise _bad(f"{name} must be milliseconds since the epoch") from None


def _now_ms() -> int:
    return int(time.time() * 1000)


def _bad(reason: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=_error(reason), content_type="application/json")


def _not_found(reason: str) -> web.HTTPNotFound:
    return web.HTTPNotFound(text=_error(reason), content_type="application/json")


def _error(reason: str) -> str:
    return json.dumps({"error": reason})
