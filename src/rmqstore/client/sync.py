"""A blocking façade over the asyncio client, for code that is not async.

Each object runs its own event loop in a daemon thread and forwards every call to it; a call
blocks the caller until the coroutine finishes (at most the call's own timeout plus
CALL_MARGIN_S; then TimeoutError, and the coroutine is cancelled). Listeners of
SyncPushConsumer are plain functions; they run in the consumer's thread pool, never on the loop
thread.

Both consumers are also plain iterators (``for msg in consumer:``), with the acknowledgement
rules of their asyncio twins' ``async for``: a message is done when the loop asks for the next
one, or when ``with`` exits without an exception. ``next()`` blocks until a message comes or
the consumer is closed (from another thread, say), which ends the iteration.

::

    from rmqstore.client.sync import Producer
    with Producer("group", namesrv="127.0.0.1:9876") as p:
        p.send(Message("TopicA", b"hi"))
"""

from __future__ import annotations

import _thread
import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Self, TypeVar

from . import consumer as _consumer
from . import lite_pull as _lite
from . import producer as _producer
from . import transaction as _transaction
from .message import Message, MessageExt, MessageQueue
from .producer import SendResult

T = TypeVar("T")

CALL_MARGIN_S = 30.0  # beyond a call's own deadlines, so a stuck loop cannot hang the caller


class _Call:
    """One blocking call's hand-over to the loop: the coroutine is made a task there, and its
    end releases a plain lock the caller waits on. asyncio.run_coroutine_threadsafe's
    concurrent Future, chained to the task, and its condition variable cost a sync send about
    a sixth of its CPU (benches/sync_client.py: 104 against 88 us)."""

    __slots__ = ("_coro", "done", "_task", "_error")

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self._coro = coro
        self.done = _thread.allocate_lock()
        self.done.acquire()  # released once the call is over
        self._task: asyncio.Future[Any] | None = None
        self._error: BaseException | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the loop's thread."""
        try:
            self._task = asyncio.ensure_future(self._coro, loop=loop)
        except BaseException as exc:  # not an awaitable: the caller gets the error
            self._error = exc
            self.done.release()
            return
        self._task.add_done_callback(self._finished)

    def _finished(self, _task: asyncio.Future[Any]) -> None:
        self.done.release()

    def cancel(self) -> None:
        """On the loop's thread, after start (the loop runs callbacks in their order)."""
        if self._task is not None:
            self._task.cancel()

    def outcome(self) -> Any:
        """The coroutine's result or error; a cancelled one raises concurrent.futures'
        CancelledError, an Exception (asyncio's is a BaseException)."""
        if self._error is not None:
            raise self._error
        assert self._task is not None
        if self._task.cancelled():
            raise concurrent.futures.CancelledError()
        return self._task.result()


