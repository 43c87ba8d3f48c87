"""Message trace: what a producer sent and what a consumer did with it, written as trace records
to RMQ_SYS_TRACE_TOPIC (the client trace of rocketmq-all-4.9.7: TraceDataEncoder,
AsyncTraceDispatcher, SendMessageTraceHookImpl, ConsumeMessageTraceHookImpl).

A trace message's body is records back to back. A record is fields joined by CONTENT_SPLITOR
(\\x01) and ended by FIELD_SPLITOR (\\x02). Field order per type (Java's):

    Pub        Pub, timestamp, regionId, group, topic, msgId, tags, keys, storeHost, bodyLength,
               costTime, msgType, offsetMsgId, success, clientHost
    SubBefore  SubBefore, timestamp, regionId, group, requestId, msgId, retryTimes, keys
    SubAfter   SubAfter, requestId, msgId, costTime, success, keys, contextCode, timestamp, group
    EndTransaction  EndTransaction, timestamp, regionId, group, topic, msgId, tags, keys,
               storeHost, msgType, transactionId, transactionState, fromTransactionCheck

Example: ``Pub\\x011700000000000\\x01DefaultRegion\\x01PG\\x01T\\x01<uniq id>\\x01TagA\\x01k1\\x01
127.0.0.1:10911\\x012\\x013\\x010\\x01<offset id>\\x01true\\x01127.0.0.1\\x02``.
Java writes a missing string as ``null``; we do too, and read ``null`` back as "". (Java 4.9.7
writes Pub without clientHost; its decoder reads the 15-field form, which we write.)

The trace message's keys are each record's msgId plus its user keys, so the broker's index finds
a message's trace by its msg id. Sending is asynchronous and best effort: records queue up (at
most ``queue_size``, extra ones are dropped and counted), a worker sends them in batches every
``flush_interval_s`` or when ``max_batch_bytes`` fill up, and a failed send is only logged. A
user's send or consume never waits for, or fails because of, tracing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import Any, Protocol

from .ids import create_uniq_id
from .message import Message, MessageExt

log = logging.getLogger(__name__)

TRACE_TOPIC = "RMQ_SYS_TRACE_TOPIC"  # TopicValidator.RMQ_SYS_TRACE_TOPIC
GROUP_NAME_PREFIX = "_INNER_TRACE_PRODUCER"
CONTENT_SPLITOR = "\x01"
FIELD_SPLITOR = "\x02"
NULL = "null"  # what Java's StringBuilder appends for a null String
MAX_KEYS_BYTES = 16_000  # a trace message's KEYS property stays well inside 32767 bytes


class TraceType(Enum):
    PUB = "Pub"
    SUB_BEFORE = "SubBefore"
    SUB_AFTER = "SubAfter"
    END_TRANSACTION = "EndTransaction"


class MessageType(IntEnum):
    """MessageType ordinals, as the Pub record carries them."""

    NORMAL = 0
    TRANS_HALF = 1
    TRANS_COMMIT = 2
    DELAY = 3


class ConsumeReturnType(IntEnum):
    """ConsumeReturnType ordinals: SubAfter's contextCode."""

    SUCCESS = 0
    TIME_OUT = 1
    EXCEPTION = 2
    RETURNNULL = 3
    FAILED = 4


@dataclass(slots=True)
class TraceRecord:
    """One trace record (a TraceContext with its one TraceBean, flattened). Fields a type does
    not carry keep their defaults."""

    type: TraceType
    msg_id: str = ""
    timestamp_ms: int = 0
    region_id: str = ""
    group: str = ""
    topic: str = ""
    tags: str = ""
    keys: str = ""
    store_host: str = ""
    body_length: int = 0
    cost_ms: int = 0
    msg_type: int = MessageType.NORMAL
    offset_msg_id: str = ""
    success: bool = True
    client_host: str = ""
    request_id: str = ""
    retry_times: int = 0
    context_code: int = ConsumeReturnType.SUCCESS
    transaction_id: str = ""
    transaction_state: str = ""
    from_transaction_check: bool = False

    def index_keys(self) -> list[str]:
        """TraceTransferBean.transKey: the msg id and each user key."""
        return [self.msg_id, *(k for k in self.keys.split(" ") if k)]


