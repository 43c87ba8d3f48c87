"""What a push consumer answers when the broker asks on an admin's behalf
(ClientRemotingProcessor of rocketmq-all-4.9.7):

* RESET_CONSUMER_CLIENT_OFFSET (220, oneway): the queues of the topic held here start again at
  the offsets given (PushConsumer.reset_offsets);
* GET_CONSUMER_RUNNING_INFO (307): ConsumerRunningInfo, what mqadmin consumerStatus and the
  dashboard show: the consumer's settings, subscriptions, each queue held (offsets, cached
  messages, lock) and per topic the pull and consume rates (consume_stats.py); with
  jstackEnable, the stacks of the process's threads;
* CONSUME_MESSAGE_DIRECTLY (309): the message in the body goes to the listener at once, outside
  any queue (no offset moves, nothing is sent back) and the outcome is answered as
  ConsumeMessageDirectlyResult (mqadmin queryMsgById -g -d, the dashboard's "resend").

A request for another group (another consumer object shares no connection with this one) is
answered "not exist", as Java's client does.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from typing import Any

from ..net import RequestContext
from ..protocol import RemotingCommand, RequestCode, ResponseCode
from ..protocol.admin_bodies import (
    DirectResult,
    decode_reset_offset,
    encode_direct_result,
    encode_running_info,
)
from ..protocol.command import SERVER_VERSION
from ..protocol.header_codec import decode_header
from ..protocol.headers import (
    ConsumeMessageDirectlyRequestHeader,
    GetConsumerRunningInfoRequestHeader,
    ResetOffsetRequestHeader,
)
from .message import decode_messages

# The consumer is a PushConsumer (consumer.py imports this module, so it is not imported here).
PushConsumer = Any
# ConsumeStatus.RECONSUME_LATER and OrderlyStatus.SUSPEND_CURRENT_QUEUE_A_MOMENT, by value
LATER = frozenset({"RECONSUME_LATER", "SUSPEND_CURRENT_QUEUE_A_MOMENT"})

CLIENT_VERSION_DESC = "V4_9_7"  # MQVersion's name for the version we announce


def serve_admin_requests(consumer: PushConsumer) -> None:
    """Answer 220, 307 and 309 on the consumer's connections."""
    async def reset(request: RemotingCommand, ctx: RequestContext) -> None:
        h = decode_header(ResetOffsetRequestHeader, request.ext_fields)
        if h.group == consumer.group:
            await consumer.reset_offsets(h.topic, decode_reset_offset(request.body))

    async def running_info(request: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
        h = decode_header(GetConsumerRunningInfoRequestHeader, request.ext_fields)
        if h.consumer_group != consumer.group:
            return _not_here(h.consumer_group)
        return RemotingCommand.response(ResponseCode.SUCCESS,
                                        body=running_info_body(consumer, h.jstack_enable))

    async def consume_directly(request: RemotingCommand,
                               ctx: RequestContext) -> RemotingCommand:
        h = decode_header(ConsumeMessageDirectlyRequestHeader, request.ext_fields)
        if h.consumer_group != consumer.group:
            return _not_here(h.consumer_group)
        msgs = decode_messages(request.body, h.broker_name or "")
        if not msgs:
            return RemotingCommand.response(ResponseCode.SYSTEM_ERROR, "no message in the body")
        result = await consume_directly_result(consumer, msgs[0])
        return RemotingCommand.response(ResponseCode.SUCCESS, body=encode_direct_result(result))

    t = consumer.transport
    t.serve(RequestCode.RESET_CONSUMER_CLIENT_OFFSET, reset)  # type: ignore[arg-type]
    t.serve(RequestCode.GET_CONSUMER_RUNNING_INFO, running_info)
    t.serve(RequestCode.CONSUME_MESSAGE_DIRECTLY, consume_directly)


def running_info_body(consumer: PushConsumer, with_stacks: bool) -> bytes:
    """ConsumerRunningInfo (DefaultMQPushConsumerImpl.consumerRunningInfo)."""
    c = consumer
    props = {
        "PROP_NAMESERVER_ADDR": ";".join(c.transport.namesrv_addrs),
        "PROP_CONSUME_TYPE": c.consume_type, "PROP_CONSUMEORDERLY": _java(c._orderly),
        "PROP_THREADPOOL_CORE_SIZE": str(c.consume_concurrency),
        "PROP_CLIENT_VERSION": CLIENT_VERSION_DESC, "PROP_CLIENT_SDK": "rmqstore",
        "PROP_CONSUMER_START_TIMESTAMP": str(c.start_ms),
        "consumerGroup": c.group, "messageModel": c.message_model.value,
        "consumeFromWhere": c.consume_from_where.value,
        "consumeMessageBatchMaxSize": str(c.consume_batch_size),
        "pullBatchSize": str(c.pull_batch_size),
        "pullThresholdForQueue": str(c.pull_threshold_for_queue),
        "maxReconsumeTimes": str(c.max_reconsume_times), "clientVersion": str(SERVER_VERSION)}
    now_ms = int(time.time() * 1000)
    queues = {}
    for mq, pq in sorted(c.process_queues.items()):
        held = sorted(pq.msgs) + sorted(pq.consuming)
        queues[mq] = {
            "cachedMsgCount": pq.count, "cachedMsgMaxOffset": max(held) if held else 0,
            "cachedMsgMinOffset": min(held) if held else 0,
            "cachedMsgSizeInMiB": pq.size_bytes // (1 << 20),
            "commitOffset": c.offset_store.cached(mq) or 0, "droped": pq.dropped,
            "lastConsumeTimestamp": now_ms, "lastLockTimestamp": _epoch_ms(pq.last_lock_s),
            "lastPullTimestamp": now_ms, "locked": pq.locked, "transactionMsgCount": 0,
            "transactionMsgMaxOffset": 0, "transactionMsgMinOffset": 0, "tryUnlockTimes": 0}
    topics = sorted(c.subscriptions)
    return encode_running_info(
        props, [c.subscriptions[t].to_json() for t in topics], queues,
        {t: c.consume_stats.status(t) for t in topics},
        _stacks() if with_stacks else None)


async def consume_directly_result(consumer: PushConsumer, msg) -> DirectResult:
    """ConsumeMessage{Concurrently,Orderly}Service.consumeMessageDirectly: the listener's
    verdict on one message, with the time it took."""
    if consumer._iterating:
        return DirectResult("CR_THROW_EXCEPTION", consumer._orderly, True,
                            "this consumer iterates (async for): it has no listener to "
                            "consume a message directly")
    started = time.monotonic()
    try:
        status = await consumer._call_listener_plain([msg])
    except Exception as exc:  # noqa: BLE001 - the admin is told what the listener raised
        return DirectResult("CR_THROW_EXCEPTION", consumer._orderly, True,
                            f"{type(exc).__name__}: {exc}", _ms_since(started))
    later = getattr(status, "value", None) in LATER
    return DirectResult("CR_LATER" if later else "CR_SUCCESS", consumer._orderly, True, None,
                        _ms_since(started))


def _not_here(group: str) -> RemotingCommand:
    return RemotingCommand.response(ResponseCode.SYSTEM_ERROR,
                                    f"The Consumer Group <{group}> not exist in this consumer")


def _stacks() -> str:
    """The process's threads and their stacks: Python's jstack."""
    names = {t.ident: t.name for t in threading.enumerate()}
    parts = []
    for ident, frame in sys._current_frames().items():
        parts.append(f'"{names.get(ident, ident)}"\n' + "".join(traceback.format_stack(frame)))
    return "\n".join(parts)


def _epoch_ms(monotonic_s: float) -> int:
    if monotonic_s <= 0:
        return 0
    return int((time.time() - (time.monotonic() - monotonic_s)) * 1000)


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _java(flag: bool) -> str:
    return "true" if flag else "false"
