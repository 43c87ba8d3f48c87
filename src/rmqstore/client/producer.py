"""Producer: SEND_MESSAGE_V2 (310), SEND_BATCH_MESSAGE (320), oneway and ordered sends.

Behaviour follows DefaultMQProducerImpl of rocketmq-all-4.9.7:

* the route comes from the NameServer (cached, refreshed every 30 s); an unknown topic is sent
  through TBW102's brokers and created by the broker;
* queues are chosen round-robin; a retry picks a queue on another broker than the one that just
  failed, and, with latency fault avoidance, skips brokers that were slow or failing;
* a sync send tries 1 + ``retry_times_when_send_failed`` times within ``send_timeout_s`` on network
  errors and on broker codes 1, 14, 16, 17, 204, 205; other codes fail at once; a stored but not
  OK status (flush/slave timeouts) is returned, or retried if
  ``retry_another_broker_when_not_store_ok``;
* bodies of at least ``compress_over_bytes`` are zlib-compressed (sysFlag 0x1 | zlib type 0x300);
* each message gets a UNIQ_KEY (``SendResult.msg_id``); the broker's id is ``offset_msg_id``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
import zlib
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, fields
from enum import Enum
from typing import Any

from ..net import TlsClientConfig
from ..protocol import RemotingCommand, RequestCode, ResponseCode
from ..protocol.acl_signature import Credentials
from ..protocol.admin_bodies import java_string_hash
from ..protocol.json_template import JsonFrameTemplate
from ..protocol.message import (
    COMPRESSION_SHIFT,
    COMPRESSION_ZLIB,
    SYSFLAG_COMPRESSED,
    SYSFLAG_TX_PREPARED,
)
from ._lifecycle import Lifecycle
from ._tasks import TaskGroup
from .errors import BrokerError, ClientClosed, RouteNotFound, SendFailed
from .ids import create_uniq_id, make_client_id
from .latency import LatencyFaultTolerance
from .message import (
    PROP_UNIQ_KEY,
    RETRY_GROUP_TOPIC_PREFIX,
    Message,
    MessageQueue,
    encode_batch,
    properties_text,
)
from .routes import AUTO_CREATE_TOPIC, DEFAULT_TOPIC_QUEUE_NUMS, RouteCache
from .trace import TRACE_TOPIC, TraceDispatcher, trace_group
from .transport import CLIENT_LANGUAGE, CLIENT_VERSION, Transport, is_network_error

log = logging.getLogger(__name__)

RETRY_RESPONSE_CODES = frozenset({1, 14, 16, 17, 204, 205})  # DefaultMQProducer.retryResponseCodes
SYSFLAG_ZLIB = SYSFLAG_COMPRESSED | (COMPRESSION_ZLIB << COMPRESSION_SHIFT)
MAX_MESSAGE_SIZE = 4 * 1024 * 1024

QueueSelector = Callable[[list[MessageQueue], Message, Any], MessageQueue]
ROUTE_AGAIN_S = 0.5
MAX_SEND_TEMPLATES = 1024  # pre-made send frames kept (one per queue sent to); then made anew


def _master_may_have_moved(exc: BaseException) -> bool:
    """A network error, or SERVICE_NOT_AVAILABLE (a slave, or a master whose lease ran out)."""
    if isinstance(exc, BrokerError):
        return exc.code == ResponseCode.SERVICE_NOT_AVAILABLE
    return is_network_error(exc)


class SendStatus(Enum):
    SEND_OK = 0
    FLUSH_DISK_TIMEOUT = 10
    SLAVE_NOT_AVAILABLE = 11
    FLUSH_SLAVE_TIMEOUT = 12


_STATUS_OF = {s.value: s for s in SendStatus}  # SendStatus(code) without Enum's call


@dataclass(frozen=True, slots=True)
class SendResult:
    """``msg_id`` is the UNIQ_KEY (comma-joined for a batch); ``offset_msg_id`` the broker's id."""

    status: SendStatus
    msg_id: str
    offset_msg_id: str
    queue: MessageQueue
    queue_offset: int
    transaction_id: str | None = None
    region_id: str | None = None
    broker_addr: str | None = None  # the broker that answered
    master_epoch: int | None = None  # its master epoch, when it runs in controller mode


