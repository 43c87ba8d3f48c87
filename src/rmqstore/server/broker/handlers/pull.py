"""PULL_MESSAGE (11) with long polling (PullMessageProcessor and PullRequestHoldService of
rocketmq-all-4.9.7).

A pull reads up to maxMsgNums (capped at max_transfer_count and max_transfer_bytes) messages of one
queue matching the subscription (tags, or a SQL92 filter); the reply body is their stored records
concatenated unchanged. A pull that finds nothing (PULL_NOT_FOUND) with the suspend bit set is held:
it waits for a put into its queue or for suspendTimeoutMillis (capped at
brokerSuspendMaxTimeMillis), re-reading after each put, then answers with what it finds. The
commit offset (sysFlag bit 0) is stored once, on the first pass, as Java does, and never by a
slave.

Reading from a slave (PullMessageProcessor / DefaultMessageStore.getMessage): a pull whose last
message is further behind the commit log's end than accessMessageInMemoryMaxRatio of the RAM
is told to go to the group's whichBrokerWhenConsumeSlowly (1) when slaveReadEnable, else to
its brokerId (0); without slaveReadEnable the answer always names the master, and a slave
answers PULL_RETRY_IMMEDIATELY with no messages. A slave without offsetCheckInSlave never moves a
consumer's offset: an offset it does not hold yet is retried where it is (the slave may lag).
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass

from ....errors import StoreError
from ....message import GetResult, GetStatus
from ....net import RequestContext
from ....net.dispatch import Dispatcher
from ....protocol import RemotingCommand, RequestCode, ResponseCode
from ....protocol.header_codec import decode_header, encode_header
from ....protocol.headers import PullMessageRequestHeader, PullMessageResponseHeader
from ....store import MessageStore
from ..config import MASTER_ID, BrokerConfig
from ..longpoll import ArrivalWaiters
from ..role import BrokerRole
from ..stats.traffic import Traffic
from ..subgroups import SubscriptionGroupManager
from ..topics import PERM_READ, BrokerTopics
from .clients import ClientManager
from .selector import Selector, SelectorError, make_selector

log = logging.getLogger(__name__)

FLAG_COMMIT_OFFSET = 0x1  # PullSysFlag
FLAG_SUSPEND = 0x2
FLAG_SUBSCRIPTION = 0x4

# GetMessageStatus -> (response code, may be held). Offsets moved out of range answer
# PULL_OFFSET_MOVED; an empty or unknown queue read at 0 is "nothing yet" (as
# PullMessageProcessor answers a C++ client).
_CODES = {
    GetStatus.FOUND: ResponseCode.SUCCESS,
    GetStatus.NO_MATCHED_MESSAGE: ResponseCode.PULL_RETRY_IMMEDIATELY,
    GetStatus.MESSAGE_WAS_REMOVING: ResponseCode.PULL_RETRY_IMMEDIATELY,
    GetStatus.OFFSET_FOUND_NULL: ResponseCode.PULL_NOT_FOUND,
    GetStatus.OFFSET_OVERFLOW_ONE: ResponseCode.PULL_NOT_FOUND,
    GetStatus.OFFSET_OVERFLOW_BADLY: ResponseCode.PULL_OFFSET_MOVED,
    GetStatus.OFFSET_TOO_SMALL: ResponseCode.PULL_OFFSET_MOVED,
}


def total_memory_bytes() -> int:
    """The machine's RAM (StoreUtil.TOTAL_PHYSICAL_MEMORY_SIZE; Java falls back to 24 GiB)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 24 << 30


class PullRejected(Exception):
    def __init__(self, code: ResponseCode, remark: str) -> None:
        super().__init__(remark)
        self.code = code


@dataclass(frozen=True, slots=True)
class _Read:
    code: ResponseCode
    result: GetResult
    body: bytes


