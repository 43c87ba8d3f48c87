"""Delay levels: RocketMQ 4.x's ScheduleMessageService over a MessageStore.

A message sent with delay level L (1..max) is stored first in SCHEDULE_TOPIC_XXXX, queue L-1,
with properties REAL_TOPIC / REAL_QID naming where it belongs (DELAY is kept, clamped to the
ladder). Its consume-queue unit holds the *delivery time* (store time + the level's delay, epoch
ms) in the tags-code field, as CommitLog.checkMessageAndReturnSize writes it in 4.x (the native
append computes it, as a replica's dispatch does). Each level is a
FIFO with one delay, so delivery walks each queue from its progress offset and stops at the
first message not yet due. A due message is stored again in its real topic and queue with the
same body, flag, sysflag, born time/host, reconsume times and properties minus DELAY (REAL_TOPIC
and REAL_QID stay, as in ScheduleMessageService.messageTimeup), then the progress moves on.

Due time. The authority is the message's store time + the level's current delay (4.x's
computeDeliverTimestamp). The unit's tags code is not trusted on read: the store's recovery
re-dispatch writes a tag hash there for units it rebuilds, and a ladder can change between runs.

Progress (the next queue offset to examine per level) persists in config/delayOffset.json in
RocketMQ's shape, fastjson's bare integer keys: {"offsetTable":{1:12,3:0}}. It is written after
every tick that delivered something, once the re-stored messages are durable (sync flush), and at
stop. Delivery is at least once: a crash between a re-put and that write delivers those messages
again on restart; a clean stop/start delivers nothing twice. A message that fell due while the
process was down is delivered on the first tick after it comes back.

A due message that cannot be delivered (no REAL_TOPIC, a REAL_QID that is none of the topic's
queues, a system topic, a body flagged compressed that does not inflate) is set aside in
rmq_sys_set_aside (set_aside.py), logged and counted, and its level goes on: RocketMQ's loop
would retry it forever, or drop it. Store errors (disk full, closed) stop the tick instead and
the message is tried again.

Embedded use is an explicit service rather than a ``delay_level`` keyword on MessageStore.put:
put stays a plain append with no background thread behind it, the store keeps one lifecycle, and
the broker drives the same service from its event loop (run()) while embedded users call start()
(a thread) or tick() themselves:

    sched = ScheduleService(store, "1s 5s 10s")
    sched.start()
    sched.put_delayed("orders", b"later", 2)   # in "orders" about 5 s from now
    ...
    sched.stop()                                # persists progress; then store.close()
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from .delay_ladder import (  # noqa: F401 - the ladder's names, exported here as before
    DEFAULT_DELAY_LEVELS,
    PROP_DELAY,
    parse_delay_levels,
)
from .filenames import config_file
from .message import GetStatus, Message, PendingPut
from .metadata import read_json, write_json
from .options import PutOptions, RecordInput, put_options
from .record import (
    SYSFLAG_TX_MASK,
    SYSFLAG_TX_PREPARED,
    SYSFLAG_TX_ROLLBACK,
    check_topic,
)
from .set_aside import TRANSIENT, SetAside
from .store import MessageStore
from .topic_validator import SCHEDULE_TOPIC, is_not_allowed_send
from .wakeup import Wakeup

log = logging.getLogger(__name__)

PROP_REAL_TOPIC = "REAL_TOPIC"
PROP_REAL_QID = "REAL_QID"
FILE_NAME = "delayOffset.json"
BATCH = 32  # messages read per level per get
MAX_PER_TICK = 1024  # bounds one tick's work; the rest goes on the next tick at once
# The longest sleep between looks: puts through put_delayed_record and, in the broker, the send
# path's notify ring wake() (RocketMQ polls every 100 ms, DELAY_FOR_A_WHILE).
IDLE_S = 2.0
SHARED_IDLE_S = 0.1  # a shared store: another process's put rings nothing here


SERVICE = "delay-levels"  # its name for MessageStore.leads


def _now_ms() -> int:
    return int(time.time() * 1000)


class ScheduleService:
    """Owns SCHEDULE_TOPIC_XXXX's delivery and config/delayOffset.json for one store.

    deliver_due/tick/persist/close serialize on one lock, so any thread may call them; run()
    (asyncio) and start() (a thread) are the two runners; use one of them, or neither."""

    def __init__(self, store: MessageStore, levels: str | Sequence[int] = DEFAULT_DELAY_LEVELS,
                 *, clock: Callable[[], int] = _now_ms) -> None:
        self.store = store
        self.delays_ms = parse_delay_levels(levels) if isinstance(levels, str) else tuple(levels)
        if not self.delays_ms or min(self.delays_ms) < 0:
            raise ValueError("delay levels must be a non-empty list of delays >= 0 ms")
        store.set_delay_ladder(self.delays_ms)
        self.path = config_file(store.root, FILE_NAME)
        cfg = store.topics.get(SCHEDULE_TOPIC)
        if cfg is None or cfg.write_queue_nums < self.max_level:
            # One queue per level (SCHEDULE_TOPIC_QUEUE_NUM), grown with a longer ladder.
            store.create_topic(SCHEDULE_TOPIC, self.max_level)
        self._clock = clock
        self.set_aside = SetAside(store, "delay-levels")
        self._lock = threading.Lock()
        self._offsets: dict[int, int] = {}
        self._dirty = False
        self._closed = False
        self._round_robin: dict[str, int] = {}
        self.next_due_ms: int | None = None  # the earliest head not yet due, after a tick
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()  # stop(): the thread runner ends
        self._wakeup = Wakeup()  # the runners sleep on it until the next head is due
        self._led = False  # whether progress was loaded since this process leads delivery
        self._load()

    @property
    def max_level(self) -> int:
        return len(self.delays_ms)

    @property
    def offsets(self) -> dict[int, int]:
        """Level -> next queue offset to examine in queue level-1 (a copy)."""
        with self._lock:
            return dict(self._offsets)

    def _load(self) -> None:
        data = read_json(self.path) or {}
        table = data.get("offsetTable") or {}
        try:
            self._offsets = {int(level): int(off) for level, off in table.items()}
        except (TypeError, ValueError, AttributeError):
            raise ValueError(f"{self.path}: offsetTable must map delay levels to queue "
                             f"offsets, not {table!r}") from None

    # -- scheduling ---------------------------------------------------------------------
    def clamp_level(self, level: int) -> int:
        """Levels past the ladder's end are its last level (CommitLog.putMessage)."""
        return min(level, self.max_level)

    def schedule(self, topic: str, queue_id: int, level: int,
                 properties: dict[str, str]) -> tuple[str, int, int]:
        """Where a message of (topic, queue_id) with delay level >= 1 is stored instead:
        (SCHEDULE_TOPIC_XXXX, level-1, delivery time ms for the unit's tags code). Sets
        DELAY (clamped), REAL_TOPIC and REAL_QID in properties."""
        if level < 1:
            raise ValueError(f"delay level must be >= 1, not {level}")
        level = self.clamp_level(level)
        properties[PROP_DELAY] = str(level)
        properties[PROP_REAL_TOPIC] = topic
        properties[PROP_REAL_QID] = str(queue_id)
        return SCHEDULE_TOPIC, level - 1, self._clock() + self.delays_ms[level - 1]

    def put_delayed(self, topic: str, body: bytes, delay_level: int, *,
                    queue_id: int | None = None, options: PutOptions | None = None,
                    **fields: Any) -> PendingPut:
        """Store body for delivery to (topic, queue_id) after the level's delay. queue_id
        None takes the topic's write queues in turn. ``options``, or keyword arguments naming
        PutOptions fields (tags, keys, properties, flag, ...), are the message's as put()
        takes them. Returns the pending put of the message in SCHEDULE_TOPIC_XXXX."""
        record = put_options(options, fields).record()
        return self.put_delayed_record(topic, body, delay_level, queue_id, record)

    def put_delayed_record(self, topic: str, body: bytes, delay_level: int,
                           queue_id: int | None, record: RecordInput) -> PendingPut:
        """put_delayed of a message the broker holds as a RecordInput (a retry handed back:
        the producer's address and sysflag kept). ``record``'s properties gain DELAY,
        REAL_TOPIC and REAL_QID, its tags code becomes the delivery time."""
        check_topic(topic)
        if queue_id is None:
            queue_id = self._next_queue(topic)
        self.store.check_queue(topic, queue_id)  # refused now, not when it falls due
        sched_topic, sched_qid, deliver_ms = self.schedule(topic, queue_id, delay_level,
                                                           record.properties)
        record.encoded = None
        record.tags_code = deliver_ms
        pending = self.store.put_record(sched_topic, body, sched_qid, record)
        self.wake()
        return pending

    def wake(self) -> None:
        """A delayed message was stored: a runner sleeping until the next head is due looks
        now, as it may come due sooner (any thread)."""
        self._wakeup.set()

    def _next_queue(self, topic: str) -> int:
        cfg = self.store.topics.get(topic)
        n = cfg.write_queue_nums if cfg else self.store.config.default_queue_nums
        i = self._round_robin.get(topic, -1) + 1
        self._round_robin[topic] = i
        return i % max(n, 1)

    # -- delivery -----------------------------------------------------------------------
    def tick(self, now_ms: int | None = None) -> int:
        """Deliver every message due at now_ms (default: the clock); returns how many."""
        return len(self.deliver_due(now_ms))

    def deliver_due(self, now_ms: int | None = None) -> list[tuple[str, int]]:
        """Deliver what is due; returns the (topic, queue_id) of each delivered message, in
        order, so a broker can wake pulls held on them. Persists progress if it moved."""
        with self._lock:
            if self._closed or not self._leading():
                return []
            now = self._clock() if now_ms is None else now_ms
            delivered: list[tuple[str, int]] = []
            pendings: list[PendingPut] = []
            next_due = None
            try:
                for level in range(1, self.max_level + 1):
                    due = self._deliver_level(level, now, delivered, pendings)
                    if due is not None and (next_due is None or due < next_due):
                        next_due = due
            finally:  # a store error part-way still records what was delivered before it
                self.next_due_ms = next_due
                if pendings and self.store.config.flush == "sync":
                    pendings[-1].wait()  # offsets only grow: the last covers the others
                if self._dirty:
                    self._persist_locked()
            return delivered

    def _leading(self) -> bool:
        """Whether this process delivers: in a store several processes share, one at a time
        does; the one that takes over starts from the progress the last one persisted."""
        if not self.store.leads(SERVICE):
            self._led = False
            return False
        if not self._led:
            self._led = True
            self._load()
        return True

    def _deliver_level(self, level: int, now: int, delivered: list[tuple[str, int]],
                       pendings: list[PendingPut]) -> int | None:
        """Walk queue level-1 from its progress; returns the first head not yet due (ms)."""
        store, qid, delay = self.store, level - 1, self.delays_ms[level - 1]
        offset = self._offsets.get(level, 0)
        # correctDelayOffset: progress outside the queue (retention, a wiped store) is clamped.
        lo, hi = store.min_offset(SCHEDULE_TOPIC, qid), store.max_offset(SCHEDULE_TOPIC, qid)
        clamped = min(max(offset, lo), hi)
        if clamped != offset:
            if offset or clamped:
                log.warning("delay level %d: progress %d outside [%d, %d]; using %d",
                            level, offset, lo, hi, clamped)
            offset = clamped
            self._set_offset(level, offset)
        want = 1  # the head alone says whether anything is due: read more only then
        while offset < hi and len(delivered) < MAX_PER_TICK:
            got = store.get(SCHEDULE_TOPIC, qid, offset, want)
            want = BATCH
            if not got.messages:
                if got.status is GetStatus.MESSAGE_WAS_REMOVING or got.next_offset > offset:
                    self._set_offset(level, max(got.next_offset, offset + 1))
                    offset = self._offsets[level]
                    continue
                return None
            for msg in got.messages:
                due = msg.store_timestamp + delay
                if due > now:
                    return due
                try:
                    topic, pending = self._redeliver(msg)
                    delivered.append((topic, pending.result.queue_id))
                except TRANSIENT:
                    raise  # the store's trouble, not the message's: retried from here
                except Exception as exc:  # noqa: BLE001 - no record may stop its level
                    pending = self.set_aside.put(msg, f"{type(exc).__name__}: {exc}")
                if pending is not None:
                    pendings.append(pending)
                offset = msg.queue_offset + 1
                self._set_offset(level, offset)
                if len(delivered) >= MAX_PER_TICK:
                    return now
        return None

    def _set_offset(self, level: int, offset: int) -> None:
        self._offsets[level] = offset
        self._dirty = True

    def _redeliver(self, msg: Message) -> tuple[str, PendingPut]:
        """messageTimeup: the message as stored again in its real topic. Raises for one that
        cannot be delivered (no REAL_TOPIC, a REAL_QID that is none of its queues, a system
        topic, a body that does not inflate...): the caller sets it aside."""
        props = msg.properties
        topic = props.get(PROP_REAL_TOPIC)
        queue_id = int(props.get(PROP_REAL_QID, ""))
        tx = msg.sysflag & SYSFLAG_TX_MASK
        if not topic or is_not_allowed_send(topic) or \
                tx in (SYSFLAG_TX_PREPARED, SYSFLAG_TX_ROLLBACK):
            raise ValueError(f"no deliverable REAL_TOPIC ({topic!r}) or transaction type {tx}")
        props.pop(PROP_DELAY, None)
        return topic, self.store.put_record(topic, bytes(msg.body_view), queue_id,
                                            RecordInput.copy_of(msg, props))

    # -- progress -----------------------------------------------------------------------
    def persist(self) -> None:
        """Write config/delayOffset.json if the progress moved (atomic replace)."""
        with self._lock:
            if self._dirty:
                self._persist_locked()

    def adopt(self, offsets: dict[int, int]) -> None:
        """A slave takes its master's delivery progress and persists it
        (SlaveSynchronize.syncDelayOffset), so that it delivers from there if it is ever
        started as a master."""
        with self._lock:
            self._offsets = {int(level): int(off) for level, off in offsets.items()}
            self._persist_locked()

    def _persist_locked(self) -> None:
        write_json(self.path, {"offsetTable": dict(sorted(self._offsets.items()))})
        self._dirty = False

    def close(self) -> None:
        """Persist and deliver no more (idempotent). Call before closing the store."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._dirty:
                self._persist_locked()
            if self._led:
                self.store.resign(SERVICE)

    def _sleep_s(self, delivered_max: bool) -> float:
        if delivered_max:
            return 0.0
        idle_s = SHARED_IDLE_S if self.store.config.shared else IDLE_S
        if self.next_due_ms is None:
            return idle_s
        return min(idle_s, max(0.005, (self.next_due_ms - self._clock()) / 1000))

    # -- runners ------------------------------------------------------------------------
    async def run(self, on_delivered: Callable[[str, int], None]) -> None:
        """Deliver forever on the running loop; each tick runs in the default executor (a
        sync-flush wait and the JSON fsync stay off the loop), on_delivered(topic, queue_id)
        runs on the loop once per queue that got messages. Cancel to stop, then close()."""
        loop = asyncio.get_running_loop()
        while not self._closed:
            try:
                delivered = await loop.run_in_executor(None, self.deliver_due)
            except Exception:  # disk full, store closing: try again later, lose nothing
                log.exception("delay-level delivery failed; retrying")
                delivered = []
                await asyncio.sleep(1.0)
            for topic, queue_id in dict.fromkeys(delivered):
                on_delivered(topic, queue_id)
            await self._wakeup.wait_async(self._sleep_s(len(delivered) >= MAX_PER_TICK))

    def start(self) -> None:
        """Deliver from a daemon thread until stop()."""
        if self._thread is not None:
            raise RuntimeError("schedule service already started")
        self._thread = threading.Thread(target=self._run_thread, name="schedule-delivery",
                                        daemon=True)
        self._thread.start()

    def _run_thread(self) -> None:
        while not self._wake.is_set():
            try:
                delivered = self.deliver_due()
            except Exception:
                log.exception("delay-level delivery failed; retrying")
                delivered = []
                self._wake.wait(1.0)
            self._wakeup.wait(self._sleep_s(len(delivered) >= MAX_PER_TICK))

    def stop(self) -> None:
        """Stop the thread runner (if started) and close(): progress is persisted."""
        self._wake.set()
        self._wakeup.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.close()