# A frozen dataclass's __init__ sets each field through object.__setattr__, about half a
# microsecond of a sync send's Python: a send's result sets the slots through their
# descriptors instead (this unpacking fails at import for a field added and not named here).
(_set_status, _set_msg_id, _set_offset_msg_id, _set_queue, _set_queue_offset,
 _set_transaction_id, _set_region_id, _set_broker_addr, _set_master_epoch) = (
    SendResult.__dict__[f.name].__set__ for f in fields(SendResult))
_new_object = object.__new__


def _send_result(status: SendStatus, msg_id: str, offset_msg_id: str, queue: MessageQueue,
                 queue_offset: int, transaction_id: str | None, region_id: str | None,
                 broker_addr: str, master_epoch: int | None) -> SendResult:
    """SendResult(status, ...) as its __init__ makes it, every field given."""
    result = _new_object(SendResult)
    _set_status(result, status)
    _set_msg_id(result, msg_id)
    _set_offset_msg_id(result, offset_msg_id)
    _set_queue(result, queue)
    _set_queue_offset(result, queue_offset)
    _set_transaction_id(result, transaction_id)
    _set_region_id(result, region_id)
    _set_broker_addr(result, broker_addr)
    _set_master_epoch(result, master_epoch)
    return result


def select_by_hash(queues: list[MessageQueue], msg: Message, arg: Any) -> MessageQueue:
    """SelectMessageQueueByHash: abs(hashCode(arg)) % len(queues)."""
    key = arg if isinstance(arg, str) else str(arg)
    return queues[abs(java_string_hash(key)) % len(queues)]


