"""SEND_MESSAGE (10), SEND_MESSAGE_V2 (310), SEND_BATCH_MESSAGE (320) into the store
(SendMessageProcessor of rocketmq-all-4.9.7).

Order of checks, as Java's: topic name and send permission, topic config (auto-created from the
request's defaultTopic, usually TBW102, when that allows it), queue id; then %RETRY% messages
past their reconsume limit go to %DLQ%<group>. The stored properties are the producer's minus
WAIT plus CLUSTER; the body and sysFlag are stored as sent, once a body flagged compressed is
known to inflate within maxMessageSize (else MESSAGE_ILLEGAL). The reply carries the offset
message id(s), the queue id and the (first) queue offset.

With SYNC_FLUSH the reply waits, off the event loop, until the message is durable (unless the
producer sent WAIT=false, as Java's isWaitStoreMsgOK); on a SYNC_MASTER also until a slave
holds it (replication.py), the replication status winning over the flush's
(CommitLog.handleDiskFlushAndHA). A slave takes no sends: SERVICE_NOT_AVAILABLE, as its store
answers a put in Java.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import repeat

from ...._native import new_send_path
from ....aio_commit import AsyncGroupCommit
from ....errors import (
    InvalidBodyError,
    InvalidPropertyError,
    InvalidTopicError,
    MessageTooLargeError,
    StoreClosedError,
    WritesStoppedError,
)
from ....message import PendingBatch, PendingPut, PutResult, PutStatus
from ....net import RequestContext
from ....net.client import split_address
from ....net.dispatch import Deferred, Dispatcher
from ....options import RecordInput
from ....protocol import RemotingCommand, RequestCode, ResponseCode, SerializeType
from ....protocol.header_codec import decode_header, encode_header
from ....protocol.headers import (
    SendMessageRequestHeader,
    SendMessageRequestHeaderV2,
    SendMessageResponseHeader,
)
from ....protocol.json_template import JsonFrameTemplate
from ....protocol.message import (
    COMPRESSION_MASK,
    SYSFLAG_COMPRESSED,
    BatchDecodeError,
    BodyDecodeError,
    decode_body,
)
from ....record import decode_properties
from ....store import MessageStore
from ....topic_validator import is_not_allowed_send
from ..config import BrokerConfig
from ..longpoll import ArrivalWaiters
from ..replication import Replication
from ..role import BrokerRole
from ..stats.traffic import Traffic, message_type
from ..subgroups import SubscriptionGroupManager
from ..topics import DLQ_PREFIX, PERM_WRITE, RETRY_PREFIX, BrokerTopics
from .send_native import NativeSend, native_send_enabled
from .send_outcome import Outcome

log = logging.getLogger(__name__)

PROP_WAIT = "WAIT"
PROP_CLUSTER = "CLUSTER"
PROP_DELAY = "DELAY"
PROP_RETRY_TOPIC = "RETRY_TOPIC"  # MessageConst.PROPERTY_RETRY_TOPIC: the message's first topic
DEFAULT_MAX_RECONSUME = 16  # SubscriptionGroupConfig.retryMaxTimes

_STATUS_CODES = {
    PutStatus.PUT_OK: ResponseCode.SUCCESS,
    PutStatus.FLUSH_DISK_TIMEOUT: ResponseCode.FLUSH_DISK_TIMEOUT,
    PutStatus.FLUSH_SLAVE_TIMEOUT: ResponseCode.FLUSH_SLAVE_TIMEOUT,
    PutStatus.SLAVE_NOT_AVAILABLE: ResponseCode.SLAVE_NOT_AVAILABLE,
    PutStatus.SERVICE_NOT_AVAILABLE: ResponseCode.SERVICE_NOT_AVAILABLE,
    PutStatus.MESSAGE_ILLEGAL: ResponseCode.MESSAGE_ILLEGAL,
}


# A body flagged compressed must inflate within maxMessageSize (the store checks it): one that
# does not is refused here, never stored for every later reader to trip on.
_ILLEGAL = (InvalidPropertyError, MessageTooLargeError, InvalidBodyError, BatchDecodeError)
_UNAVAILABLE = (WritesStoppedError, StoreClosedError)


@dataclass(slots=True)
class Placement:
    """Where a message is stored: what a Rewrite may change."""

    topic: str
    queue_id: int
    sysflag: int
    tags_code: int | None = None  # None: the tag's hash (delay levels store a delivery time)


# A broker service that stores some messages elsewhere first (delay levels in
# SCHEDULE_TOPIC_XXXX, timers, transactions' half topic, as CommitLog.putMessage and
# SendMessageProcessor do in Java): given the placement and the properties about to be stored
# (a dict it may change, e.g. to add REAL_TOPIC / REAL_QID), it returns the new placement, or
# None to leave the message alone. The first rewrite that returns a placement wins. Each is
# registered with the properties it looks for: a message holding none of them is no rewrite's.
Rewrite = Callable[[Placement, dict[str, str]], "Placement | None"]


class SendRejected(Exception):
    """A send refused before the store was touched; carries the response code."""

    def __init__(self, code: ResponseCode, remark: str) -> None:
        super().__init__(remark)
        self.code = code


_REFUSALS = (SendRejected, *_ILLEGAL, *_UNAVAILABLE)


@dataclass(slots=True)
class _Target:
    topic: str
    queue_id: int
    reconsume_times: int


class SendProcessor:
    def __init__(self, config: BrokerConfig, store: MessageStore, topics: BrokerTopics,
                 groups: SubscriptionGroupManager, arrivals: ArrivalWaiters,
                 replication: Replication | None = None, *,
                 traffic: Traffic | None = None, role: BrokerRole | None = None) -> None:
        """replication: a master's (None on a slave); role: what the broker is now (default:
        broker.conf's role)."""
        self._config = config
        self._role = role if role is not None else BrokerRole(config)
        self._replication = replication
        self._sync_master = replication is not None and replication.sync
        self._traffic = traffic or Traffic()
        self._store = store
        self._topics = topics
        self._groups = groups
        self._arrivals = arrivals
        self._validate_topic = store.validate_topic  # the store's cache of checked names
        # Sync flush led from this loop (no thread wakes per send); made before any put, so
        # that every put in flight cues it rather than the store's flusher thread.
        self._group_commit: AsyncGroupCommit | None = (
            store.async_group_commit(asyncio.get_running_loop()) if config.sync_flush else None)
        if self._group_commit is not None:  # a woken held pull: the loop must not block on a sync
            arrivals.on_wake = self._group_commit.keep_loop_free
        self._rewrites: list[Rewrite] = []
        self._rewrite_props: frozenset[str] = frozenset()
        self._native: NativeSend | None = None
        # The SUCCESS answer to a single send, as _answer would encode it, pre-made.
        self._ok_frame = JsonFrameTemplate(ResponseCode.SUCCESS, {
            "msgId": None, "queueId": None, "queueOffset": None,
            "MSG_REGION": config.region_id, "TRACE_ON": "true" if config.trace_on else "false"})
        # It filled in C (send_path.c): answer(opaque, store host, commit-log offset,
        # queue id, queue offset), msgId the offset message id made of the two.
        self._ok_answer = new_send_path(config.cluster_name, frozenset(), 0,
                                        self._ok_frame.pieces()).answer

    def add_rewrite(self, rewrite: Rewrite, props: Iterable[str]) -> None:
        """Route some single messages elsewhere before they are stored (see Rewrite); only
        messages holding one of ``props`` can be rewritten."""
        self._rewrites.append(rewrite)
        self._rewrite_props |= frozenset(props)

    def close(self) -> None:
        if self._native is not None:
            log.info("native send path: %d sends answered, %d of them whole reads at once",
                     self._native.taken, self._native.served)
        if self._group_commit is not None:
            self._group_commit.close()

    def register_handlers(self, dispatcher: Dispatcher) -> None:
        """After every add_rewrite: the native path leaves the properties they look for
        to ``send``."""
        for code in (RequestCode.SEND_MESSAGE, RequestCode.SEND_MESSAGE_V2,
                     RequestCode.SEND_BATCH_MESSAGE):
            dispatcher.register(code, self.send, fast=self.send_fast)
        if native_send_enabled():
            self._native = NativeSend(
                self._config, self._store, self._topics, self._role, self._traffic,
                self._arrivals, self._group_commit, self._replication, self._rewrite_props,
                self._ok_answer, self.answer_put, _born_host, dispatcher,
                self._ok_frame.pieces())
            dispatcher.frame_handler = self._native.on_frame
            dispatcher.read_handler = self._native.on_read
            dispatcher.read_front = self._native.new_front
            self._topics.listen(self._native.clear_fast)
            self._role.listen(self._native.clear_fast)

    async def send(self, request: RemotingCommand,
                   ctx: RequestContext) -> RemotingCommand | bytes:
        header = self._header(request)
        if self._role.lease_lapsed_lately():
            await self._role.lease_renewal()
        version = self._topics.version
        try:
            target = self._target(header)
        except _REFUSALS as exc:
            return _refusal(exc)
        if self._topics.version != version:
            # A topic was created: answer once the NameServers route it (Java registers
            # inside createTopicInSendMessageMethod), so a consumer started after this
            # send returns finds the route.
            await self._topics.registered(self._config.register_timeout_ms / 1000)
        answer = self._store_and_answer(request, header, target, ctx)
        if type(answer) is Deferred:
            return await _resolved(answer)
        return answer  # type: ignore[return-value]

    def send_fast(self, request: RemotingCommand, ctx: RequestContext
                  ) -> RemotingCommand | bytes | Deferred | None:
        """The common case answered without a task (Dispatcher's fast path): an existing,
        non-retry topic, on a broker whose master lease did not just lapse. Anything else
        returns None before touching anything, and ``send`` serves it (or holds it)."""
        header = self._header(request)
        if header.topic.startswith(RETRY_PREFIX) or self._topics.get(header.topic) is None \
                or self._role.lease_lapsed_lately():
            return None
        try:
            target = self._target(header)
        except _REFUSALS as exc:
            return _refusal(exc)
        return self._store_and_answer(request, header, target, ctx)

    def _store_and_answer(self, request: RemotingCommand, header: SendMessageRequestHeader,
                          target: _Target, ctx: RequestContext
                          ) -> RemotingCommand | bytes | Deferred:
        """Store the request's message(s) in target and answer: at once, or with sync flush
        (unless the producer sent WAIT=false, Java's isWaitStoreMsgOK) when the group commit
        covering them resolves the Deferred answer."""
        try:
            pending, wait = self._store_request(request, header, target, ctx)
        except _REFUSALS as exc:
            return _refusal(exc)
        self._arrivals.notify(target.topic, target.queue_id)
        self._traffic.stored(target.topic, message_type(header.properties or ""),
                             1 if type(pending) is PendingPut
                             else len(pending.batch.commitlog_offsets),  # type: ignore[union-attr]
                             len(request.body))
        commit = self._group_commit
        flush = commit is not None and wait and not pending.done()
        if not flush and not (self._sync_master and wait):
            return self._answer(request, pending, target.queue_id, PutStatus.PUT_OK)
        answer = Deferred()
        outcome = Outcome(1 + (self._sync_master and wait), lambda status: answer.resolve(
            self._answer(request, pending, target.queue_id, status)))
        if flush:
            # Durability of the last message covers the earlier ones (offsets only grow).
            commit.when_durable(pending.result.commitlog_offset, outcome.flushed)
        else:
            outcome.flushed(True)
        if self._sync_master and wait:
            self._replication.when_replicated(outcome.replicated)
        return answer

    @staticmethod
    def _header(request: RemotingCommand) -> SendMessageRequestHeader:
        if request.code == RequestCode.SEND_MESSAGE:
            return decode_header(SendMessageRequestHeader, request.ext_fields)
        # V2 has every V1 field under the same attribute name: used as is, not copied (to_v1).
        v2 = decode_header(SendMessageRequestHeaderV2, request.ext_fields)
        return v2  # type: ignore[return-value]

    def _store_request(self, request: RemotingCommand, header: SendMessageRequestHeader,
                       target: _Target, ctx: RequestContext
                       ) -> tuple[PendingPut | PendingBatch, bool]:
        """The stored message(s), and whether the answer waits for durability."""
        props, encoded, wait = _stored_properties(header.properties or "",
                                                  self._config.cluster_name)
        born_host = _born_host(ctx.peer)
        # C++ marks batches with batch="1" on code 10/310; Java uses code 320.
        if request.code == RequestCode.SEND_BATCH_MESSAGE or header.batch:
            return self._put_batch(header, target, request.body, props, encoded, born_host), wait
        return self._put_one(header, target, request.body, props, encoded, born_host), wait

    def _answer(self, request: RemotingCommand, pending: PendingPut | PendingBatch,
                queue_id: int, status: PutStatus) -> RemotingCommand | bytes:
        """SendMessageResponseHeader: the offset message id(s), the queue the producer asked
        for (Java answers it, not the one a rewrite stored the message in) and the (first)
        queue offset."""
        if type(pending) is PendingPut:
            return self.answer_put(request, pending.result, queue_id, status)
        batch = pending.batch  # type: ignore[union-attr]
        return self._answer_header(",".join(batch.msg_ids), queue_id, batch.first_queue_offset,
                                   self._acknowledged(status))

    def answer_put(self, request: RemotingCommand, result: PutResult, queue_id: int,
                   status: PutStatus) -> RemotingCommand | bytes:
        """_answer for one message stored as ``result``: SUCCESS to a JSON request is the
        pre-made frame."""
        status = self._acknowledged(status)
        if status is PutStatus.PUT_OK and request.serialize_type is SerializeType.JSON \
                and not self._role.controller_mode:
            return self._ok_answer(request.opaque, result._host,  # noqa: SLF001 - its bytes
                                   result.commitlog_offset, queue_id, result.queue_offset)
        return self._answer_header(result.msg_id, queue_id, result.queue_offset, status)

    def _acknowledged(self, status: PutStatus) -> PutStatus:
        if status is PutStatus.PUT_OK and not self._role.may_acknowledge():
            return PutStatus.FLUSH_SLAVE_TIMEOUT  # stored; a deposed master never says so
        return status

    def _answer_header(self, msg_id: str, queue_id: int, queue_offset: int,
                       status: PutStatus) -> RemotingCommand:
        ext = encode_header(SendMessageResponseHeader(
            msg_id=msg_id, queue_id=queue_id, queue_offset=queue_offset))
        ext["MSG_REGION"] = self._config.region_id
        ext["TRACE_ON"] = "true" if self._config.trace_on else "false"
        role = self._role
        if role.controller_mode:  # ours: which master epoch answered (Java clients ignore it)
            ext["masterEpoch"] = str(role.master_epoch)
        code = _STATUS_CODES.get(status, ResponseCode.SYSTEM_ERROR)
        return RemotingCommand.response(code, None if code == 0 else status.name, ext)

    # -- checks ---------------------------------------------------------------------------
    def _target(self, h: SendMessageRequestHeader) -> _Target:
        """msgCheck + the retry/DLQ redirect: where the message goes."""
        refusal = self._role.write_refusal()
        if refusal is not None:
            raise SendRejected(*refusal)
        if not self._config.broker_permission & PERM_WRITE:
            raise SendRejected(ResponseCode.NO_PERMISSION,
                               f"the broker[{self._config.broker_ip}] sending message is forbidden")
        try:
            self._validate_topic(h.topic)
        except InvalidTopicError as exc:
            raise SendRejected(ResponseCode.SYSTEM_ERROR, str(exc)) from None
        if is_not_allowed_send(h.topic):
            raise SendRejected(ResponseCode.NO_PERMISSION,
                               f"Sending message to topic[{h.topic}] is forbidden.")
        cfg = self._topics.get(h.topic)
        if cfg is None and h.topic.startswith(RETRY_PREFIX):
            cfg = self._topics.ensure_system(h.topic)
        if cfg is None and self._config.auto_create_topic:
            cfg = self._topics.create_from_default(h.topic, h.default_topic,
                                                   h.default_topic_queue_nums)
        if cfg is None:
            raise SendRejected(ResponseCode.TOPIC_NOT_EXIST,
                               f"topic[{h.topic}] not exist, apply first please!")
        if not cfg.perm & PERM_WRITE:
            raise SendRejected(ResponseCode.NO_PERMISSION,
                               f"the topic[{h.topic}] sending message is forbidden")
        queue_id = h.queue_id
        if queue_id >= max(cfg.read_queue_nums, cfg.write_queue_nums):
            raise SendRejected(ResponseCode.SYSTEM_ERROR,
                               f"request queueId[{queue_id}] is illegal, {h.topic} has "
                               f"{cfg.write_queue_nums} write queues")
        if queue_id < 0:
            queue_id = random.randrange(cfg.write_queue_nums)
        reconsume = h.reconsume_times or 0
        if h.topic.startswith(RETRY_PREFIX):
            return self._retry_target(h, queue_id, reconsume)
        return _Target(h.topic, queue_id, reconsume)

    def _retry_target(self, h: SendMessageRequestHeader, queue_id: int,
                      reconsume: int) -> _Target:
        """handleRetryAndDLQ: past maxReconsumeTimes a retry message goes to %DLQ%<group>."""
        group = h.topic[len(RETRY_PREFIX):]
        cfg = self._groups.find_or_create(group)
        if cfg is None:
            raise SendRejected(ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST,
                               f"subscription group not exist, {group}")
        limit = h.max_reconsume_times
        if limit is None:
            limit = int(cfg.get("retryMaxTimes", DEFAULT_MAX_RECONSUME))
        if reconsume < limit:
            return _Target(h.topic, queue_id, reconsume)
        dlq = DLQ_PREFIX + group
        self._topics.ensure_system(dlq)
        origin = decode_properties((h.properties or "").encode()).get(PROP_RETRY_TOPIC)
        self._traffic.sent_to_dlq(group, origin or h.topic)
        log.info("message to %s reconsumed %d times: stored in %s", h.topic, reconsume, dlq)
        return _Target(dlq, 0, reconsume)

    # -- storing --------------------------------------------------------------------------
    def _put_one(self, h: SendMessageRequestHeader, t: _Target, body: bytes,
                 props: dict[str, str], encoded: bytes | None,
                 born_host: tuple[str, int] | None) -> PendingPut:
        place = Placement(t.topic, t.queue_id, h.sys_flag)
        if not self._rewrite_props.isdisjoint(props):
            encoded = None  # a rewrite may change the properties: the store encodes them
            for rewrite in self._rewrites:
                moved = rewrite(place, props)
                if moved is not None:
                    place = moved
                    break
        return self._store.put_record(place.topic, body, place.queue_id, RecordInput(
            props, encoded, place.tags_code, h.flag, h.born_timestamp, t.reconsume_times,
            born_host, place.sysflag))

    def _put_batch(self, h: SendMessageRequestHeader, t: _Target, body: bytes,
                   shared: dict[str, str], encoded: bytes | None,
                   born_host: tuple[str, int] | None) -> PendingBatch:
        """The entries go to the store as sent, in one native call: each keeps its own
        properties (UNIQ_KEY, TAGS, KEYS), followed by the request's (CLUSTER), as Java's
        MessageExtBatchEncoder appends them; they take consecutive queue offsets."""
        if t.topic.startswith(RETRY_PREFIX):
            raise SendRejected(ResponseCode.MESSAGE_ILLEGAL,
                               "batch request does not support retry group")
        if not body:
            raise BatchDecodeError("empty batch")
        if _positive_or_bad(shared.get(PROP_DELAY)):
            # CommitLog.putMessages: a batch cannot be delayed (MESSAGE_ILLEGAL).
            raise SendRejected(ResponseCode.MESSAGE_ILLEGAL,
                               "a batch message cannot have a delay level")
        sysflag = h.sys_flag
        if sysflag & SYSFLAG_COMPRESSED:
            # rocketmq-client-cpp 1.2.x compresses a whole batch body over 4 KiB (a client
            # bug, fixed in apache/rocketmq-client-cpp#186; Java's broker cannot read it): the
            # entries inside are plain, so the body is inflated, within maxMessageSize, and
            # they are stored unflagged.
            try:
                body = decode_body(body, sysflag, self._config.max_message_size)
            except BodyDecodeError as exc:
                raise BatchDecodeError(f"compressed batch: {exc}") from None
            sysflag &= ~(SYSFLAG_COMPRESSED | COMPRESSION_MASK)
        try:
            return self._store.put_entries(t.topic, body, t.queue_id, RecordInput(
                shared, encoded, born_timestamp=h.born_timestamp,
                reconsume_times=t.reconsume_times, born_host=born_host, sysflag=sysflag))
        except ValueError as exc:  # entry sizes that do not add up
            raise BatchDecodeError(str(exc)) from None