class _LoopThread:
    """An event loop running forever in a daemon thread."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float | None = None) -> T:
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("blocking call from the client's own loop thread (a listener?)")
        call = _Call(coro)
        self.loop.call_soon_threadsafe(call.start, self.loop)
        if not call.done.acquire(timeout=-1 if timeout_s is None else timeout_s + CALL_MARGIN_S):
            self.loop.call_soon_threadsafe(call.cancel)
            raise TimeoutError(f"the client's loop did not finish the call within "
                               f"{timeout_s + CALL_MARGIN_S:.0f} s")
        return call.outcome()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self.loop.close()


async def _make(factory: Callable[[], T]) -> T:
    return factory()


def _next(rt: _LoopThread, aiter: Any) -> MessageExt:
    try:
        return rt.run(aiter.__anext__())
    except StopAsyncIteration:
        raise StopIteration from None


class _Blocking:
    """Start, close and `with` for a client object living on its own loop thread. Subclasses
    set _rt, the client (_target) and how long closing may take (_close_s)."""

    _rt: _LoopThread
    _target: Any
    _close_s: float = 30

    def start(self) -> None:
        self._rt.run(self._target.start(), 30)

    def close(self) -> None:
        try:
            self._rt.run(self._target.close(), self._close_s)
        finally:
            self._rt.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        """Consumers settle the message in hand (acked on a normal exit) via __aexit__."""
        aexit = getattr(self._target, "__aexit__", None)
        if aexit is None:
            self.close()
            return
        try:
            self._rt.run(aexit(exc_type, None, None), self._close_s)
        finally:
            self._rt.stop()


class Producer(_Blocking):
    """Blocking twin of rmqstore.client.Producer (same arguments)."""

    def __init__(self, group: str, namesrv: str | None = None, **kwargs: Any) -> None:
        self._rt = _LoopThread(f"rmq-producer-{group}")
        self._p = self._target = self._rt.run(
            _make(lambda: _producer.Producer(group, namesrv, **kwargs)))

    @property
    def client_id(self) -> str:
        return self._p.client_id

    def send(self, msg: Message, **kwargs: Any) -> SendResult:
        """See Producer.send (queue=, selector=, arg=, sharding_key=, timeout_s=)."""
        return self._rt.run(self._p.send(msg, **kwargs), self._p.send_timeout_s)

    def send_oneway(self, msg: Message, **kwargs: Any) -> None:
        self._rt.run(self._p.send_oneway(msg, **kwargs), self._p.send_timeout_s)

    def send_batch(self, msgs: Sequence[Message], **kwargs: Any) -> SendResult:
        return self._rt.run(self._p.send_batch(msgs, **kwargs), self._p.send_timeout_s)

    def create_topic(self, topic: str, queue_nums: int = 4, **kwargs: Any) -> None:
        self._rt.run(self._p.create_topic(topic, queue_nums, **kwargs), 30)

    def publish_queues(self, topic: str) -> list[MessageQueue]:
        return self._rt.run(self._p.publish_queues(topic), 30)


class TransactionProducer(Producer):
    """Blocking twin of rmqstore.client.TransactionProducer; the listener's methods are plain
    functions, run in worker threads (never on the client's loop thread)."""

    def __init__(self, group: str, namesrv: str | None = None, **kwargs: Any) -> None:
        self._rt = _LoopThread(f"rmq-tx-producer-{group}")
        self._p = self._target = self._rt.run(
            _make(lambda: _transaction.TransactionProducer(group, namesrv, **kwargs)))

    def send_in_transaction(self, msg: Message, arg: Any = None,
                            **kwargs: Any) -> _transaction.TransactionSendResult:
        """See TransactionProducer.send_in_transaction; waits for the local transaction."""
        return self._rt.run(self._p.send_in_transaction(msg, arg, **kwargs))


class PushConsumer(_Blocking):
    """Blocking twin of rmqstore.client.PushConsumer; listeners are plain functions."""

    def __init__(self, group: str, namesrv: str | None = None, **kwargs: Any) -> None:
        self._rt = _LoopThread(f"rmq-push-{group}")
        self._c = self._target = self._rt.run(
            _make(lambda: _consumer.PushConsumer(group, namesrv, **kwargs)))
        self._close_s = 30 + self._c.await_termination_s

    @property
    def client_id(self) -> str:
        return self._c.client_id

    def subscribe(self, topic: str, expression: str = "*", expression_type: str = "TAG") -> None:
        self._c.subscribe(topic, expression, expression_type)

    def on_message(self, listener: Callable[[list[MessageExt]], Any]) -> None:
        self._c.on_message(listener)

    def on_message_orderly(self, listener: Callable[[list[MessageExt]], Any]) -> None:
        self._c.on_message_orderly(listener)

    def use_iterator(self, *, orderly: bool = False) -> None:
        """``for msg in consumer`` (the default without a listener); see the asyncio twin."""
        self._c.use_iterator(orderly=orderly)

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> MessageExt:
        return _next(self._rt, self._c)

    def ack(self, msg: MessageExt) -> None:
        self._rt.run(_make(lambda: self._c.ack(msg)), 30)

    def reconsume_later(self, msg: MessageExt) -> None:
        self._rt.run(_make(lambda: self._c.reconsume_later(msg)), 30)


class LitePullConsumer(_Blocking):
    """Blocking twin of rmqstore.client.LitePullConsumer."""

    def __init__(self, group: str, namesrv: str | None = None, **kwargs: Any) -> None:
        self._rt = _LoopThread(f"rmq-lite-{group}")
        self._c = self._target = self._rt.run(
            _make(lambda: _lite.LitePullConsumer(group, namesrv, **kwargs)))

    def subscribe(self, topic: str, expression: str = "*", expression_type: str = "TAG") -> None:
        self._c.subscribe(topic, expression, expression_type)

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> MessageExt:
        return _next(self._rt, self._c)

    def assign(self, mqs: list[MessageQueue]) -> None:
        self._rt.run(self._c.assign(mqs), 30)

    def fetch_message_queues(self, topic: str) -> list[MessageQueue]:
        return self._rt.run(self._c.fetch_message_queues(topic), 30)

    def poll(self, timeout_s: float = 5.0) -> list[MessageExt]:
        return self._rt.run(self._c.poll(timeout_s), timeout_s)

    def commit(self, offsets: dict[MessageQueue, int] | None = None) -> None:
        self._rt.run(self._c.commit(offsets), 30)

    def committed(self, mq: MessageQueue) -> int | None:
        return self._rt.run(self._c.committed(mq), 30)

    def seek(self, mq: MessageQueue, offset: int) -> None:
        self._rt.run(self._c.seek(mq, offset), 30)

    def seek_to_timestamp(self, mq: MessageQueue, timestamp_ms: int) -> None:
        self._rt.run(self._c.seek_to_timestamp(mq, timestamp_ms), 30)