class Producer(Lifecycle):
    """An asyncio producer. Use as ``async with Producer("group", namesrv="127.0.0.1:9876") as p``.

    All methods run on the event loop that started it.
    """

    def __init__(self, group: str, namesrv: str | None = None, *,
                 credentials: Credentials | None = None, namesrv_domain: str | None = None,
                 instance_name: str | None = None, send_timeout_s: float = 3.0,
                 retry_times_when_send_failed: int = 2,
                 retry_another_broker_when_not_store_ok: bool = False,
                 compress_over_bytes: int = 4096, compress_level: int = 5,
                 max_message_size: int = MAX_MESSAGE_SIZE,
                 send_latency_fault_enable: bool = True,
                 route_refresh_s: float = 30.0, heartbeat_s: float = 30.0,
                 trace: bool = False, trace_topic: str = TRACE_TOPIC,
                 tls: TlsClientConfig | None = None) -> None:
        """``trace=True`` records a Pub trace record per send to ``trace_topic`` (trace.py);
        ``tls`` makes every connection TLS (rmqstore.net.TlsClientConfig)."""
        self.group = group
        self.client_id = make_client_id(instance_name)
        self.tracer = trace_dispatcher(namesrv, group, "PRODUCER", trace_topic, credentials,
                                       namesrv_domain, tls) if trace else None
        self.send_timeout_s = send_timeout_s
        self.retry_times_when_send_failed = retry_times_when_send_failed
        self.retry_another_broker_when_not_store_ok = retry_another_broker_when_not_store_ok
        self.compress_over_bytes = compress_over_bytes
        self.compress_level = compress_level
        self.max_message_size = max_message_size
        self.send_latency_fault_enable = send_latency_fault_enable
        self._route_refresh_s = route_refresh_s
        self._heartbeat_s = heartbeat_s
        self._transport = Transport(namesrv, credentials, namesrv_domain, tls)
        self.routes = RouteCache(self._transport)
        self._route_again_at: dict[str, float] = {}  # topic -> last refetch after a failure
        self._faults = LatencyFaultTolerance()
        self._counters: dict[str, itertools.count[int]] = {}
        self._tasks = TaskGroup()
        self._started = False
        self._heartbeated: set[str] = set()  # brokers told of this producer
        self._send_templates: dict[MessageQueue, JsonFrameTemplate] = {}  # see _send_template
        # the loop start() ran on, which every method runs on: asyncio.get_running_loop()
        # costs a getpid() syscall, once per send otherwise
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Resolve the NameServers and start the route-refresh and heartbeat timers."""
        self._loop = asyncio.get_running_loop()
        await self._transport.resolve_namesrv()
        self._tasks.every(self._route_refresh_s, self.routes.refresh_all, name="route-refresh")
        self._tasks.every(self._heartbeat_s, self.heartbeat, name="heartbeat")
        if self._transport.uses_http_namesrv:
            self._tasks.every(120.0, self._transport.refresh_namesrv_from_http, name="nsaddr")
        if self.tracer is not None:
            await self.tracer.start()
        self._started = True

    async def close(self) -> None:
        """Stop timers, UNREGISTER_CLIENT at every known broker, close connections."""
        if not self._started:
            return
        self._started = False
        if self.tracer is not None:
            await self.tracer.close()
        await self._tasks.cancel_all()
        for addr in self.routes.master_addrs():
            req = self._transport.request(RequestCode.UNREGISTER_CLIENT, {
                "clientID": self.client_id, "producerGroup": self.group})
            try:
                await self._transport.invoke(addr, req, 1.0)
            except Exception as exc:  # noqa: BLE001 - best effort at shutdown
                log.debug("unregister at %s failed: %s", addr, exc)
        await self._transport.close()

    async def heartbeat(self) -> None:
        """HEART_BEAT with our producer group to every master we know."""
        for addr in self.routes.master_addrs():
            await self._heartbeat_to(addr)

    async def _heartbeat_to(self, addr: str) -> None:
        body = json.dumps({"clientID": self.client_id, "consumerDataSet": [],
                           "producerDataSet": [{"groupName": self.group}]}).encode()
        self._heartbeated.add(addr)
        try:
            await self._transport.invoke(addr, self._transport.request(
                RequestCode.HEART_BEAT, body=body), 3.0)
        except Exception as exc:  # noqa: BLE001
            log.info("heartbeat to %s failed: %s", addr, exc)

    # -- sending ---------------------------------------------------------------------------

    def send(self, msg: Message, *, queue: MessageQueue | None = None,
             selector: QueueSelector | None = None, arg: Any = None,
             sharding_key: str | None = None,
             timeout_s: float | None = None) -> Coroutine[Any, Any, SendResult]:
        """Send and wait for the broker's answer (a coroutine: ``await producer.send(msg)``).

        ``queue`` pins the queue; ``selector(queues, msg, arg)`` or ``sharding_key`` (hashed as
        Java's SelectMessageQueueByHash) choose one for ordered messages; those are not retried
        on another queue. Raises SendFailed (cause: the last error) or BrokerError.

        Hands back the coroutine that does the work, so that a send awaits no coroutine of
        ours but that one: each level of coroutines is resumed again when the answer comes.
        """
        timeout_s = self.send_timeout_s if timeout_s is None else timeout_s
        if queue is None and selector is None and sharding_key is None:
            return self._send_retrying(msg, None, timeout_s, batch=False)
        return self._send_chosen(msg, queue, selector, arg, sharding_key, timeout_s)

    async def _send_chosen(self, msg: Message, queue: MessageQueue | None,
                           selector: QueueSelector | None, arg: Any, sharding_key: str | None,
                           timeout_s: float) -> SendResult:
        self._check_started()
        sys_flag, body, props = self._prepare(msg)
        if selector is not None or sharding_key is not None:
            queues = list((await self.routes.publish_route(msg.topic))[1])  # the user's to keep
            pick = selector or select_by_hash
            queue = pick(queues, msg, sharding_key if selector is None else arg)
        assert queue is not None
        return await self._send_pinned(queue, msg, body, sys_flag, props, timeout_s)

    async def _send_pinned(self, queue: MessageQueue, msg: Message, body: bytes, sys_flag: int,
                           props: dict[str, str], timeout_s: float) -> SendResult:
        """A send to one queue: if its broker is gone or no longer master (a failover), the
        route is fetched again and, when the master moved, the same queue is tried once more on
        the new one within the timeout (a duplicate is possible, never a reordering)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        before = self.routes.broker_addr(queue.broker_name)
        try:
            return await self._send_to(queue, msg, body, sys_flag, props, timeout_s, batch=False)
        except Exception as exc:
            if not _master_may_have_moved(exc):
                raise
            if deadline - loop.time() <= 0:  # a timeout took it all: the next send needs it
                self._tasks.spawn(self._route_again(queue.topic), "route-again")
                raise
            await self._route_again(queue.topic)
            moved = self.routes.broker_addr(queue.broker_name)
            if moved is None or moved == before or deadline - loop.time() <= 0:
                raise
            log.info("send to %s: master moved %s -> %s; sending again", queue, before, moved)
            return await self._send_to(queue, msg, body, sys_flag, props,
                                       deadline - loop.time(), batch=False)

    async def _route_again(self, topic: str) -> None:
        """Refetch a topic's route after a failure that hints at a new master (at most every
        ROUTE_AGAIN_S per topic; a failure to fetch keeps the old route)."""
        loop = asyncio.get_running_loop()
        if loop.time() - self._route_again_at.get(topic, -1e9) < ROUTE_AGAIN_S:
            return
        self._route_again_at[topic] = loop.time()
        try:
            await self.routes.update(topic)
        except Exception as exc:  # noqa: BLE001 - the periodic refresh comes anyway
            log.info("route of %s after a failed send: %s", topic, exc)

    async def send_oneway(self, msg: Message, *, queue: MessageQueue | None = None) -> None:
        """Send without waiting for the broker: one try, no result."""
        self._check_started()
        sys_flag, body, props = self._prepare(msg)
        if queue is None:
            queue = self._select(msg.topic, (await self.routes.publish_route(msg.topic))[1], None)
        addr = await self._broker_addr(queue)
        req = self._send_request(RequestCode.SEND_MESSAGE_V2, queue, msg, body, sys_flag, props)
        await self._transport.invoke_oneway(addr, req, self.send_timeout_s)

    async def send_batch(self, msgs: Sequence[Message], *, queue: MessageQueue | None = None,
                         timeout_s: float | None = None) -> SendResult:
        """One SEND_BATCH_MESSAGE: same topic, no delay, no retry topic, never compressed.
        ``msg_id`` of the result joins the UNIQ_KEYs with commas, in order."""
        self._check_started()
        if not msgs:
            raise ValueError("empty batch")
        topic = msgs[0].topic
        entries, ids = [], []
        for m in msgs:
            if m.topic != topic:
                raise ValueError("a batch holds messages of one topic")
            if m.delay_level > 0:
                raise ValueError("TimeDelayLevel is not supported for batching")
            if m.timed:  # the broker would store the batch at once, ignoring the time
                raise ValueError("a delivery time is not supported for batching")
            if topic.startswith(RETRY_GROUP_TOPIC_PREFIX):
                raise ValueError("Retry Group is not supported for batching")
            props = m.wire_properties()
            uid = props.setdefault(PROP_UNIQ_KEY, create_uniq_id())
            ids.append(uid)
            entries.append((bytes(m.body), m.flag, properties_text(props)))
        body = encode_batch(entries)
        if len(body) > self.max_message_size:
            raise ValueError(f"batch is {len(body)} bytes; the limit is {self.max_message_size}")
        head = Message(topic=topic, body=body, properties={PROP_UNIQ_KEY: ",".join(ids)})
        head_props = {"WAIT": "true"}
        timeout_s = self.send_timeout_s if timeout_s is None else timeout_s
        if queue is not None:
            return await self._send_to(queue, head, body, 0, head_props, timeout_s, batch=True)
        return await self._send_retrying(head, (0, body, head_props), timeout_s, batch=True)

    async def create_topic(self, topic: str, queue_nums: int = DEFAULT_TOPIC_QUEUE_NUMS, *,
                           key: str = AUTO_CREATE_TOPIC, perm: int = 6,
                           order: bool = False) -> None:
        """MQAdminImpl.createTopic: UPDATE_AND_CREATE_TOPIC on every master of ``key``'s route."""
        self._check_started()
        route = await self.routes.fetch(key)
        for bd in route.broker_datas:
            if bd.master_addr is None:
                continue
            req = self._transport.request(RequestCode.UPDATE_AND_CREATE_TOPIC, {
                "topic": topic, "defaultTopic": key, "readQueueNums": str(queue_nums),
                "writeQueueNums": str(queue_nums), "perm": str(perm),
                "topicFilterType": "SINGLE_TAG", "topicSysFlag": "0",
                "order": "true" if order else "false"})
            resp = await self._transport.invoke(bd.master_addr, req, self.send_timeout_s)
            if resp.code != ResponseCode.SUCCESS:
                raise BrokerError(resp.code, resp.remark, bd.master_addr)
        # The broker re-registers at once; wait (bounded) until the NameServer serves the route.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.send_timeout_s
        while loop.time() < deadline:
            try:
                route = await self.routes.update(topic)
                if sum(q.write_queue_nums for q in route.queue_datas) >= queue_nums:
                    return
            except RouteNotFound:
                pass
            await asyncio.sleep(0.05)

    async def publish_queues(self, topic: str) -> list[MessageQueue]:
        """The queues ``send`` chooses from (fetchPublishMessageQueues)."""
        self._check_started()
        return list((await self.routes.publish_route(topic))[1])

    # -- internals -------------------------------------------------------------------------

    def _check_started(self) -> None:
        if not self._started:
            raise ClientClosed("producer not started (use `async with` or await start())")

    def _prepare(self, msg: Message) -> tuple[int, bytes, dict[str, str]]:
        """Validate; add UNIQ_KEY; compress a large body. Returns (sysFlag, body, properties)."""
        body = bytes(msg.body)
        if not body:
            raise ValueError("the message body is empty")
        if len(body) > self.max_message_size:
            raise ValueError(f"the message body is {len(body)} bytes; the limit is "
                             f"{self.max_message_size}")
        props = msg.wire_properties()
        props.setdefault(PROP_UNIQ_KEY, create_uniq_id())
        sys_flag = 0
        if len(body) >= self.compress_over_bytes:
            packed = zlib.compress(body, self.compress_level)
            if len(packed) < len(body):
                body, sys_flag = packed, SYSFLAG_ZLIB
        tran = props.get("TRAN_MSG")
        if tran is not None and tran.lower() == "true":  # sendKernelImpl: a half message
            sys_flag |= SYSFLAG_TX_PREPARED
        return sys_flag, body, props

    def _select(self, topic: str, queues: list[MessageQueue],
                last_broker: str | None) -> MessageQueue:
        """MQFaultStrategy.selectOneMessageQueue."""
        counter = self._counters.get(topic) or self._counters.setdefault(topic, itertools.count())
        n = len(queues)
        if self.send_latency_fault_enable:
            for _ in range(n):
                mq = queues[next(counter) % n]
                if self._faults.available(mq.broker_name) and mq.broker_name != last_broker:
                    return mq
            names = sorted({q.broker_name for q in queues if q.broker_name != last_broker}) or \
                sorted({q.broker_name for q in queues})
            best = self._faults.least_bad(names)
            for _ in range(n):
                mq = queues[next(counter) % n]
                if mq.broker_name == best:
                    return mq
        for _ in range(n):
            mq = queues[next(counter) % n]
            if mq.broker_name != last_broker:
                return mq
        return queues[next(counter) % n]

    async def _send_retrying(self, msg: Message, prepared: tuple[int, bytes, dict[str, str]] | None,
                             timeout_s: float, *, batch: bool) -> SendResult:
        """A send to a queue of the producer's choosing, retried on another broker.
        ``prepared``: (sysFlag, body, properties), or None for a single send's own (_prepare,
        here so that a bad message raises where the send is awaited)."""
        if prepared is None:
            if not self._started:
                self._check_started()
            prepared = self._prepare(msg)
        sys_flag, body, props = prepared
        loop = self._loop or asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        last_broker: str | None = None
        last_exc: BaseException | None = None
        attempts = 1 + self.retry_times_when_send_failed
        for attempt in range(attempts):
            if deadline - loop.time() <= 0:
                break
            try:
                queues = self.routes.cached_publish_queues(msg.topic)
                if queues is None:
                    _, queues = await self.routes.publish_route(msg.topic)
            except Exception as exc:  # noqa: BLE001 - route failures are retried too
                last_exc = exc
                await asyncio.sleep(min(0.2, max(0.0, deadline - loop.time())))
                continue
            mq = self._select(msg.topic, queues, last_broker)
            last_broker = mq.broker_name
            started = loop.time()
            try:
                addr = self.routes.broker_addr(mq.broker_name) or await self._broker_addr(mq)
                born_ms = int(time.time() * 1000)
                resp = await self._call(addr, mq, msg, body, sys_flag, props,
                                        deadline - loop.time(), batch, born_ms)
                result = self._result(resp, addr, mq, msg, props, batch, born_ms)
            except BrokerError as exc:
                self._record(mq, started, isolation=True)
                if exc.code not in RETRY_RESPONSE_CODES:
                    raise
                last_exc = exc
                if _master_may_have_moved(exc):
                    await self._route_again(msg.topic)
            except Exception as exc:
                if not is_network_error(exc):
                    raise
                self._record(mq, started, isolation=True)
                last_exc = exc
                await self._route_again(msg.topic)
            else:
                if self.send_latency_fault_enable:
                    self._faults.update(mq.broker_name, (loop.time() - started) * 1000, False)
                if result.status is SendStatus.SEND_OK \
                        or not self.retry_another_broker_when_not_store_ok \
                        or attempt == attempts - 1:
                    return result
            log.info("send to %s failed (attempt %d): %s", mq, attempt + 1, last_exc)
        raise SendFailed(f"send to {msg.topic} failed after retries: {last_exc}") from last_exc

    def _record(self, mq: MessageQueue, started: float, *, isolation: bool) -> None:
        if self.send_latency_fault_enable:
            elapsed_ms = (asyncio.get_running_loop().time() - started) * 1000
            self._faults.update(mq.broker_name, elapsed_ms, isolation)

    async def _broker_addr(self, mq: MessageQueue) -> str:
        addr = self.routes.broker_addr(mq.broker_name)
        if addr is None:
            await self.routes.update(mq.topic)
            addr = self.routes.broker_addr(mq.broker_name)
        if addr is None:
            raise SendFailed(f"The broker[{mq.broker_name}] not exist")
        return addr

    def _send_request(self, code: int, mq: MessageQueue, msg: Message, body: bytes,
                      sys_flag: int, props: dict[str, str], batch: bool = False,
                      born_ms: int | None = None):
        born_ms = int(time.time() * 1000) if born_ms is None else born_ms
        ext = self._send_ext(mq, str(sys_flag), str(born_ms), str(msg.flag),
                             properties_text(props), "true" if batch else "false")
        return self._transport.request(code, ext, body)

    def _send_frame_of(self, mq: MessageQueue, msg: Message, body: bytes, sys_flag: int,
                       props: dict[str, str], born_ms: int) -> Callable[[int], bytes]:
        """frame_of(opaque): the bytes encode(_send_request(...)) would give a single send."""
        fill = (self._send_templates.get(mq) or self._send_template(mq)).fill
        values = (sys_flag, born_ms, msg.flag, props)
        return lambda opaque: fill(opaque, values, body)

    def _send_ext(self, mq: MessageQueue, sys_flag: str | None, born_ms: str | None,
                  flag: str | None, properties: str | None,
                  batch: str | None) -> dict[str, str | None]:
        """SendMessageRequestHeaderV2's extFields, in the one order both ways of sending
        write them (None: a template's placeholder)."""
        return {"a": self.group, "b": mq.topic, "c": AUTO_CREATE_TOPIC,
                "d": str(DEFAULT_TOPIC_QUEUE_NUMS), "e": str(mq.queue_id), "f": sys_flag,
                "g": born_ms, "h": flag, "i": properties, "j": "0", "k": "false",
                "m": batch, "n": mq.broker_name}

    def _send_template(self, mq: MessageQueue) -> JsonFrameTemplate:
        """The SEND_MESSAGE_V2 frame of a single send to ``mq``, made once per queue: a send
        fills in sysFlag, bornTimestamp, flag, properties and the opaque, instead of building
        a header dict and a RemotingCommand and encoding them."""
        template = self._send_templates.get(mq)
        if template is None:
            if len(self._send_templates) >= MAX_SEND_TEMPLATES:  # queues of many topics
                self._send_templates.clear()
            template = self._send_templates[mq] = JsonFrameTemplate.request(
                RequestCode.SEND_MESSAGE_V2, self._send_ext(mq, None, None, None, None, "false"),
                CLIENT_LANGUAGE, CLIENT_VERSION)
        return template

    async def _send_to(self, mq: MessageQueue, msg: Message, body: bytes, sys_flag: int,
                       props: dict[str, str], timeout_s: float, *, batch: bool) -> SendResult:
        addr = self.routes.broker_addr(mq.broker_name) or await self._broker_addr(mq)
        born_ms = int(time.time() * 1000)
        resp = await self._call(addr, mq, msg, body, sys_flag, props, timeout_s, batch, born_ms)
        return self._result(resp, addr, mq, msg, props, batch, born_ms)

    def _call(self, addr: str, mq: MessageQueue, msg: Message, body: bytes, sys_flag: int,
              props: dict[str, str], timeout_s: float, batch: bool,
              born_ms: int) -> Awaitable[RemotingCommand]:
        """The broker's answer to one send, as the connection's own awaitable when the frame
        can come from the queue's template (a single unsigned send)."""
        transport = self._transport
        if batch or transport.credentials is not None:  # signed: no pre-made frame
            code = RequestCode.SEND_BATCH_MESSAGE if batch else RequestCode.SEND_MESSAGE_V2
            req = self._send_request(code, mq, msg, body, sys_flag, props, batch, born_ms)
            return transport.invoke(addr, req, max(0.001, timeout_s))
        # Straight to the remoting client: Transport.invoke_frame's check and the signs
        # property are the condition above, two calls per send on a lone producer's path.
        return transport.remoting.invoke_frame(
            addr, RequestCode.SEND_MESSAGE_V2,
            self._send_frame_of(mq, msg, body, sys_flag, props, born_ms), max(0.001, timeout_s))

    def _result(self, resp: RemotingCommand, addr: str, mq: MessageQueue, msg: Message,
                props: dict[str, str], batch: bool, born_ms: int) -> SendResult:
        """The SendResult of a send's answer; BrokerError for a code that is no SendStatus."""
        status = _STATUS_OF.get(resp.code)
        if status is None:
            raise BrokerError(resp.code, resp.remark, addr)
        if addr not in self._heartbeated:  # a broker knows this producer from its first send
            self._tasks.spawn(self._heartbeat_to(addr), "heartbeat-first")
        ext = resp.ext_fields
        queue_id = ext.get("queueId")
        queue = mq if queue_id is None or queue_id == str(mq.queue_id) \
            else MessageQueue(mq.topic, mq.broker_name, int(queue_id))
        uniq = msg.properties.get(PROP_UNIQ_KEY) if batch \
            else props[PROP_UNIQ_KEY]
        epoch = ext.get("masterEpoch")
        result = _send_result(status, uniq or "", ext.get("msgId", ""), queue,
                              int(ext.get("queueOffset", -1)), ext.get("transactionId"),
                              ext.get("MSG_REGION"), addr, None if epoch is None else int(epoch))
        if self.tracer is not None and not batch:  # per attempt, as Java's send hook
            self.tracer.published(self.group, msg, props, addr, result, born_ms,
                                  self.client_id.split("@")[0])
        return result


def trace_dispatcher(namesrv: str | None, owner_group: str, kind: str, topic: str,
                     credentials: Credentials | None, namesrv_domain: str | None,
                     tls: TlsClientConfig | None = None) -> TraceDispatcher:
    """A TraceDispatcher sending through a producer of its own, as Java's AsyncTraceDispatcher
    does (kind: PRODUCER or CONSUMER)."""
    sender = Producer(trace_group(owner_group, kind), namesrv, credentials=credentials,
                      namesrv_domain=namesrv_domain, retry_times_when_send_failed=1, tls=tls)
    return TraceDispatcher(sender, topic=topic)