def _stored_properties(text: str, cluster: str) -> tuple[dict[str, str], bytes | None, bool]:
    """A send's properties as stored: the producer's minus WAIT plus CLUSTER (Java stores no
    WAIT=true, saving 9 bytes per message); their encoding, when the producer's text can be
    kept as sent (every pair one non-empty name, one \\x01 and a value, no name twice, no
    CLUSTER of its own; else None, and the store encodes the dict, refusing what it must); and
    whether the answer waits for the store (Message.isWaitStoreMsgOK: unless WAIT=false)."""
    pairs = text.split("\x02")
    if not pairs[-1]:
        pairs.pop()  # after the last pair's separator (Java's may lack it)
    try:
        props = dict(map(str.split, pairs, repeat("\x01")))
    except ValueError:  # a pair without exactly one \x01
        return _decoded_properties(text, cluster)
    if len(props) != len(pairs) or "" in props or PROP_CLUSTER in props:
        return _decoded_properties(text, cluster)
    wait = props.pop(PROP_WAIT, None)
    if wait is not None:
        pairs.remove(f"{PROP_WAIT}\x01{wait}")
    props[PROP_CLUSTER] = cluster
    pairs.append(f"{PROP_CLUSTER}\x01{cluster}\x02")
    return props, "\x02".join(pairs).encode(), wait != "false"


