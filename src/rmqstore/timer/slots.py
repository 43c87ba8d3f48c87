"""TimerSchedule: the on-disk timer store (wheel + timer log + checkpoint), knowing nothing of
messages: it files (deliver time, commit-log offset, size) entries into time slots and hands
back, slot by slot, the entries that have come due. TimerService (service.py) moves messages.

Time is cut into slots of precision_ms. `read_ms` is the start of the oldest slot not yet
delivered; slot [t, t + precision_ms) is due once now >= t + precision_ms, so an entry is never
handed out before its deliver time and at most precision_ms (plus the tick interval) after.
A tick reads only the due slots: work is proportional to due entries plus slots passed, never
to the entries pending.

An entry due beyond the wheel window (read_ms + slots * precision_ms) is filed with MAGIC_ROLL
in the window's last slot; when that comes, the service re-enqueues the message (a fresh copy
in the commit log, as RocketMQ 5 rolls), and it is filed again, closer to its time.

Recovery: `timercheck` says how far everything was durable (TimerCheckpoint). After a clean
close the wheel is trusted; after a crash the timer log is cut at the checkpointed length and
the wheel is rebuilt from the log's live records (the only time the log is scanned).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from .checkpoint import CLEAN, OPEN, TimerCheckpoint, TimerProgress
from .timerlog import MAGIC_ROLL, RECORD_SIZE, TimerLog, TimerRecord
from .wheel import Slot, TimerWheel

log = logging.getLogger(__name__)

DAY_MS = 86_400_000

# add() outcomes
DUE = 0  # already due: deliver now, nothing was filed
LINKED = 1  # filed in its own slot
ROLLED = 2  # filed with MAGIC_ROLL in the window's last slot


@dataclass(frozen=True)
class TimerConfig:
    """The timer store's settings. precision_ms and wheel_slots are fixed once timers exist."""

    precision_ms: int = 20  # slot width: the lateness bound, tick interval aside
    wheel_slots: int = 1 << 21  # window = 2^21 x 20 ms = 11.6 h; later times roll
    log_segment_bytes: int = RECORD_SIZE << 20  # 40 MiB: 1,048,576 records per segment
    tick_interval_ms: int = 10  # runners tick this often
    flush_interval_ms: int = 1000  # progress made durable this often (timerFlushIntervalMs)
    max_delay_ms: int = 7 * DAY_MS  # TimerService.put refuses later times (timerMaxDelaySec)
    enqueue_batch: int = 8192  # new timer messages filed per tick at most
    max_slots_per_tick: int = 50_000  # bounds a tick catching up after downtime

    def __post_init__(self) -> None:
        if self.precision_ms < 1 or self.wheel_slots < 2:
            raise ValueError("precision_ms must be >= 1 and wheel_slots >= 2")
        if self.max_delay_ms < 0 or self.tick_interval_ms < 1 or self.flush_interval_ms < 1:
            raise ValueError(
                "max_delay_ms, tick_interval_ms and flush_interval_ms must be positive")

    @property
    def window_ms(self) -> int:
        return self.precision_ms * self.wheel_slots