class PullProcessor:
    def __init__(self, config: BrokerConfig, store: MessageStore, topics: BrokerTopics,
                 groups: SubscriptionGroupManager, clients: ClientManager,
                 arrivals: ArrivalWaiters, *, traffic: Traffic | None = None,
                 role: BrokerRole | None = None) -> None:
        """role: what the broker is now (default: broker.conf's role)."""
        self._config = config
        self._role = role if role is not None else BrokerRole(config)
        self._traffic = traffic or Traffic()
        self._store = store
        self._topics = topics
        self._groups = groups
        self._clients = clients
        self._arrivals = arrivals
        ratio = config.access_message_in_memory_max_ratio
        self._in_memory_bytes = total_memory_bytes() * ratio // 100

    def register_handlers(self, dispatcher: Dispatcher) -> None:
        dispatcher.register(RequestCode.PULL_MESSAGE, self.pull)

    async def pull(self, request: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
        h = decode_header(PullMessageRequestHeader, request.ext_fields)
        try:
            selector = self._check(h)
        except PullRejected as exc:
            return RemotingCommand.response(exc.code, str(exc))
        read = self._read(h, selector)
        if h.sys_flag & FLAG_COMMIT_OFFSET and not self._role.slave:
            self._commit(h)
        if read.code == ResponseCode.PULL_NOT_FOUND and h.sys_flag & FLAG_SUSPEND:
            read = await self._hold(h, selector, read)
        found = read.code == ResponseCode.SUCCESS
        self._traffic.pulled_from(h.consumer_group, h.topic, h.queue_id,
                                  len(read.result.messages) if found else 0, len(read.body),
                                  read.result.next_offset)
        return self._response(h, read)

    def _commit(self, h: PullMessageRequestHeader) -> None:
        """The pull's commit offset, kept in memory and persisted every 5 s by the store
        (flushConsumerOffsetInterval); one outside the queue is dropped, the pull served."""
        try:
            self._store.check_commit(h.consumer_group, h.topic, h.queue_id, h.commit_offset)
        except StoreError as exc:
            log.info("commit offset of a pull by %s not stored: %s", h.consumer_group, exc)
            return
        self._store.offsets.commit(h.consumer_group, h.topic, h.queue_id, h.commit_offset)

    def _check(self, h: PullMessageRequestHeader) -> Selector:
        """The broker, group, topic and subscription checks; returns what the
        subscription selects."""
        if not self._config.broker_permission & PERM_READ:
            raise PullRejected(ResponseCode.NO_PERMISSION,
                               f"the broker[{self._config.broker_ip}] pulling message is forbidden")
        group_cfg = self._groups.find_or_create(h.consumer_group)
        if group_cfg is None:
            raise PullRejected(ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST,
                               f"subscription group [{h.consumer_group}] does not exist")
        if not group_cfg.get("consumeEnable", True):
            raise PullRejected(ResponseCode.NO_PERMISSION,
                               f"subscription group no permission, {h.consumer_group}")
        cfg = self._topics.get(h.topic)
        if cfg is None:
            raise PullRejected(ResponseCode.TOPIC_NOT_EXIST,
                               f"topic[{h.topic}] not exist, apply first please!")
        if not cfg.perm & PERM_READ:
            raise PullRejected(ResponseCode.NO_PERMISSION,
                               f"the topic[{h.topic}] pulling message is forbidden")
        if not 0 <= h.queue_id < cfg.read_queue_nums:
            raise PullRejected(ResponseCode.SYSTEM_ERROR,
                               f"queueId[{h.queue_id}] is illegal, topic:[{h.topic}] "
                               f"topicConfig.readQueueNums:[{cfg.read_queue_nums}]")
        if h.sys_flag & FLAG_SUBSCRIPTION:
            expression_type, sub_string = h.expression_type or "TAG", h.subscription or "*"
        else:
            sub = self._clients.subscription(h.consumer_group, h.topic)
            if sub is None:
                raise PullRejected(ResponseCode.SUBSCRIPTION_NOT_EXIST,
                                   "the consumer's subscription not exist, group: "
                                   f"{h.consumer_group}")
            if sub.sub_version < h.sub_version:
                raise PullRejected(ResponseCode.SUBSCRIPTION_NOT_LATEST,
                                   "the consumer's subscription not latest")
            expression_type, sub_string = sub.expression_type, sub.sub_string
        try:
            return make_selector(expression_type, sub_string,
                                 self._config.enable_property_filter)
        except SelectorError as exc:
            raise PullRejected(ResponseCode.SUBSCRIPTION_PARSE_FAILED, str(exc)) from None

    def _read(self, h: PullMessageRequestHeader, selector: Selector) -> _Read:
        read = self._read_store(h, selector)
        if self._role.slave and not self._config.offset_check_in_slave:
            if read.code == ResponseCode.PULL_OFFSET_MOVED:
                # nextOffsetCorrection: a slave leaves the offset where the consumer had it
                read.result.next_offset = h.queue_offset
                return _Read(ResponseCode.PULL_RETRY_IMMEDIATELY, read.result, b"")
        return read

    def _read_store(self, h: PullMessageRequestHeader, selector: Selector) -> _Read:
        count = max(1, min(h.max_msg_nums, self._config.max_transfer_count))
        tags = selector.tags
        result = self._store.get(h.topic, h.queue_id, h.queue_offset, count,
                                 tags=sorted(tags) if tags else None)
        if selector.sql is not None and result.status is GetStatus.FOUND:
            # isMatchedByCommitLog: the properties decide; none kept = NO_MATCHED_MESSAGE
            kept = [m for m in result.messages if selector.sql.matches(m.properties)]
            if not kept:
                result.status = GetStatus.NO_MATCHED_MESSAGE
            result.messages = kept
        status = result.status
        if status in (GetStatus.NO_MESSAGE_IN_QUEUE, GetStatus.NO_MATCHED_LOGIC_QUEUE):
            code = (ResponseCode.PULL_NOT_FOUND if h.queue_offset == 0
                    else ResponseCode.PULL_OFFSET_MOVED)
            return _Read(code, result, b"")
        code = _CODES[status]
        if code != ResponseCode.SUCCESS:
            return _Read(code, result, b"")
        return self._body(result)

    def _body(self, result: GetResult) -> _Read:
        """The records, cut at max_transfer_bytes (always at least one message)."""
        parts, total = [], 0
        limit = self._config.max_transfer_bytes
        for msg in result.messages:
            view = msg.record_view
            if parts and total + len(view) > limit:
                result.next_offset = msg.queue_offset
                result.messages = result.messages[:len(parts)]  # what is handed out
                break
            parts.append(view)
            total += len(view)
        return _Read(ResponseCode.SUCCESS, result, b"".join(parts))

    async def _hold(self, h: PullMessageRequestHeader, selector: Selector, read: _Read) -> _Read:
        """Wait for a put into the queue, re-reading after each; at most the suspend time,
        itself at most brokerSuspendMaxTimeMillis (a request must not hold a task for ever)."""
        c = self._config
        hold_ms = min(h.suspend_timeout_ms, c.broker_suspend_max_ms) if c.long_polling \
            else c.short_polling_ms
        timeout_s = hold_ms / 1000
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout_s)
        while True:
            left = deadline - loop.time()
            if left <= 0:
                return read
            arrived = await self._arrivals.wait(h.topic, h.queue_id, left)
            read = self._read(h, selector)
            if read.code != ResponseCode.PULL_NOT_FOUND or not arrived:
                return read

    def _response(self, h: PullMessageRequestHeader, read: _Read) -> RemotingCommand:
        r = read.result
        code, body = read.code, read.body
        suggest = MASTER_ID
        if self._config.slave_read_enable:
            group = self._groups.get(h.consumer_group) or {}
            slow = self._suggest_slave(r)
            suggest = int(group.get("whichBrokerWhenConsumeSlowly" if slow else "brokerId",
                                    1 if slow else MASTER_ID))
        elif self._role.slave:
            code, body = ResponseCode.PULL_RETRY_IMMEDIATELY, b""
        ext = encode_header(PullMessageResponseHeader(
            suggest_which_broker_id=suggest, next_begin_offset=r.next_offset,
            min_offset=r.min_offset, max_offset=r.max_offset))
        remark = None if code == ResponseCode.SUCCESS else r.status.name
        return RemotingCommand.response(code, remark, ext, body)

    def _suggest_slave(self, result: GetResult) -> bool:
        """getMessage's suggestPullingFromSlave: the commit log holds more past the last
        message pulled than the share of the RAM a read may expect in the page cache."""
        if not result.messages:
            return False
        behind = self._store.commitlog.max_offset - result.messages[-1].commitlog_offset
        return behind > self._in_memory_bytes
