"""Which half messages are ended, and how far the check has got (the state Java's
TransactionalMessageServiceImpl.check rebuilds from the op queue on every pass as its removeMap
and doneOpOffset; here it is kept in memory and rebuilt once, at start).

Two progress offsets, kept as consumer offsets of group CID_RMQ_SYS_TRANS so they survive a
restart: the half queue's (every half message below it is ended, parked, or superseded by a
copy the check put back) and the op queue's (every op record below it names a half message below
the half progress). At start the op records from the op progress on are read again, so
ended-but-not-yet-passed half messages are known after a restart.

A half message is *live* (may still be committed or rolled back) when it is at or above the half
progress, no op record names it, and no op record names another copy of the same transaction
(same UNIQ_KEY). An END_TRANSACTION for a copy the check has since put back is applied to the
newest copy, so a slow producer's late answer still counts, once. The transaction keys are what
keep a commit single when the progress persisted before a crash lags: old copies of an ended
transaction then lie ahead of the progress again, and are passed, not asked about.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from .bridge import HALF_TOPIC, OP_TOPIC, TransactionalMessageBridge

log = logging.getLogger(__name__)

MAX_SUPERSEDED = 100_000  # remembered put-back copies; an older answer waits for the next check
MAX_ENDED_KEYS = 100_000  # remembered ended transaction keys (UNIQ_KEY), oldest dropped first


class OpLedger:
    """Event-loop thread only."""

    def __init__(self, bridge: TransactionalMessageBridge) -> None:
        self._bridge = bridge
        self.half_progress = 0
        self.op_progress = 0
        self._ops: dict[int, int] = {}  # op queue offset -> half queue offset it ends
        self._ended: dict[int, int] = {}  # half queue offset -> op queue offset
        self._ended_keys: OrderedDict[str, None] = OrderedDict()
        # half queue offset -> (queue offset, commit-log offset) of the copy put back for it
        self._superseded: OrderedDict[int, tuple[int, int]] = OrderedDict()

    def load(self) -> None:
        b = self._bridge
        half = b.progress(HALF_TOPIC)
        self.half_progress = max(half if half is not None else 0, b.min_offset(HALF_TOPIC))
        op = b.progress(OP_TOPIC)
        self.op_progress = max(op if op is not None else 0, b.min_offset(OP_TOPIC))
        for op_offset, half_offset in b.op_records(self.op_progress):
            key = b.half_key(half_offset) if half_offset >= self.half_progress else None
            self.record_op(op_offset, half_offset, key)
        log.info("transactions: half queue checked up to %d of %d, %d ended half message(s) "
                 "ahead", self.half_progress, b.max_offset(HALF_TOPIC), len(self._ended))

    def record_op(self, op_offset: int, half_offset: int, key: str | None) -> None:
        """An op record at op_offset ends the half message at half_offset (transaction key)."""
        self._ops[op_offset] = half_offset
        if half_offset >= self.half_progress:
            self._ended[half_offset] = op_offset
        if key:
            self._ended_keys[key] = None
            self._ended_keys.move_to_end(key)
            while len(self._ended_keys) > MAX_ENDED_KEYS:
                self._ended_keys.popitem(last=False)

    def live_copy(self, half_offset: int) -> tuple[int, int | None] | None:
        """(queue offset, commit-log offset or None if it is half_offset itself) of the newest
        copy of that half message if it is still live by offset; None once it is ended or
        passed. The caller checks the transaction key too (key_ended)."""
        commitlog_offset = None
        while half_offset in self._superseded:
            half_offset, commitlog_offset = self._superseded[half_offset]
        if half_offset < self.half_progress or half_offset in self._ended:
            return None
        return half_offset, commitlog_offset

    def is_ended(self, half_offset: int) -> bool:
        return half_offset in self._ended

    def key_ended(self, key: str | None) -> bool:
        return bool(key) and key in self._ended_keys

    def supersede(self, half_offset: int, copy_offset: int, copy_commitlog_offset: int) -> None:
        self._superseded[half_offset] = (copy_offset, copy_commitlog_offset)
        while len(self._superseded) > MAX_SUPERSEDED:
            self._superseded.popitem(last=False)

    def advance(self, half_progress: int) -> None:
        """The check passed every half message below half_progress: move both offsets."""
        if half_progress > self.half_progress:
            for offset in [h for h in self._ended if h < half_progress]:
                del self._ended[offset]
            self.half_progress = half_progress
            self._bridge.commit_progress(HALF_TOPIC, half_progress)
        op_progress = self.op_progress
        while op_progress in self._ops and self._ops[op_progress] < self.half_progress:
            del self._ops[op_progress]
            op_progress += 1
        if op_progress != self.op_progress:
            self.op_progress = op_progress
            self._bridge.commit_progress(OP_TOPIC, op_progress)