class TimerSchedule:
    """Single-threaded: the caller (TimerService) serializes every call."""

    def __init__(self, root: Path, config: TimerConfig, now_ms: int) -> None:
        self.config = config
        self.precision_ms = p = config.precision_ms
        self.checkpoint = TimerCheckpoint(root / "timercheck", p, config.wheel_slots)
        try:
            self.wheel = TimerWheel(root / "timerwheel", config.wheel_slots, p)
        except BaseException:
            self.checkpoint.close()
            raise
        self.log = TimerLog(root / "timerlog", config.log_segment_bytes)
        found = self.checkpoint.found or TimerProgress(now_ms // p * p, 0, 0)
        self.read_ms = found.read_ms
        self.enqueue_offset = found.enqueue_offset
        try:
            self.log.load(found.log_end)
            if not self.checkpoint.was_clean:
                log.warning("timer store was not closed cleanly: rebuilding the wheel from the "
                            "timer log; slots from %d on are delivered again", self.read_ms)
                self._rebuild()
            self.checkpoint.write(TimerProgress(self.read_ms, self.enqueue_offset, self.log.end),
                                  OPEN)
        except BaseException:
            self.abandon()
            raise

    def _rebuild(self) -> None:
        self.wheel.clear()
        slots: dict[int, Slot] = {}
        for rec in self.log.records():
            if rec.slot_ms >= self.read_ms:
                old = slots.get(rec.slot_ms)
                slots[rec.slot_ms] = Slot(rec.slot_ms, rec.pos, 1 + (old.count if old else 0))
        for slot in slots.values():
            self.wheel.put(slot)
        log.info("timer wheel rebuilt: %d pending slot(s)", len(slots))

    # -- filing ---------------------------------------------------------------------------
    def add(self, deliver_ms: int, cl_offset: int, size: int) -> int:
        """File an entry: DUE (its slot was already delivered: deliver it now), LINKED or
        ROLLED (see the module docstring)."""
        p = self.precision_ms
        slot_ms = deliver_ms // p * p
        if slot_ms < self.read_ms:
            return DUE
        magic, outcome = 0, LINKED
        last_slot = self.read_ms + self.config.window_ms - p
        if slot_ms > last_slot:
            slot_ms, magic, outcome = last_slot, MAGIC_ROLL, ROLLED
        prev = self.wheel.link(slot_ms, self.log.end)
        self.log.append(prev, slot_ms, deliver_ms, cl_offset, size, magic)
        return outcome

    # -- due slots ------------------------------------------------------------------------
    def due_slot(self, now_ms: int) -> list[TimerRecord] | None:
        """The entries of the slot starting at read_ms, in (deliver_ms, filing) order, when
        that slot is due at now_ms; None when it is not. Call slot_done() once they are
        handled; until then the same slot (with anything filed since) is returned."""
        if self.read_ms + self.precision_ms > now_ms:
            return None
        slot = self.wheel.get(self.read_ms)
        if slot.count == 0:
            return []
        records = self.log.chain(slot.last_pos, slot.count)
        records.sort(key=lambda r: (r.deliver_ms, r.pos))
        return records

    def next_due_ms(self, until_ms: int) -> int:
        """When the first filled slot starting before until_ms falls due; until_ms when none
        is. Passes nothing: an idle runner sleeps until then."""
        p, wheel = self.precision_ms, self.wheel
        for slot_ms in range(self.read_ms, until_ms, p):
            if wheel.filled(slot_ms):
                return slot_ms + p
        return until_ms

    def slot_done(self) -> None:
        self.read_ms += self.precision_ms

    def pending_slots(self, now_ms: int) -> int:
        """Due slots not yet handled (how far behind a tick is)."""
        return max(0, (now_ms - self.read_ms) // self.precision_ms)

    # -- durability -----------------------------------------------------------------------
    def persist(self, enqueue_offset: int, state: int = OPEN) -> None:
        """Make the log and wheel durable, then record progress; the caller has made the
        commit log durable past every message delivered or re-enqueued so far. Old timer-log
        segments are deleted afterwards."""
        self.enqueue_offset = enqueue_offset
        self.log.flush()
        self.wheel.flush()
        self.checkpoint.write(TimerProgress(self.read_ms, enqueue_offset, self.log.end), state)
        self.log.delete_before(self.read_ms)

    def close(self, enqueue_offset: int) -> None:
        """Persist and mark the store cleanly closed. Idempotent."""
        if self.checkpoint.fd < 0:
            return
        self.persist(enqueue_offset, CLEAN)
        self.log.close()
        self.wheel.close()
        self.checkpoint.close()

    def abandon(self) -> None:
        """Close the files without persisting anything (tests simulating a crash)."""
        self.log.close()
        self.wheel.close()
        self.checkpoint.close()
