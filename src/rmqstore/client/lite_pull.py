"""LitePullConsumer: the application polls (DefaultLitePullConsumer of rocketmq-all-4.9.7).

``subscribe`` lets the group rebalance queues among its members; ``assign`` takes a fixed set of
queues instead (no rebalance). Background tasks pull each queue into a buffer (at most
``pull_threshold_for_queue`` messages per queue); ``poll`` hands out one pulled batch. The
consumed offset of a queue is one past the last message ``poll`` returned; ``commit`` stores it
on the broker (or in the local file when broadcasting), and with ``auto_commit`` this happens
every ``auto_commit_interval_s`` and at close. ``seek`` moves a queue's position and discards
what was buffered for it.

``async for msg in consumer`` hands out the pulled messages one at a time instead of ``poll``;
a message counts as consumed when the loop asks for the next one (or when ``async with`` exits
without an exception), so ``commit``/auto-commit never store past a message the loop did not
finish.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from ..net import TlsClientConfig
from ..protocol.acl_signature import Credentials
from ._member import ConsumeFromWhere, GroupMember, MessageModel
from .broker_api import FLAG_LITE_PULL_MESSAGE, FLAG_SUBSCRIPTION, FLAG_SUSPEND, PullStatus
from .errors import BrokerError
from .message import MessageExt, MessageQueue
from .offset_store import LocalFileOffsetStore, OffsetStore, RemoteBrokerOffsetStore
from .rebalance import AllocateStrategy, allocate_averagely
from .routes import subscribe_queues

log = logging.getLogger(__name__)

PULL_DELAY_ON_EXCEPTION_S = 1.0
FLOW_CONTROL_DELAY_S = 0.05


@dataclass(slots=True)
class _QueueState:
    mq: MessageQueue
    pull_offset: int
    consume_offset: int
    generation: int = 0  # bumped by seek: buffered batches of older generations are dropped
    buffered: int = 0
    paused: bool = False
    task: asyncio.Task[None] | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class LitePullConsumer(GroupMember):
    """An asyncio lite pull consumer.

    ::

        consumer = LitePullConsumer("group", namesrv="127.0.0.1:9876")
        consumer.subscribe("TopicA")               # or consumer.assign([...]) after start
        async with consumer:
            msgs = await consumer.poll(timeout_s=1.0)
            await consumer.commit()

    Or as an async iterator, one message at a time (do not mix with ``poll``)::

        async with consumer:
            async for msg in consumer:
                await handle(msg)
                if done:
                    break                      # msg counts as consumed; close commits it

    A message counts as consumed (its queue's offset moves past it) when the loop asks for the
    next message, or when ``async with`` exits without an exception. If the loop body raises
    and the exception leaves ``async with``, that message is not consumed: with auto_commit the
    offset stored at close points at it, so the group gets it again. ``commit()`` inside the
    loop stores the offsets of the messages finished so far; auto_commit does so every
    ``auto_commit_interval_s``. The iteration ends when the consumer closes.
    """

    consume_type = "CONSUME_ACTIVELY"

    def __init__(self, group: str, namesrv: str | None = None, *,
                 message_model: MessageModel = MessageModel.CLUSTERING,
                 consume_from_where: ConsumeFromWhere = ConsumeFromWhere.LAST_OFFSET,
                 consume_timestamp_ms: int | None = None,
                 allocate: AllocateStrategy = allocate_averagely, pull_batch_size: int = 10,
                 pull_threshold_for_queue: int = 1000, broker_suspend_ms: int = 20_000,
                 auto_commit: bool = True, auto_commit_interval_s: float = 5.0,
                 rebalance_interval_s: float = 20.0, heartbeat_s: float = 30.0,
                 route_refresh_s: float = 30.0, credentials: Credentials | None = None,
                 namesrv_domain: str | None = None, instance_name: str | None = None,
                 offset_store_dir: str | Path | None = None,
                 tls: TlsClientConfig | None = None) -> None:
        super().__init__(group, namesrv, message_model=message_model,
                         consume_from_where=consume_from_where,
                         consume_timestamp_ms=consume_timestamp_ms, allocate=allocate,
                         credentials=credentials, namesrv_domain=namesrv_domain,
                         instance_name=instance_name, rebalance_interval_s=rebalance_interval_s,
                         heartbeat_s=heartbeat_s, route_refresh_s=route_refresh_s, tls=tls)
        self.pull_batch_size = pull_batch_size
        self.pull_threshold_for_queue = pull_threshold_for_queue
        self.broker_suspend_ms = broker_suspend_ms
        self.auto_commit = auto_commit
        self._auto_commit_interval_s = auto_commit_interval_s
        self._states: dict[MessageQueue, _QueueState] = {}
        # pulled batches; None is close()'s wake-up for a waiting iterator
        self._buffer: asyncio.Queue[tuple[_QueueState, int, list[MessageExt]] | None] | None = None
        self._assigned_mode = False
        self._iter_batch: list[MessageExt] = []  # rest of the batch being iterated, reversed
        self._iter_state: tuple[_QueueState, int] | None = None
        self._iter_last: MessageExt | None = None
        if message_model is MessageModel.BROADCASTING:
            base = Path(offset_store_dir) if offset_store_dir else \
                Path.home() / ".rocketmq_offsets" / self.client_id.split("@")[0]
            self.offset_store: OffsetStore = LocalFileOffsetStore(base / group)
        else:
            self.offset_store = RemoteBrokerOffsetStore(self.api, group)

    # -- configuration ---------------------------------------------------------------------

    def subscribe(self, topic: str, expression: str = "*", expression_type: str = "TAG") -> None:
        """Consume ``topic`` with queues shared by the group (rebalanced)."""
        if self._assigned_mode:
            raise RuntimeError("assign() and subscribe() do not mix")
        self._subscribe(topic, expression, expression_type)

    async def assign(self, mqs: list[MessageQueue], expression: str = "*") -> None:
        """Consume exactly ``mqs`` (no rebalance); replaces any earlier assignment."""
        if self.subscriptions and not self._assigned_mode:
            raise RuntimeError("assign() and subscribe() do not mix")
        self._check_started()
        self._assigned_mode = True
        for topic in {mq.topic for mq in mqs}:
            if topic not in self.subscriptions:
                self._subscribe(topic, expression, "TAG")
                await self.routes.update(topic)
        await self.heartbeat()
        wanted = set(mqs)
        for mq in [m for m in self._states if m not in wanted]:
            await self._remove(mq)
        for mq in sorted(wanted - set(self._states)):
            await self._add(mq)

    async def fetch_message_queues(self, topic: str) -> list[MessageQueue]:
        """Every readable queue of ``topic`` (fetchMessageQueues)."""
        self._check_started()
        return subscribe_queues(await self.routes.update(topic), topic)

    def assignment(self) -> list[MessageQueue]:
        return sorted(self._states)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._buffer = asyncio.Queue()
        self._iter_batch, self._iter_state, self._iter_last = [], None, None
        await self.offset_store.load()
        await self._start_member()
        if self.auto_commit:
            self.tasks.every(self._auto_commit_interval_s, self._auto_commit, name="auto-commit")

    async def close(self) -> None:
        """Stop pulling; with auto_commit, store the consumed offsets; unregister."""
        if not self.started:
            return
        self.started = False
        await self.tasks.cancel_all()
        if self.auto_commit:
            await self._commit_states(list(self._states.values()))
        self._states.clear()
        self._iter_batch, self._iter_state, self._iter_last = [], None, None
        if self._buffer is not None:
            self._buffer.put_nowait(None)  # ends a waiting iterator
        await self._stop_member()

    async def __aexit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self._iter_done()  # the loop finished with the message it held (break)
        await self.close()

    # -- iteration -------------------------------------------------------------------------

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> MessageExt:
        """The next message; the one handed out before counts as consumed now."""
        if self._buffer is None:
            raise RuntimeError("start the consumer first (async with consumer: ...)")
        self._iter_done()
        while True:
            if not self.started:
                raise StopAsyncIteration
            if self._iter_state is not None and self._iter_batch:
                state, gen = self._iter_state
                if self._current(state, gen):
                    msg = self._iter_batch.pop()
                    self._iter_last = msg
                    return msg
                self._iter_batch, self._iter_state = [], None  # seek, pause or rebalance
            got = await self._next_batch(None)
            if got is None:
                continue  # close() (or a wake-up): `started` decides
            state, gen, msgs = got
            self._iter_state = (state, gen)
            self._iter_batch = list(reversed(msgs))

    def _iter_done(self) -> None:
        """The message handed out last is consumed: its queue's offset moves past it."""
        msg, self._iter_last = self._iter_last, None
        if msg is None or self._iter_state is None:
            return
        state, gen = self._iter_state
        if self._current(state, gen) and msg.queue_offset >= state.consume_offset:
            state.consume_offset = msg.queue_offset + 1
            self.offset_store.update(state.mq, state.consume_offset)

    def _current(self, state: _QueueState, gen: int) -> bool:
        return gen == state.generation and self._states.get(state.mq) is state \
            and not state.paused

    async def rebalance(self) -> None:
        if not self._assigned_mode:
            await super().rebalance()

    # -- polling and offsets ---------------------------------------------------------------

    async def poll(self, timeout_s: float = 5.0) -> list[MessageExt]:
        """The next pulled batch (one queue's messages in order), or [] after ``timeout_s``."""
        self._check_started()
        got = await self._next_batch(timeout_s)
        if got is None:
            return []
        state, _gen, msgs = got
        state.consume_offset = msgs[-1].queue_offset + 1
        self.offset_store.update(state.mq, state.consume_offset)
        return msgs

    async def _next_batch(self, timeout_s: float | None
                          ) -> tuple[_QueueState, int, list[MessageExt]] | None:
        """The next still-current pulled batch; None after ``timeout_s`` or at close."""
        assert self._buffer is not None
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        while True:
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return None
            try:
                async with asyncio.timeout(left):
                    item = await self._buffer.get()
            except TimeoutError:
                return None
            if item is None:  # close()
                if self._buffer.empty():
                    self._buffer.put_nowait(None)  # for any other waiter
                return None
            state, gen, msgs = item
            state.buffered -= len(msgs)
            state.wake.set()
            if not self._current(state, gen):
                continue
            return state, gen, msgs

    async def commit(self, offsets: dict[MessageQueue, int] | None = None) -> None:
        """Store consumed offsets now (all queues, or the ``offsets`` given) and wait for it.
        Inside ``async for``, the message in hand counts as consumed from now on."""
        self._check_started()
        self._iter_done()
        if offsets:
            for mq, off in offsets.items():
                self.offset_store.update(mq, off)
                await self.offset_store.persist_one(mq)
            return
        await self._commit_states(list(self._states.values()))

    async def committed(self, mq: MessageQueue) -> int | None:
        """The offset stored for ``mq`` (broker or local file), None if none."""
        self._check_started()
        return await self.offset_store.read(mq)

    async def seek(self, mq: MessageQueue, offset: int) -> None:
        """Continue ``mq`` at ``offset``; messages buffered for it are discarded."""
        self._check_started()
        state = self._states.get(mq)
        if state is None:
            raise ValueError(f"{mq} is not assigned to this consumer")
        lo, hi = await self.api.min_offset(mq), await self.api.max_offset(mq)
        if not lo <= offset <= hi:
            raise ValueError(f"offset {offset} of {mq} outside [{lo}, {hi}]")
        state.generation += 1
        state.pull_offset = state.consume_offset = offset
        self.offset_store.update(mq, offset)
        if state.task is not None:
            state.task.cancel()
        state.task = self.tasks.spawn(self._pull_loop(state), f"pull-{mq}")

    async def seek_to_begin(self, mq: MessageQueue) -> None:
        await self.seek(mq, await self.api.min_offset(mq))

    async def seek_to_end(self, mq: MessageQueue) -> None:
        await self.seek(mq, await self.api.max_offset(mq))

    async def offset_for_timestamp(self, mq: MessageQueue, timestamp_ms: int) -> int:
        """SEARCH_OFFSET_BY_TIMESTAMP for ``mq``."""
        self._check_started()
        return await self.api.search_offset(mq, timestamp_ms)

    async def seek_to_timestamp(self, mq: MessageQueue, timestamp_ms: int) -> None:
        await self.seek(mq, await self.offset_for_timestamp(mq, timestamp_ms))

    def pause(self, mqs: list[MessageQueue]) -> None:
        for mq in mqs:
            if mq in self._states:
                self._states[mq].paused = True

    def resume(self, mqs: list[MessageQueue]) -> None:
        for mq in mqs:
            if (s := self._states.get(mq)) is not None and s.paused:
                s.paused = False
                s.generation += 1
                s.pull_offset = s.consume_offset
                if s.task is not None:
                    s.task.cancel()
                s.task = self.tasks.spawn(self._pull_loop(s), f"pull-{mq}")

    # -- internals ---------------------------------------------------------------------------

    async def _auto_commit(self) -> None:
        await self.offset_store.persist(list(self._states))

    async def _commit_states(self, states: list[_QueueState]) -> None:
        for s in states:
            self.offset_store.update(s.mq, s.consume_offset)
            try:
                await self.offset_store.persist_one(s.mq)
            except Exception as exc:  # noqa: BLE001
                log.warning("commit of %s failed: %s", s.mq, exc)

    async def _assign(self, topic: str, mqs: set[MessageQueue]) -> None:
        for mq in [m for m in self._states if m.topic == topic and m not in mqs]:
            await self._remove(mq)
        for mq in sorted(mqs - set(self._states)):
            await self._add(mq)

    async def _add(self, mq: MessageQueue) -> None:
        try:
            offset = await self.start_offset(mq, await self.offset_store.read(mq))
        except Exception as exc:  # noqa: BLE001
            log.info("no start offset for %s: %s", mq, exc)
            return
        state = _QueueState(mq, offset, offset)
        self.offset_store.update(mq, offset)
        self._states[mq] = state
        state.task = self.tasks.spawn(self._pull_loop(state), f"pull-{mq}")

    async def _remove(self, mq: MessageQueue) -> None:
        state = self._states.pop(mq)
        state.generation += 1
        if state.task is not None:
            state.task.cancel()
        if self.auto_commit:
            await self._commit_states([state])
        self.offset_store.remove(mq)

    async def _pull_loop(self, state: _QueueState) -> None:
        assert self._buffer is not None
        sub = self.subscriptions[state.mq.topic]
        gen = state.generation
        while state.generation == gen and not state.paused:
            if state.buffered >= self.pull_threshold_for_queue:
                state.wake.clear()
                try:
                    async with asyncio.timeout(1.0):
                        await state.wake.wait()
                except TimeoutError:
                    pass
                continue
            try:
                result = await self.api.pull(
                    self.group, state.mq, state.pull_offset, sub, max_nums=self.pull_batch_size,
                    sys_flag=FLAG_SUSPEND | FLAG_SUBSCRIPTION | FLAG_LITE_PULL_MESSAGE,
                    commit_offset=0, suspend_ms=self.broker_suspend_ms,
                    timeout_s=self.broker_suspend_ms / 1000 + 10)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                level = logging.WARNING if isinstance(exc, BrokerError) else logging.INFO
                log.log(level, "pull of %s failed: %s", state.mq, exc)
                await asyncio.sleep(PULL_DELAY_ON_EXCEPTION_S)
                continue
            if state.generation != gen:
                return
            state.pull_offset = result.next_begin_offset
            if result.status is PullStatus.FOUND and result.messages:
                state.buffered += len(result.messages)
                self._buffer.put_nowait((state, gen, result.messages))
            elif result.status is PullStatus.OFFSET_ILLEGAL:
                log.warning("offset of %s illegal, moving to %d", state.mq,
                            result.next_begin_offset)