# -- codec ------------------------------------------------------------------------------------

def encode_record(r: TraceRecord) -> str:
    """One record, FIELD_SPLITOR included (TraceDataEncoder.encoderFromContextBean)."""
    t = r.type
    if t is TraceType.PUB:
        fields = [t.value, r.timestamp_ms, r.region_id, r.group, r.topic, r.msg_id, r.tags,
                  r.keys, r.store_host, r.body_length, r.cost_ms, int(r.msg_type),
                  r.offset_msg_id, r.success, r.client_host]
    elif t is TraceType.SUB_BEFORE:
        fields = [t.value, r.timestamp_ms, r.region_id, r.group, r.request_id, r.msg_id,
                  r.retry_times, r.keys]
    elif t is TraceType.SUB_AFTER:
        fields = [t.value, r.request_id, r.msg_id, r.cost_ms, r.success, r.keys,
                  int(r.context_code), r.timestamp_ms, r.group]
    else:
        fields = [t.value, r.timestamp_ms, r.region_id, r.group, r.topic, r.msg_id, r.tags,
                  r.keys, r.store_host, int(r.msg_type), r.transaction_id, r.transaction_state,
                  r.from_transaction_check]
    return CONTENT_SPLITOR.join(map(_text, fields)) + FIELD_SPLITOR


def encode_records(records: Sequence[TraceRecord]) -> str:
    return "".join(encode_record(r) for r in records)


def decode_records(data: str | bytes) -> list[TraceRecord]:
    """Every record of a trace message body (TraceDataEncoder.decoderFromTraceDataString).
    Records of an unknown type, or too short to read, are skipped with a log line."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    out = []
    for line in text.split(FIELD_SPLITOR):
        if not line:
            continue
        f = line.split(CONTENT_SPLITOR)
        try:
            rec = _decode_line(f)
        except (IndexError, ValueError) as exc:
            log.info("unreadable trace record %r: %s", line[:80], exc)
            continue
        if rec is not None:
            out.append(rec)
    return out


def _decode_line(f: list[str]) -> TraceRecord | None:
    kind = f[0]
    if kind == TraceType.PUB.value:
        rec = TraceRecord(TraceType.PUB, timestamp_ms=int(f[1]), region_id=_str(f[2]),
                          group=_str(f[3]), topic=_str(f[4]), msg_id=_str(f[5]),
                          tags=_str(f[6]), keys=_str(f[7]), store_host=_str(f[8]),
                          body_length=int(f[9]), cost_ms=int(f[10]), msg_type=int(f[11]))
        if len(f) == 13:  # the oldest form: no offsetMsgId
            rec.success = _bool(f[12])
        elif len(f) >= 14:
            rec.offset_msg_id, rec.success = _str(f[12]), _bool(f[13])
            if len(f) >= 15:
                rec.client_host = _str(f[14])
        return rec
    if kind == TraceType.SUB_BEFORE.value:
        return TraceRecord(TraceType.SUB_BEFORE, timestamp_ms=int(f[1]), region_id=_str(f[2]),
                           group=_str(f[3]), request_id=_str(f[4]), msg_id=_str(f[5]),
                           retry_times=int(f[6]), keys=_str(f[7]) if len(f) > 7 else "")
    if kind == TraceType.SUB_AFTER.value:
        rec = TraceRecord(TraceType.SUB_AFTER, request_id=_str(f[1]), msg_id=_str(f[2]),
                          cost_ms=int(f[3]), success=_bool(f[4]),
                          keys=_str(f[5]) if len(f) > 5 else "")
        if len(f) >= 7:
            rec.context_code = int(f[6])
        if len(f) >= 9:  # not written for the cloud access channel
            rec.timestamp_ms, rec.group = int(f[7]), _str(f[8])
        return rec
    if kind == TraceType.END_TRANSACTION.value:
        return TraceRecord(TraceType.END_TRANSACTION, timestamp_ms=int(f[1]),
                           region_id=_str(f[2]), group=_str(f[3]), topic=_str(f[4]),
                           msg_id=_str(f[5]), tags=_str(f[6]), keys=_str(f[7]),
                           store_host=_str(f[8]), msg_type=int(f[9]),
                           transaction_id=_str(f[10]), transaction_state=_str(f[11]),
                           from_transaction_check=_bool(f[12]))
    log.info("unknown trace record type %r", kind)
    return None


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or value == "":
        return NULL  # never an empty field: Java's split would drop a trailing one
    return str(value)


def _str(field: str) -> str:
    return "" if field == NULL else field


def _bool(field: str) -> bool:
    return field.lower() == "true"  # Boolean.parseBoolean


def _now_ms() -> int:
    return int(time.time() * 1000)


# -- dispatcher -------------------------------------------------------------------------------

class TraceSender(Protocol):
    """What the dispatcher sends through: a producer of its own (producer.trace_dispatcher
    makes one), started and closed with it."""

    async def start(self) -> Any: ...

    async def close(self) -> None: ...

    async def send(self, msg: Message) -> Any: ...


class SendOutcome(Protocol):
    """The fields of a send's result that a Pub record carries."""

    msg_id: str
    offset_msg_id: str
    region_id: str | None
    status: Enum


