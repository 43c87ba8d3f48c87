"""PushConsumer: long-polling pull loops per assigned queue feeding a listener
(DefaultMQPushConsumerImpl, ConsumeMessageConcurrentlyService and ConsumeMessageOrderlyService of
rocketmq-all-4.9.7).

* One pull task per queue: PULL_MESSAGE with suspend (long polling) and the subscription,
  paused while the queue holds more than ``pull_threshold_for_queue`` messages or
  ``pull_threshold_size_for_queue_mb`` MiB (flow control).
* Concurrent listener: batches of ``consume_batch_size`` run as asyncio tasks (a coroutine
  listener) or in a thread pool (a plain function), at most ``consume_concurrency`` at a time.
  RECONSUME_LATER in clustering mode sends the messages back (CONSUMER_SEND_MSG_BACK); if the
  broker cannot take them (e.g. REQUEST_CODE_NOT_SUPPORTED) they are delivered again locally
  after ``reconsume_delay_s`` and keep the queue's offset from advancing, until a message's
  reconsume times reach ``max_reconsume_times``: then it is logged as an error, handed to the
  ``on_dead_letter`` callback if any, and its offset may advance (Java redelivers forever).
  Broadcasting drops failures with a warning, as Java does.
* Orderly listener: one batch per queue at a time, in offset order, only while this member
  holds the queue's lock on the broker (LOCK_BATCH_MQ, renewed every ``lock_interval_s``);
  SUSPEND_CURRENT_QUEUE_A_MOMENT retries the batch after ``suspend_current_queue_s``; a message
  whose reconsume times reached ``max_reconsume_times`` is sent back with delay level -1, which
  stores it in %DLQ%<group>, and the queue moves on (checkReconsumeTimes); if the broker refuses,
  the queue keeps suspending.
  A queue taken away by a rebalance is unlocked only after its batch finished and its offset
  was stored, so the next owner continues in order.
* Offsets: the smallest offset still in process is committed every ``persist_interval_s``
  (clustering: on the broker; broadcasting: in a local file) and at close.
* Iteration (``async for msg in consumer``): without a listener the consumer feeds an internal
  one that hands each message to the iterator and waits for its acknowledgement (see
  PushConsumer.use_iterator).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from enum import Enum
from pathlib import Path
from typing import Self

from ..net import TlsClientConfig
from ..protocol.acl_signature import Credentials
from ._member import ConsumeFromWhere, GroupMember, MessageModel
from .broker_api import FLAG_COMMIT_OFFSET, FLAG_SUBSCRIPTION, FLAG_SUSPEND, PullStatus
from .consume_stats import ConsumeStats
from .consumer_admin import serve_admin_requests
from .errors import BrokerError
from .message import MessageExt, MessageQueue
from .offset_store import LocalFileOffsetStore, OffsetStore, RemoteBrokerOffsetStore
from .process_queue import ProcessQueue
from .producer import trace_dispatcher
from .rebalance import AllocateStrategy, allocate_averagely
from .trace import TRACE_TOPIC

log = logging.getLogger(__name__)


class ConsumeStatus(Enum):
    """What a concurrent listener returns (ConsumeConcurrentlyStatus)."""

    SUCCESS = "CONSUME_SUCCESS"
    RECONSUME_LATER = "RECONSUME_LATER"


class OrderlyStatus(Enum):
    """What an orderly listener returns (ConsumeOrderlyStatus)."""

    SUCCESS = "SUCCESS"
    SUSPEND_CURRENT_QUEUE_A_MOMENT = "SUSPEND_CURRENT_QUEUE_A_MOMENT"


Listener = Callable[[list[MessageExt]], ConsumeStatus | OrderlyStatus | None
                    | Awaitable[ConsumeStatus | OrderlyStatus | None]]

DeadLetterCallback = Callable[[MessageExt], None | Awaitable[None]]

PULL_DELAY_ON_EXCEPTION_S = 1.0  # pullTimeDelayMillsWhenException
DEFAULT_MAX_RECONSUME = 16  # what -1 means for concurrent consumption (Java)
DLQ_DELAY_LEVEL = -1  # CONSUMER_SEND_MSG_BACK with a negative level: straight to %DLQ%
FLOW_CONTROL_DELAY_S = 0.05  # PULL_TIME_DELAY_MILLS_WHEN_FLOW_CONTROL
LOCK_MAX_AGE_S = 30.0  # ProcessQueue.REBALANCE_LOCK_MAX_LIVE_TIME


class PushConsumer(GroupMember):
    """An asyncio push consumer.

    ::

        consumer = PushConsumer("group", namesrv="127.0.0.1:9876")
        consumer.subscribe("TopicA", "TagA || TagB")
        consumer.on_message(handle)            # or on_message_orderly(handle)
        async with consumer:
            ...

    A listener gets a list of MessageExt (at most ``consume_batch_size``) and returns a
    ConsumeStatus (OrderlyStatus for orderly); None counts as SUCCESS, an exception as
    RECONSUME_LATER / SUSPEND_CURRENT_QUEUE_A_MOMENT. A coroutine function runs on the loop; a
    plain function runs in a thread pool.

    ``max_reconsume_times`` (-1, Java's default: 16 concurrently, no limit orderly) bounds how
    often one message is consumed again: past it the broker dead-letters it (%DLQ%<group>); a
    concurrent consumer whose broker refuses send-back gives it to ``on_dead_letter`` instead.

    Without a listener the consumer is an async iterator of messages, one at a time::

        consumer = PushConsumer("group", namesrv="127.0.0.1:9876")
        consumer.subscribe("TopicA")
        async with consumer:
            async for msg in consumer:
                await handle(msg)           # acknowledged when the loop asks for the next one

    A message is acknowledged (CONSUME_SUCCESS) when the loop asks for the next message, or
    when ``async with`` exits without an exception (after ``break``, say). If the loop body
    raises and the exception leaves ``async with``, that message is not acknowledged: it comes
    back (RECONSUME_LATER). ``consumer.reconsume_later(msg)`` does the same on purpose and
    ``consumer.ack(msg)`` acknowledges at once. Messages buffered but never yielded stay
    uncommitted and are delivered again to the group. The iteration ends when the consumer
    closes. ``use_iterator(orderly=True)`` before start yields each queue's messages in offset
    order (concurrently consumed queues interleave). See ``use_iterator``.
    """

    def __init__(self, group: str, namesrv: str | None = None, *,
                 message_model: MessageModel = MessageModel.CLUSTERING,
                 consume_from_where: ConsumeFromWhere = ConsumeFromWhere.LAST_OFFSET,
                 consume_timestamp_ms: int | None = None,
                 allocate: AllocateStrategy = allocate_averagely,
                 consume_batch_size: int = 1, pull_batch_size: int = 32,
                 consume_concurrency: int = 20,
                 pull_threshold_for_queue: int = 1000, pull_threshold_size_for_queue_mb: int = 100,
                 max_reconsume_times: int = -1, reconsume_delay_s: float = 5.0,
                 suspend_current_queue_s: float = 1.0, broker_suspend_ms: int = 15_000,
                 persist_interval_s: float = 5.0, rebalance_interval_s: float = 20.0,
                 lock_interval_s: float = 20.0, heartbeat_s: float = 30.0,
                 route_refresh_s: float = 30.0, await_termination_s: float = 10.0,
                 credentials: Credentials | None = None, namesrv_domain: str | None = None,
                 instance_name: str | None = None, offset_store_dir: str | Path | None = None,
                 trace: bool = False, trace_topic: str = TRACE_TOPIC,
                 on_dead_letter: DeadLetterCallback | None = None,
                 tls: TlsClientConfig | None = None) -> None:
        super().__init__(group, namesrv, message_model=message_model,
                         consume_from_where=consume_from_where,
                         consume_timestamp_ms=consume_timestamp_ms, allocate=allocate,
                         credentials=credentials, namesrv_domain=namesrv_domain,
                         instance_name=instance_name, rebalance_interval_s=rebalance_interval_s,
                         heartbeat_s=heartbeat_s, route_refresh_s=route_refresh_s, tls=tls)
        self.consume_batch_size = consume_batch_size
        self.pull_batch_size = pull_batch_size
        self.consume_concurrency = consume_concurrency
        self.pull_threshold_for_queue = pull_threshold_for_queue
        self.pull_threshold_size_bytes = pull_threshold_size_for_queue_mb * 1024 * 1024
        self.max_reconsume_times = max_reconsume_times
        self.reconsume_delay_s = reconsume_delay_s
        self.suspend_current_queue_s = suspend_current_queue_s
        self.broker_suspend_ms = broker_suspend_ms
        self.await_termination_s = await_termination_s
        self._persist_interval_s = persist_interval_s
        self._lock_interval_s = lock_interval_s
        self._listener: Listener | None = None
        self._dead_letter_cb = on_dead_letter  # see on_dead_letter()
        self._orderly = False
        self._is_coro = False
        self._executor: ThreadPoolExecutor | None = None
        self._sem: asyncio.Semaphore | None = None
        self._consumes: set[asyncio.Task[None]] = set()
        self._iterating = False
        self._iter_queue: asyncio.Queue[
            tuple[MessageExt, asyncio.Future[bool]] | None] | None = None
        self._iter_unacked: dict[int, asyncio.Future[bool]] = {}  # id(msg) -> ack future
        self._iter_last: MessageExt | None = None
        self.process_queues: dict[MessageQueue, ProcessQueue] = {}
        self.consume_stats = ConsumeStats()  # for GET_CONSUMER_RUNNING_INFO
        self.start_ms = 0
        if message_model is MessageModel.BROADCASTING:
            base = Path(offset_store_dir) if offset_store_dir else \
                Path.home() / ".rocketmq_offsets" / self.client_id.split("@")[0]
            self.offset_store: OffsetStore = LocalFileOffsetStore(base / group)
        else:
            self.offset_store = RemoteBrokerOffsetStore(self.api, group)
        # trace=True: SubBefore/SubAfter trace records around each listener call (trace.py).
        self.tracer = trace_dispatcher(namesrv, group, "CONSUMER", trace_topic, credentials,
                                       namesrv_domain, tls) if trace else None
        serve_admin_requests(self)  # the broker's reset-offset, running-info, consume-directly

    # -- configuration -----------------------------------------------------------------------

    def subscribe(self, topic: str, expression: str = "*", expression_type: str = "TAG") -> None:
        """Subscribe to ``topic``: ``*``, ``TagA || TagB``, or an SQL92 expression with
        ``expression_type="SQL92"`` (passed to the broker, which may refuse it)."""
        self._subscribe(topic, expression, expression_type)

    def on_message(self, listener: Listener) -> None:
        """Consume concurrently with ``listener`` (returns ConsumeStatus)."""
        self._set_listener(listener, orderly=False)

    def on_message_orderly(self, listener: Listener) -> None:
        """Consume each queue in order with ``listener`` (returns OrderlyStatus)."""
        self._set_listener(listener, orderly=True)

    def on_dead_letter(self, callback: DeadLetterCallback | None) -> None:
        """Call ``callback(msg)`` for each message given up locally: RECONSUME_LATER
        ``max_reconsume_times`` times while the broker refused to take it back (an old broker, a
        retry topic without write permission). The offset moves past it after the callback
        returns (or raises: logged). A coroutine function is awaited; a plain one runs in a
        thread. Messages the broker dead-letters (%DLQ%<group>) do not come here."""
        self._dead_letter_cb = callback

    def use_iterator(self, *, orderly: bool = False) -> None:
        """Consume with ``async for msg in consumer`` (what start() picks when no listener was
        registered); ``orderly=True`` keeps each queue's order, as on_message_orderly does.

        Messages are handed out one at a time (``consume_batch_size`` becomes 1): concurrently,
        up to ``consume_concurrency`` wait for the iterator; orderly, one per queue, the queue's
        next only after this one was acknowledged. Acknowledgement: asking for the next message,
        ``ack(msg)``, or leaving ``async with`` without an exception; ``reconsume_later(msg)``
        or an exception leaving ``async with`` sends it back instead (clustering: to the retry
        topic; orderly: retried after ``suspend_current_queue_s``; broadcasting: dropped, as
        Java does with a failed broadcast message).
        """
        self._set_listener(self._iter_listener, orderly=orderly)
        self._iterating = True
        self.consume_batch_size = 1

    def _set_listener(self, listener: Listener, *, orderly: bool) -> None:
        if self.started:
            raise RuntimeError("register the listener before start()")
        self._listener, self._orderly = listener, orderly
        self._iterating = False
        self._is_coro = inspect.iscoroutinefunction(listener) or \
            inspect.iscoroutinefunction(getattr(type(listener), "__call__", None))  # noqa: B004

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Fetch routes, heartbeat, rebalance and start pulling."""
        if not self.subscriptions:
            raise RuntimeError("no subscription: call subscribe() first")
        if self._listener is None:
            self.use_iterator()
        if self._iterating:
            self._iter_queue = asyncio.Queue()
            self._iter_last = None
        self._with_retry_topic()
        self._sem = asyncio.Semaphore(self.consume_concurrency)
        if not self._is_coro:
            self._executor = ThreadPoolExecutor(self.consume_concurrency,
                                                thread_name_prefix=f"consume-{self.group}")
        await self.offset_store.load()
        self.start_ms = int(time.time() * 1000)
        if self.tracer is not None:
            await self.tracer.start()
        await self._start_member()
        self.tasks.every(self._persist_interval_s, self.persist_offsets, name="persist-offsets")
        if self._orderly and self.clustering:
            self.tasks.every(self._lock_interval_s, self.lock_all, name="lock-all")

    async def close(self) -> None:
        """Stop pulling, let running listeners finish (``await_termination_s``), store the
        offsets, unlock orderly queues, unregister, close connections."""
        await self._close(ack_pending=True)

    async def _close(self, *, ack_pending: bool) -> None:
        if not self.started:
            return
        self.started = False
        await self.tasks.cancel_all()
        pqs = list(self.process_queues.values())
        for pq in pqs:
            if pq.pull_task is not None:
                pq.pull_task.cancel()
        if self._iterating:
            self._end_iteration(ack_pending)
        if self._consumes:
            await asyncio.wait(list(self._consumes), timeout=self.await_termination_s)
        for pq in pqs:
            if pq.consume_task is not None:
                try:
                    async with asyncio.timeout(self.await_termination_s):
                        async with pq.consume_lock:
                            pq.dropped = True
                except TimeoutError:
                    pass
                pq.consume_task.cancel()
            pq.dropped = True
        for pq in pqs:
            try:
                await self.offset_store.persist_one(pq.mq)
            except Exception as exc:  # noqa: BLE001
                log.warning("offset of %s not stored at close: %s", pq.mq, exc)
        if self._orderly and self.clustering:
            await self._unlock([pq.mq for pq in pqs])
        await self._stop_member()
        if self.tracer is not None:
            await self.tracer.close()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    async def __aexit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        # A message the loop was working on when an exception left `async with` comes back.
        await self._close(ack_pending=exc_type is None)

    # -- iteration -------------------------------------------------------------------------

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> MessageExt:
        """The next message; acknowledges the one handed out before (see use_iterator)."""
        if not self._iterating:
            raise RuntimeError("a listener is registered: the consumer is not iterable")
        if self._iter_last is not None:
            self.ack(self._iter_last)
            self._iter_last = None
        queue = self._iter_queue
        if queue is None:
            raise RuntimeError("start the consumer first (async with consumer: ...)")
        while True:
            if not self.started and queue.empty():
                raise StopAsyncIteration
            item = await queue.get()
            if item is None:  # close()
                queue.put_nowait(None)  # for any other waiting iterator
                raise StopAsyncIteration
            msg, fut = item
            if fut.done():  # given up (close) while queued
                continue
            self._iter_unacked[id(msg)] = fut
            self._iter_last = msg
            return msg

    def ack(self, msg: MessageExt) -> None:
        """Acknowledge ``msg`` (handed out by the iterator) now: CONSUME_SUCCESS."""
        self._resolve(msg, True)

    def reconsume_later(self, msg: MessageExt) -> None:
        """Do not acknowledge ``msg``: it comes back later (RECONSUME_LATER; orderly: the queue
        suspends a moment and retries it)."""
        self._resolve(msg, False)

    def _resolve(self, msg: MessageExt, ok: bool) -> None:
        fut = self._iter_unacked.pop(id(msg), None)
        if fut is not None and not fut.done():
            fut.set_result(ok)
        if msg is self._iter_last:
            self._iter_last = None

    async def _iter_listener(self, msgs: list[MessageExt]) -> ConsumeStatus:
        assert self._iter_queue is not None
        loop = asyncio.get_running_loop()
        if not self.started:  # called again after close (a delayed redelivery): not consumed
            raise asyncio.CancelledError
        for msg in msgs:  # one, as use_iterator sets consume_batch_size
            fut: asyncio.Future[bool] = loop.create_future()
            self._iter_queue.put_nowait((msg, fut))
            if not await fut:
                return ConsumeStatus.RECONSUME_LATER
        return ConsumeStatus.SUCCESS

    def _end_iteration(self, ack_pending: bool) -> None:
        """At close: settle the message the loop holds; cancel the queued ones (their offsets
        stay uncommitted); end every iterator."""
        if self._iter_last is not None:
            self._resolve(self._iter_last, ack_pending)
        for fut in self._iter_unacked.values():  # handed out, never acked: not consumed
            if not fut.done():
                fut.cancel()
        self._iter_unacked.clear()
        queue = self._iter_queue
        if queue is not None:
            while not queue.empty():
                item = queue.get_nowait()
                if item is not None and not item[1].done():
                    item[1].cancel()
            queue.put_nowait(None)

    async def persist_offsets(self) -> None:
        """Store the offsets of every queue held (the 5 s timer; also at close)."""
        await self.offset_store.persist(list(self.process_queues))

    # -- rebalance hooks -------------------------------------------------------------------

    async def _assign(self, topic: str, mqs: set[MessageQueue]) -> None:
        """RebalanceImpl.updateProcessQueueTableInRebalance."""
        for mq in [m for m in self.process_queues if m.topic == topic and m not in mqs]:
            await self._drop(mq)
        added = sorted(mq for mq in mqs if mq not in self.process_queues)
        if not added:
            return
        if self._orderly and self.clustering:
            locked = await self._lock(added)
            added = [mq for mq in added if mq in locked]
        for mq in added:
            try:
                stored = await self.offset_store.read(mq)
                offset = await self.start_offset(mq, stored)
            except Exception as exc:  # noqa: BLE001 - next rebalance tries again
                log.info("no start offset for %s: %s", mq, exc)
                continue
            pq = ProcessQueue(mq, offset)
            pq.locked, pq.last_lock_s = True, time.monotonic()
            self.offset_store.update(mq, offset)
            self.process_queues[mq] = pq
            pq.pull_task = self.tasks.spawn(self._pull_loop(pq), f"pull-{mq}")
            if self._orderly:
                pq.consume_task = self.tasks.spawn(self._orderly_loop(pq), f"consume-{mq}")
            log.info("%s: now consuming %s from %d", self.client_id, mq, offset)

    async def reset_offsets(self, topic: str, offsets: dict[MessageQueue, int]) -> None:
        """The broker's RESET_CONSUMER_CLIENT_OFFSET (MQClientInstance.resetOffset): each
        queue of ``topic`` held here is given up with its offset set to the new one (what it
        had in hand is dropped, not committed), then taken again by a rebalance from there."""
        assert self._rebalance_lock is not None
        async with self._rebalance_lock:
            for mq in [m for m in self.process_queues if m.topic == topic and m in offsets]:
                await self._drop(mq, offsets[mq])
        log.info("%s: offsets of %s reset: %s", self.client_id, topic,
                 {str(mq): o for mq, o in offsets.items()})
        self.request_rebalance()

    async def _drop(self, mq: MessageQueue, reset_to: int | None = None) -> None:
        """Give a queue up: stop pulling; orderly waits for its batch; store offset (or
        ``reset_to``); unlock."""
        pq = self.process_queues.pop(mq)
        if pq.pull_task is not None:
            pq.pull_task.cancel()
        if self._orderly:
            async with pq.consume_lock:
                pq.dropped = True
            if pq.consume_task is not None:
                pq.consume_task.cancel()
        pq.dropped = True
        if reset_to is not None:
            self.offset_store.update(mq, reset_to)
        try:
            await self.offset_store.persist_one(mq)
        except Exception as exc:  # noqa: BLE001
            log.warning("offset of %s not stored when dropped: %s", mq, exc)
        self.offset_store.remove(mq)
        if self._orderly and self.clustering:
            await self._unlock([mq])
        log.info("%s: dropped %s", self.client_id, mq)

    # -- orderly locks ---------------------------------------------------------------------

    def _by_broker(self, mqs: list[MessageQueue]) -> dict[str, list[MessageQueue]]:
        out: dict[str, list[MessageQueue]] = {}
        for mq in mqs:
            out.setdefault(mq.broker_name, []).append(mq)
        return out

    async def _lock(self, mqs: list[MessageQueue]) -> set[MessageQueue]:
        got: set[MessageQueue] = set()
        for batch in self._by_broker(mqs).values():
            try:
                got |= await self.api.lock_batch(self.group, self.client_id, batch)
            except Exception as exc:  # noqa: BLE001
                log.info("lock of %s failed: %s", batch, exc)
        return got

    async def _unlock(self, mqs: list[MessageQueue]) -> None:
        for batch in self._by_broker(mqs).values():
            try:
                await self.api.unlock_batch(self.group, self.client_id, batch)
            except Exception as exc:  # noqa: BLE001
                log.info("unlock of %s failed: %s", batch, exc)

    async def lock_all(self) -> None:
        """RebalanceImpl.lockAll: renew the lock of every queue held (every 20 s)."""
        pqs = dict(self.process_queues)
        got = await self._lock(list(pqs))
        now = time.monotonic()
        for mq, pq in pqs.items():
            pq.locked = mq in got
            if pq.locked:
                pq.last_lock_s = now

    def _may_consume(self, pq: ProcessQueue) -> bool:
        return not self.clustering or (pq.locked and not pq.lock_expired(LOCK_MAX_AGE_S))

    # -- pulling -----------------------------------------------------------------------------

    async def _pull_loop(self, pq: ProcessQueue) -> None:
        """DefaultMQPushConsumerImpl.pullMessage, as a loop."""
        sub = self.subscriptions[pq.mq.topic]
        while not pq.dropped:
            if pq.count > self.pull_threshold_for_queue \
                    or pq.size_bytes > self.pull_threshold_size_bytes:
                await asyncio.sleep(FLOW_CONTROL_DELAY_S)
                continue
            if self._orderly and not self._may_consume(pq):
                got = await self._lock([pq.mq])
                if pq.mq not in got:
                    await asyncio.sleep(PULL_DELAY_ON_EXCEPTION_S)
                    continue
                pq.locked, pq.last_lock_s = True, time.monotonic()
            commit = self.offset_store.cached(pq.mq) if self.clustering else None
            sys_flag = FLAG_SUSPEND | FLAG_SUBSCRIPTION | (FLAG_COMMIT_OFFSET if commit else 0)
            started = time.monotonic()
            try:
                result = await self.api.pull(
                    self.group, pq.mq, pq.next_offset, sub, max_nums=self.pull_batch_size,
                    sys_flag=sys_flag, commit_offset=commit or 0,
                    suspend_ms=self.broker_suspend_ms,
                    timeout_s=self.broker_suspend_ms / 1000 + 15)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - broker down, restarting, refusing...
                level = logging.WARNING if isinstance(exc, BrokerError) else logging.INFO
                log.log(level, "pull of %s failed: %s", pq.mq, exc)
                await asyncio.sleep(PULL_DELAY_ON_EXCEPTION_S)
                continue
            if pq.dropped:
                return
            self.consume_stats.pulled(pq.mq.topic, len(result.messages),
                                      (time.monotonic() - started) * 1000)
            if result.status is PullStatus.OFFSET_ILLEGAL:
                log.warning("offset %d of %s illegal, moving to %d", pq.next_offset, pq.mq,
                            result.next_begin_offset)
                pq.next_offset = result.next_begin_offset
                pq.max_offset_seen = result.next_begin_offset - 1
                self.offset_store.update(pq.mq, pq.commit_point())
                continue
            pq.next_offset = result.next_begin_offset
            if result.status is PullStatus.FOUND and result.messages:
                pq.add(result.messages)
                if not self._orderly:
                    self._dispatch(pq, result.messages)
            elif pq.count == 0:
                # Nothing held: the offset follows the pulls (correctTagsOffset).
                pq.max_offset_seen = max(pq.max_offset_seen, result.next_begin_offset - 1)
                self.offset_store.update(pq.mq, pq.commit_point())

    # -- concurrent consumption ------------------------------------------------------------

    def _dispatch(self, pq: ProcessQueue, msgs: list[MessageExt]) -> None:
        for i in range(0, len(msgs), self.consume_batch_size):
            self._spawn_consume(pq, msgs[i:i + self.consume_batch_size], 0.0)

    def _spawn_consume(self, pq: ProcessQueue, msgs: list[MessageExt], delay_s: float) -> None:
        task = asyncio.ensure_future(self._consume(pq, msgs, delay_s))
        self._consumes.add(task)
        task.add_done_callback(self._consumes.discard)

    async def _call_listener(self, msgs: list[MessageExt]) -> object:
        if self.tracer is not None:
            return await self.tracer.around_consume(self.group, msgs, self._call_listener_plain)
        return await self._call_listener_plain(msgs)

    async def _call_listener_plain(self, msgs: list[MessageExt]) -> object:
        assert self._listener is not None
        if self._is_coro:
            return await self._listener(msgs)  # type: ignore[misc]
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self._executor, self._listener, msgs)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def _consume(self, pq: ProcessQueue, msgs: list[MessageExt], delay_s: float) -> None:
        """ConsumeMessageConcurrentlyService.ConsumeRequest + processConsumeResult."""
        if delay_s:
            await asyncio.sleep(delay_s)
        assert self._sem is not None
        async with self._sem:
            if pq.dropped:
                return
            started = time.monotonic()
            try:
                status = await self._call_listener(msgs)
            except Exception:
                log.exception("listener of %s failed on %d messages", self.group, len(msgs))
                status = ConsumeStatus.RECONSUME_LATER
            failed = status is ConsumeStatus.RECONSUME_LATER
            self.consume_stats.consumed(pq.mq.topic, 0 if failed else len(msgs),
                                        len(msgs) if failed else 0,
                                        (time.monotonic() - started) * 1000)
        if pq.dropped:
            return
        done = msgs
        if status is ConsumeStatus.RECONSUME_LATER:
            if self.clustering:
                limit = self._concurrent_max_reconsume()
                refused = [m for m in msgs if not await self._send_back(m, 0, limit)]
                # Java redelivers refused messages locally forever; we stop at the limit.
                again = [m for m in refused if m.reconsume_times < limit]
                given_up = [m for m in refused if m.reconsume_times >= limit]
                for m in given_up:
                    await self._give_up(m)
                if again:
                    for m in again:
                        m.reconsume_times += 1
                    self._spawn_consume(pq, again, self.reconsume_delay_s)
                kept = {id(m) for m in again}
                done = [m for m in msgs if id(m) not in kept]
            else:
                log.warning("broadcasting: dropping %d messages the listener failed on: %s",
                            len(msgs), ", ".join(m.msg_id for m in msgs))
        offset = pq.remove(done)
        if not pq.dropped:
            self.offset_store.update(pq.mq, offset)

    def _concurrent_max_reconsume(self) -> int:
        """DefaultMQPushConsumerImpl.getMaxReconsumeTimes: -1 means 16."""
        return DEFAULT_MAX_RECONSUME if self.max_reconsume_times == -1 else self.max_reconsume_times

    async def _send_back(self, msg: MessageExt, delay_level: int, limit: int) -> bool:
        """CONSUMER_SEND_MSG_BACK; False if the broker would not take it."""
        try:
            await self.api.send_back(self.group, msg, delay_level, limit)
            return True
        except Exception as exc:  # noqa: BLE001 - REQUEST_CODE_NOT_SUPPORTED, broker down...
            log.debug("send back of %s (delay level %d) failed: %s", msg.msg_id, delay_level, exc)
            return False

    async def _give_up(self, msg: MessageExt) -> None:
        """A message at the reconsume limit that the broker would not take back: log it, hand
        it to on_dead_letter; the caller lets the offset pass it."""
        log.error("group %s gives up message %s (%s queue %d offset %d): consumed again %d times "
                  "and the broker refused to take it back", self.group, msg.msg_id, msg.topic,
                  msg.queue_id, msg.queue_offset, msg.reconsume_times)
        cb = self._dead_letter_cb
        if cb is None:
            return
        try:
            if inspect.iscoroutinefunction(cb):
                await cb(msg)
            else:
                result = await asyncio.to_thread(cb, msg)
                if inspect.isawaitable(result):
                    await result
        except Exception:
            log.exception("on_dead_letter callback of %s failed on %s", self.group, msg.msg_id)

    # -- orderly consumption ---------------------------------------------------------------

    async def _orderly_loop(self, pq: ProcessQueue) -> None:
        """ConsumeMessageOrderlyService.ConsumeRequest, as a loop per queue."""
        while not pq.dropped:
            await pq.has_msgs.wait()
            if not self._may_consume(pq):
                await asyncio.sleep(0.1)
                continue
            async with pq.consume_lock:
                if pq.dropped:
                    return
                msgs = pq.take(self.consume_batch_size)
                if not msgs:
                    continue
                started = time.monotonic()
                try:
                    status = await self._call_listener(msgs)
                except Exception:
                    log.exception("orderly listener of %s failed", self.group)
                    status = OrderlyStatus.SUSPEND_CURRENT_QUEUE_A_MOMENT
                failed = status is OrderlyStatus.SUSPEND_CURRENT_QUEUE_A_MOMENT or \
                    status is ConsumeStatus.RECONSUME_LATER
                self.consume_stats.consumed(pq.mq.topic, 0 if failed else len(msgs),
                                            len(msgs) if failed else 0,
                                            (time.monotonic() - started) * 1000)
                if failed and await self._suspend_again(pq, msgs):
                    pq.make_later()
                    await asyncio.sleep(self.suspend_current_queue_s)
                    continue
                # Committed even if a rebalance is waiting to drop the queue: we still hold
                # its lock, and the drop stores this offset before unlocking.
                self.offset_store.update(pq.mq, pq.commit())

    async def _suspend_again(self, pq: ProcessQueue, msgs: list[MessageExt]) -> bool:
        """ConsumeMessageOrderlyService.checkReconsumeTimes: send each message of the batch that
        reached the limit to %DLQ%<group> (delay level -1) and take it out of the batch; True if
        some are left to retry (a refused send-back keeps its message), False if none."""
        if self.max_reconsume_times < 0:  # -1: no limit for orderly (Integer.MAX_VALUE)
            return True
        limit = self.max_reconsume_times
        retry = False
        for m in msgs:
            if m.reconsume_times >= limit and \
                    await self._send_back(m, DLQ_DELAY_LEVEL, limit):
                log.warning("group %s: message %s (%s queue %d offset %d) suspended %d times, "
                            "sent to the dead letter queue", self.group, m.msg_id, m.topic,
                            m.queue_id, m.queue_offset, m.reconsume_times)
                # Out of the batch, so a retry of the rest does not send it again (Java would).
                pq.drop(m)
            else:
                if m.reconsume_times >= limit:
                    log.error("group %s: message %s reached %d reconsume times but the broker "
                              "refused it back; suspending the queue again", self.group,
                              m.msg_id, limit)
                retry = True
        return retry