def _decoded_properties(text: str, cluster: str) -> tuple[dict[str, str], None, bool]:
    """_stored_properties of a text that cannot be kept: decoded as MessageDecoder.
    string2messageProperties does (a pair without a value dropped, a name's last value kept)."""
    props = decode_properties(text.encode("utf-8"))
    wait = props.pop(PROP_WAIT, None) != "false"
    props[PROP_CLUSTER] = cluster
    return props, None, wait


def _positive_or_bad(level: str | None) -> bool:
    """A DELAY property that asks for a delay (or is not a number)."""
    if level is None:
        return False
    try:
        return int(level) > 0
    except ValueError:
        return True


async def _resolved(answer: Deferred) -> RemotingCommand | bytes:
    """The answer a Deferred resolves to, awaited (the task path of ``send``)."""
    done: asyncio.Future[RemotingCommand | bytes] = asyncio.get_running_loop().create_future()
    answer.then(done.set_result)
    return await done


def _refusal(exc: Exception) -> RemotingCommand:
    """The answer to a send the store did not take."""
    if isinstance(exc, SendRejected):
        return RemotingCommand.response(exc.code, str(exc))
    if isinstance(exc, _UNAVAILABLE):
        return RemotingCommand.response(ResponseCode.SERVICE_NOT_AVAILABLE, str(exc))
    return RemotingCommand.response(ResponseCode.MESSAGE_ILLEGAL, str(exc))


def _born_host(peer: str) -> tuple[str, int] | None:
    """The producer's socket address; IPv4-mapped IPv6 peers are stored as IPv4, since the
    C++ client cannot decode IPv6 hosts. Cached: a connection sends many."""
    found = _born_hosts.get(peer, _MISSING)
    if found is not _MISSING:
        return found  # type: ignore[return-value]
    try:
        host, port = split_address(peer)
    except ValueError:
        found = None
    else:
        if host.startswith("::ffff:") and "." in host:
            host = host[len("::ffff:"):]
        found = (host, port)
    if len(_born_hosts) >= 4096:
        _born_hosts.clear()
    _born_hosts[peer] = found
    return found


_MISSING = object()
_born_hosts: dict[str, tuple[str, int] | None] = {}
