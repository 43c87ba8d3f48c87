"""TimerService: delivery at any time, over a MessageStore (RocketMQ 5's TimerMessageStore).

A timer message is stored first in the system topic rmq_sys_wheel_timer (queue 0) with
properties TIMER_OUT_MS (deliver time, epoch ms), REAL_TOPIC and REAL_QID. Each tick:

1. enqueue: read that consume queue from the persisted offset and file each new message in
   the TimerSchedule (TimerEnqueueGetService + TimerEnqueuePutService);
2. dequeue: for each due slot, read its entries only, and re-put each message into its real
   topic/queue with REAL_TOPIC and REAL_QID removed and TIMER_DEQUEUE_MS added, the other
   properties kept, as TimerMessageStore.convertMessage does (TimerDequeueGet/PutMessageService);
   entries marked roll are re-put into rmq_sys_wheel_timer with TIMER_ROLL_TIMES + 1;
3. every flush_interval_ms: make the commit log durable, then the timer files, then the
   checkpoint (TimerFlushService).

Delivery guarantee: each message once in normal operation and across clean restarts; after a
crash, messages delivered or rolled since the last checkpoint (flush_interval_ms) may be
delivered again: at-least-once. A message due while the store was closed is delivered by the
first tick after it reopens. Deliver times are kept to the millisecond (unlike RocketMQ 5,
which rounds them down to its precision and so may deliver early): never early, and late by
at most precision_ms + tick_interval_ms when the service keeps up.

A timer message that cannot be processed (no REAL_TOPIC, a queue its topic does not have, a
system topic, a body flagged compressed that does not inflate, a bad TIMER_ROLL_TIMES) is set
aside in rmq_sys_set_aside (set_aside.py), logged and counted, and the wheel goes on; store
errors (disk full, closed) fail the tick, which retries from that message.

Threads: tick(), persist() and close() serialize on one lock, so the thread runner, the
asyncio runner and a test's injected clock (tick(now_ms)) all drive the same core. put() only
writes the store and may be called from any thread.

    with open_store(path) as store:
        timers = TimerService(store)
        timers.start()                       # or: await timers.run() on an event loop
        timers.put("orders", b"...", delay_ms=1500)
        ...
        timers.close()                       # before the store closes
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

from ..message import GetStatus, Message, PutResult
from ..options import PutOptions, RecordInput, put_options
from ..record import check_topic
from ..set_aside import TRANSIENT, SetAside
from ..store import MessageStore
from ..topic_validator import TIMER_TOPIC, is_not_allowed_send
from ..wakeup import Wakeup
from .slots import DUE, ROLLED, TimerConfig, TimerSchedule

log = logging.getLogger(__name__)

PROP_REAL_TOPIC = "REAL_TOPIC"
PROP_REAL_QID = "REAL_QID"
PROP_TIMER_OUT_MS = "TIMER_OUT_MS"
PROP_TIMER_DEQUEUE_MS = "TIMER_DEQUEUE_MS"
PROP_TIMER_ROLL_TIMES = "TIMER_ROLL_TIMES"

IDLE_PERSIST_MS = 60_000
# An idle runner's longest sleep, and how far it looks ahead for a filled slot: a timer
# message stored by a path that does not call wake() is still filed within this.
IDLE_WAIT_MAX_MS = 2_000


SERVICE = "timer"  # its name for MessageStore.leads


def _wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class TickResult:
    enqueued: int = 0
    delivered: int = 0
    rolled: int = 0
    queues: set[tuple[str, int]] = field(default_factory=set)  # (topic, queue id) delivered to


class TimerService:
    def __init__(self, store: MessageStore, config: TimerConfig | None = None, *,
                 clock: Callable[[], int] = _wall_ms) -> None:
        """clock() returns epoch ms; tests inject one and pass now_ms to tick()."""
        self.store = store
        self.config = config = config or TimerConfig()
        self._clock = clock
        self._lock = threading.Lock()
        # The timer files, opened by the process that runs the timer (all of them unless the
        # store is shared: then one at a time, and another opens them when it takes over).
        self.schedule: TimerSchedule | None = None
        self._enqueue_offset = 0
        self._handled: set[int] = set()  # timer-log offsets handled in the current slot
        self._last_persist_ms = clock()
        self._dirty = False  # anything filed, delivered or rolled since the last persist
        self._thread: _TickThread | None = None
        self._closed = False
        self._wakeup = Wakeup()  # the runners sleep on it while idle
        self.set_aside = SetAside(store, "timer")
        self._leading(clock())

    def _leading(self, now: int) -> bool:
        """Whether this process runs the timer; the one taking over opens the timer files as
        the last one left them (not closed cleanly: the wheel is rebuilt from the log)."""
        if not self.store.leads(SERVICE):
            return False
        if self.schedule is None:
            self.schedule = TimerSchedule(self.store.root, self.config, now)
            self._enqueue_offset = self.schedule.enqueue_offset
            self._handled = set()
        return True

    # -- the embedded API -----------------------------------------------------------------
    def put(self, topic: str, body: bytes, *, deliver_at_ms: int | None = None,
            delay_ms: int | None = None, queue_id: int | None = None,
            options: PutOptions | None = None, **fields: Any) -> PutResult:
        """Store a message for delivery into topic at deliver_at_ms (epoch ms) or after
        delay_ms; ``options``, or keyword arguments naming PutOptions fields, are the
        message's as MessageStore.put takes them. A time already passed is stored into topic
        at once. Raises ValueError for a time beyond max_delay_ms."""
        if (deliver_at_ms is None) == (delay_ms is None):
            raise ValueError("give exactly one of deliver_at_ms and delay_ms")
        check_topic(topic)
        opts = put_options(options, fields)
        now = self._clock()
        deliver = now + delay_ms if delay_ms is not None else deliver_at_ms
        if deliver - now > self.config.max_delay_ms:
            raise ValueError(f"deliver time is {deliver - now} ms ahead; the limit is "
                             f"{self.config.max_delay_ms} ms (max_delay_ms)")
        if queue_id is not None:
            self.store.check_queue(topic, queue_id)  # refused now, not when it falls due
        if deliver <= now:
            return self.store.put(topic, body, queue_id=queue_id, options=opts)
        props = dict(opts.properties or {})
        props[PROP_TIMER_OUT_MS] = str(deliver)
        props[PROP_REAL_TOPIC] = topic
        if queue_id is not None:
            props[PROP_REAL_QID] = str(queue_id)
        result = self.store.put(TIMER_TOPIC, body, queue_id=0,
                                options=opts._replace(properties=props))
        self.wake()
        return result

    def wake(self) -> None:
        """A timer message was stored: a runner sleeping until its next due slot looks now.
        Any thread; the broker calls it from its send path."""
        self._wakeup.set()

    # -- the core -------------------------------------------------------------------------
    def tick(self, now_ms: int | None = None) -> TickResult:
        """File new timer messages, deliver the due slots, persist when it is time."""
        with self._lock:
            now = self._clock() if now_ms is None else now_ms
            if self._closed or not self._leading(now):
                return TickResult()
            result = TickResult()
            self._enqueue(now, result)
            self._dequeue(now, result)
            self._dirty = self._dirty or bool(result.enqueued or result.delivered or result.rolled)
            since = now - self._last_persist_ms
            # An idle timer persists rarely: passing empty slots costs little to redo.
            if since >= self.config.flush_interval_ms and (self._dirty or since >= IDLE_PERSIST_MS):
                self._persist(now)
            return result

    def idle_tick(self, now_ms: int | None = None) -> bool:
        """The tick of an idle timer, cheap enough for the event loop: True when nothing new
        waits in the timer topic, nothing is due to persist and every due slot is empty (then
        it moves past those slots); False when a full tick() is needed. The asyncio runner
        calls it first, so an idle broker does not send a tick to a worker thread 100 times
        a second."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            if self._closed:
                return True
            if self.schedule is None:
                return False  # a tick() tries to take the timer over
            now = self._clock() if now_ms is None else now_ms
            if self.store.max_offset(TIMER_TOPIC, 0) != self._enqueue_offset:
                return False
            since = now - self._last_persist_ms
            if since >= self.config.flush_interval_ms and (self._dirty or since >= IDLE_PERSIST_MS):
                return False
            schedule = self.schedule
            for _ in range(self.config.max_slots_per_tick):
                records = schedule.due_slot(now)
                if records is None:
                    return True
                if records:
                    return False
                schedule.slot_done()
            return False
        finally:
            self._lock.release()

    def idle_wait_ms(self, now_ms: int | None = None) -> int:
        """How long a timer idle_tick() found idle may sleep: until its next filled slot falls
        due or its progress is due to persist, IDLE_WAIT_MAX_MS at most. wake() cuts it short
        when a timer message is stored meanwhile."""
        tick_ms = self.config.tick_interval_ms
        if not self._lock.acquire(blocking=False):
            return tick_ms
        try:
            if self._closed or self.schedule is None:
                return tick_ms
            now = self._clock() if now_ms is None else now_ms
            flush_ms = self.config.flush_interval_ms
            persist_at = self._last_persist_ms + (
                flush_ms if self._dirty else max(flush_ms, IDLE_PERSIST_MS))
            # Another process's put to a shared store rings nothing here: poll as before.
            limit = tick_ms if self.store.config.shared else IDLE_WAIT_MAX_MS
            due = self.schedule.next_due_ms(min(persist_at, now + limit))
            return max(1, due - now + 1)  # + 1: a timer may fire a little early
        finally:
            self._lock.release()

    def _enqueue(self, now: int, result: TickResult) -> None:
        budget = self.config.enqueue_batch
        while budget > 0:
            got = self.store.get(TIMER_TOPIC, 0, self._enqueue_offset, min(budget, 512))
            if got.status == GetStatus.OFFSET_TOO_SMALL:
                log.error("timer queue offsets %d..%d were deleted before being filed",
                          self._enqueue_offset, got.next_offset)
                self._enqueue_offset = got.next_offset
                continue
            if got.status == GetStatus.OFFSET_OVERFLOW_BADLY:  # the queue lost its tail
                log.error("timer queue ends at %d, before the filed offset %d; filing from there",
                          got.max_offset, self._enqueue_offset)
                self._enqueue_offset = got.max_offset
                return
            if got.next_offset <= self._enqueue_offset:
                return
            for m in got.messages:
                self._guarded(self._file, m, now, result)
                self._enqueue_offset = m.queue_offset + 1  # a put failing retries from here
            budget -= max(1, len(got.messages))
            self._enqueue_offset = got.next_offset

    def _file(self, m: Message, now: int, result: TickResult) -> None:
        props = m.properties
        if PROP_REAL_TOPIC not in props:
            raise ValueError("no REAL_TOPIC")
        result.enqueued += 1
        try:
            deliver = int(props.get(PROP_TIMER_OUT_MS, ""))
        except ValueError:
            log.warning("timer message at %d has TIMER_OUT_MS=%r; delivered now",
                        m.commitlog_offset, props.get(PROP_TIMER_OUT_MS))
            self._deliver(m, props, now, result)
            return
        outcome = self.schedule.add(deliver, m.commitlog_offset, m.size)
        if outcome == DUE:
            self._deliver(m, props, now, result)
        elif outcome == ROLLED:
            log.debug("timer message at %d due %d: beyond the window, rolled", m.commitlog_offset,
                      deliver)

    def _dequeue(self, now: int, result: TickResult) -> None:
        for _ in range(self.config.max_slots_per_tick):
            records = self.schedule.due_slot(now)
            if records is None:
                return
            rolled = result.rolled
            for rec in records:
                if rec.pos not in self._handled:
                    m = self.store.get_by_commitlog_offset(rec.cl_offset)
                    if m is None or m.topic != TIMER_TOPIC:
                        log.error("timer message at commit-log offset %d is gone (retention?); "
                                  "not delivered", rec.cl_offset)
                    else:
                        self._guarded(self._handle, m, rec.roll, now, result)
                    self._handled.add(rec.pos)  # a put failing above retries this one only
            self._handled.clear()
            self.schedule.slot_done()
            if result.rolled != rolled:
                # File the rolled copies before the next slot: one may be due in it.
                self._enqueue(now, result)

    def _guarded(self, step: Callable[..., None], m: Message, *args: Any) -> None:
        """step(m, ...); a message it cannot process is set aside (rmq_sys_set_aside) and
        the wheel goes on; a store error propagates, and the tick retries from m."""
        try:
            step(m, *args)
        except TRANSIENT:
            raise
        except Exception as exc:  # noqa: BLE001 - no message may stop the wheel
            self.set_aside.put(m, f"{type(exc).__name__}: {exc}")

    def _handle(self, m: Message, roll: bool, now: int, result: TickResult) -> None:
        props = m.properties
        if roll:
            props[PROP_TIMER_ROLL_TIMES] = str(int(props.get(PROP_TIMER_ROLL_TIMES, "0")) + 1)
            self._reput(m, TIMER_TOPIC, 0, props)
            result.rolled += 1
        else:
            self._deliver(m, props, now, result)

    def _deliver(self, m: Message, props: dict[str, str], now: int, result: TickResult) -> None:
        topic = props.pop(PROP_REAL_TOPIC)
        qid_text = props.pop(PROP_REAL_QID, None)
        props[PROP_TIMER_DEQUEUE_MS] = str(now)
        if is_not_allowed_send(topic):
            raise ValueError(f"REAL_TOPIC {topic!r} is a system topic")
        queue_id = int(qid_text) if qid_text is not None else None
        stored = self._reput(m, topic, queue_id, props)
        result.delivered += 1
        result.queues.add((topic, stored.queue_id))

    def _reput(self, m: Message, topic: str, queue_id: int | None,
               props: dict[str, str]) -> PutResult:
        # The stored bytes and flags as they are (a compressed body stays compressed);
        # durability comes with the next persist, not per message.
        return self.store.put_record(topic, bytes(m.body_view), queue_id,
                                     RecordInput.copy_of(m, props)).result

    # -- durability -----------------------------------------------------------------------
    def persist(self) -> None:
        """Make progress durable now (the runners do it every flush_interval_ms)."""
        with self._lock:
            if not self._closed:
                self._persist(self._clock())

    def _persist(self, now: int) -> None:
        self._last_persist_ms = now
        self._dirty = False
        if not self.store.wait_durable(self.store.commitlog.max_offset):
            log.warning("commit log not durable in time; timer progress not persisted")
            self._dirty = True
            return
        self.schedule.persist(self._enqueue_offset)

    @property
    def enqueue_offset(self) -> int:
        """Next rmq_sys_wheel_timer queue offset to file: everything before it is filed."""
        return self._enqueue_offset

    @property
    def pending_slots(self) -> int:
        return 0 if self.schedule is None else self.schedule.pending_slots(self._clock())

    # -- runners --------------------------------------------------------------------------
    def start(self) -> None:
        """Tick on a background thread (embedded use), as run() does."""
        if self._thread is None:
            self._thread = _TickThread(self)
            self._thread.start()

    async def run(self, on_delivered: Callable[[set[tuple[str, int]]], None] | None = None) -> None:
        """Tick until cancelled, each tick on a worker thread so the loop stays free;
        on_delivered gets the queues delivered to (on the loop). Busy, it ticks every
        tick_interval_ms; idle, it sleeps until the next filled slot is due (idle_wait_ms)
        or wake() says a timer message was stored."""
        loop = asyncio.get_running_loop()
        interval = self.config.tick_interval_ms / 1000
        while not self._closed:
            if self.idle_tick():
                await self._wakeup.wait_async(self.idle_wait_ms() / 1000)
                continue
            try:
                result = await loop.run_in_executor(None, self.tick)
            except Exception:
                log.exception("timer tick failed; retrying")
                await asyncio.sleep(min(1.0, interval * 10))
                continue
            if result.queues and on_delivered is not None:
                on_delivered(result.queues)
            if not (result.delivered or result.rolled) or self.pending_slots == 0:
                await asyncio.sleep(interval)

    def close(self) -> None:
        """Stop the thread runner, persist and close the timer files (the store stays open).
        Call before closing the store. Idempotent."""
        if self._thread is not None:
            self._thread.stop()
            self._thread = None
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self.schedule is None:  # another process runs the timer
                return
            if not self.store.wait_durable(self.store.commitlog.max_offset):
                log.warning("commit log not durable at timer close; it reopens as after a crash")
                self.schedule.abandon()
            else:
                self.schedule.close(self._enqueue_offset)
            self.store.resign(SERVICE)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _TickThread(threading.Thread):
    def __init__(self, service: TimerService) -> None:
        super().__init__(name="rmq-timer", daemon=True)
        self._service = service
        self._stopping = threading.Event()

    def run(self) -> None:
        service, wakeup = self._service, self._service._wakeup
        interval = service.config.tick_interval_ms / 1000
        while not self._stopping.is_set():
            if service.idle_tick():
                wakeup.wait(service.idle_wait_ms() / 1000)
                continue
            try:
                result = service.tick()
                busy = (result.delivered or result.rolled) and service.pending_slots
            except Exception:
                log.exception("timer tick failed; retrying")
                busy = False
                self._stopping.wait(interval * 10)
            if not busy:
                self._stopping.wait(interval)

    def stop(self) -> None:
        self._stopping.set()
        self._service.wake()
        self.join()