def trace_group(owner_group: str, kind: str) -> str:
    """The producer group trace records are sent under (TraceConstants.GROUP_NAME_PREFIX)."""
    return f"{GROUP_NAME_PREFIX}-{owner_group}-{kind}"


class TraceDispatcher:
    """Queues trace records and sends them in batches through its own producer.

    Made by a Producer or PushConsumer given ``trace=True`` (producer.trace_dispatcher); runs
    on their event loop. ``append`` never blocks and never raises.
    """

    def __init__(self, sender: TraceSender, *, topic: str = TRACE_TOPIC,
                 flush_interval_s: float = 0.5, batch_size: int = 100,
                 max_batch_bytes: int = 128_000 - 10_000, queue_size: int = 2048) -> None:
        self.topic = topic
        self.discarded = 0
        self._sender = sender
        self._flush_interval_s = flush_interval_s
        self._batch_size = batch_size
        self._max_batch_bytes = max_batch_bytes
        self._queue: asyncio.Queue[TraceRecord] = asyncio.Queue(queue_size)
        self._producer: TraceSender | None = None
        self._worker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._sender.start()
        self._producer = self._sender
        self._worker = asyncio.ensure_future(self._run())
        self._worker.set_name(f"trace-{self.topic}")

    async def close(self, timeout_s: float = 3.0) -> None:
        """Send what is queued (within timeout_s), then stop the producer."""
        if self._worker is None:
            return
        try:
            await self.flush(timeout_s)
        except TimeoutError:
            log.warning("trace: %d records not sent at close", self._queue.qsize())
        self._worker.cancel()
        await asyncio.gather(self._worker, return_exceptions=True)
        self._worker = None
        if self._producer is not None:
            await self._producer.close()
            self._producer = None

    def append(self, record: TraceRecord) -> None:
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self.discarded += 1
            if self.discarded % 100 == 1:
                log.warning("trace queue full: %d records dropped so far", self.discarded)

    async def flush(self, timeout_s: float = 5.0) -> None:
        """Wait until every record appended so far was sent (or given up); TimeoutError
        after timeout_s. The worker still batches: this takes up to flush_interval_s."""
        async with asyncio.timeout(timeout_s):
            await self._queue.join()

    # -- producer side -------------------------------------------------------------------

    def published(self, group: str, msg: Message, props: dict[str, str], broker_addr: str,
                  result: SendOutcome, started_ms: int, client_host: str) -> None:
        """A Pub record for one send attempt that got an answer (SendMessageTraceHookImpl)."""
        if msg.topic == self.topic:
            return
        if props.get("TRAN_MSG") == "true":
            msg_type = MessageType.TRANS_HALF
        elif msg.delay_level > 0 or "DELAY" in props:
            msg_type = MessageType.DELAY
        else:
            msg_type = MessageType.NORMAL
        self.append(TraceRecord(
            TraceType.PUB, msg_id=result.msg_id, timestamp_ms=started_ms,
            region_id=result.region_id or "", group=group, topic=msg.topic,
            tags=props.get("TAGS", ""), keys=props.get("KEYS", ""), store_host=broker_addr,
            body_length=len(msg.body), cost_ms=max(0, _now_ms() - started_ms),
            msg_type=msg_type, offset_msg_id=result.offset_msg_id,
            success=result.status.name == "SEND_OK", client_host=client_host))

    # -- consumer side -------------------------------------------------------------------

    async def around_consume(self, group: str, msgs: list[MessageExt],
                             call: Callable[[list[MessageExt]], Awaitable[Any]]) -> Any:
        """Run ``call(msgs)`` between a SubBefore and a SubAfter record per message
        (ConsumeMessageTraceHookImpl); the listener's result or exception passes through."""
        traced = [m for m in msgs if m.properties.get("TRACE_ON") != "false"]
        if not traced:
            return await call(msgs)
        request_id, started = create_uniq_id(), _now_ms()
        for m in traced:
            self.append(TraceRecord(
                TraceType.SUB_BEFORE, msg_id=m.msg_id, timestamp_ms=started,
                region_id=m.properties.get("MSG_REGION", ""), group=group,
                request_id=request_id, retry_times=m.reconsume_times, keys=m.keys or ""))
        try:
            status = await call(msgs)
        except BaseException:
            self._after(group, traced, request_id, started, False, ConsumeReturnType.EXCEPTION)
            raise
        ok = status is None or getattr(status, "value", None) in ("CONSUME_SUCCESS", "SUCCESS")
        self._after(group, traced, request_id, started, ok,
                    ConsumeReturnType.SUCCESS if ok else ConsumeReturnType.FAILED)
        return status

    def _after(self, group: str, msgs: list[MessageExt], request_id: str, started: int,
               ok: bool, code: ConsumeReturnType) -> None:
        now = _now_ms()
        cost = max(0, now - started) // max(1, len(msgs))
        for m in msgs:
            self.append(TraceRecord(TraceType.SUB_AFTER, msg_id=m.msg_id, timestamp_ms=now,
                                    group=group, request_id=request_id, cost_ms=cost,
                                    success=ok, keys=m.keys or "", context_code=code))

    # -- sending ---------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            # Gather for up to flush_interval_s (AsyncTraceDispatcher's waitTimeThresholdMil).
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._flush_interval_s
            while len(batch) < self._batch_size:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), left))
                except TimeoutError:
                    break
            try:
                for part in self._split(batch):
                    await self._send(part)
            finally:
                for _ in batch:
                    self._queue.task_done()

    def _split(self, records: list[TraceRecord]) -> list[list[TraceRecord]]:
        """Batches under max_batch_bytes of data and MAX_KEYS_BYTES of keys."""
        parts: list[list[TraceRecord]] = [[]]
        size = keys = 0
        for r in records:
            n, k = len(encode_record(r)), sum(len(x) + 1 for x in r.index_keys())
            if parts[-1] and (size + n > self._max_batch_bytes or keys + k > MAX_KEYS_BYTES):
                parts.append([])
                size = keys = 0
            parts[-1].append(r)
            size, keys = size + n, keys + k
        return [p for p in parts if p]

    async def _send(self, records: list[TraceRecord]) -> None:
        if not records or self._producer is None:
            return
        keys = sorted({k for r in records for k in r.index_keys() if k})
        msg = Message(self.topic, encode_records(records).encode("utf-8"), keys=keys)
        try:
            await self._producer.send(msg)
        except Exception as exc:  # noqa: BLE001 - tracing is best effort
            log.warning("trace: %d records not sent to %s: %s", len(records), self.topic, exc)
