"""What flows through the broker, counted where it happens: messages and bytes stored per
topic and message type, handed out per topic and group, sent to a DLQ, committed and rolled
back by transactions; and how far each group has pulled each queue.

These are the inputs of RocketMQ 5's counters (BrokerMetricsManager: messages_in,
throughput_in, message_size, messages_out, throughput_out, send_to_dlq_messages,
commit_messages, rollback_messages) and of the TPS windows (history.py). Counting runs on the
broker's event loop and costs a send a few dict operations; readers (a scrape, the dashboard)
take copies on the same loop. The sends SendPath.serve takes are counted by serve itself, in
C, per topic (``served``); they are folded into ``inflow`` whenever it is read.
"""

from __future__ import annotations

import struct
import threading
import time
from bisect import bisect_left

from .buckets import Buckets

# BrokerMetricsConstant / BrokerMetricsManager (rocketmq 5.3): message_size histogram bounds
MESSAGE_SIZE_BOUNDS = (1024.0, 4 * 1024.0, 512 * 1024.0, 1 << 20, 2 << 20, 4 << 20)

# TopicMessageType, lower-cased as the metric label carries it
NORMAL, FIFO, DELAY, TRANSACTION = "normal", "fifo", "delay", "transaction"

# A topic's counters as SendPath.serve keeps them (send_counts.c): messages, bytes, calls,
# since (time.monotonic's clock), the size buckets' counts, their total.
SERVED = struct.Struct(f"=qqqd{len(MESSAGE_SIZE_BOUNDS) + 1}qd")


def message_type(properties: str | bytes) -> str:
    """TopicMessageType.parseFromMessageProperty over a send's property text (name \\x01 value
    \\x02 ...), or its UTF-8 bytes: a half message is a transaction, a delay level or timer
    property a delay."""
    marks = _MARKS_BYTES if type(properties) is bytes else _MARKS_TEXT
    if marks[0] in properties:
        return TRANSACTION
    if marks[1] in properties or marks[2] in properties:
        return DELAY
    return NORMAL


_MARKS_TEXT = ("TRAN_MSG\x01true", "DELAY\x01", "TIMER_D")
_MARKS_BYTES = tuple(mark.encode() for mark in _MARKS_TEXT)


class InFlow:
    """Messages and bytes stored for one (topic, message type), with their sizes, the sends
    that stored them and when the first came (for RocketMQ's StatsItem windows)."""

    __slots__ = ("messages", "bytes", "sizes", "calls", "since")

    def __init__(self) -> None:
        self.messages = 0
        self.bytes = 0
        self.sizes = Buckets(MESSAGE_SIZE_BOUNDS)
        self.calls = 0
        self.since = time.monotonic()


class OutFlow:
    """Messages and bytes handed out for one (topic, group), by how many pulls, since when."""

    __slots__ = ("messages", "bytes", "calls", "since")

    def __init__(self) -> None:
        self.messages = 0
        self.bytes = 0
        self.calls = 0
        self.since = time.monotonic()


class Traffic:
    def __init__(self) -> None:
        self._inflow: dict[tuple[str, str], InFlow] = {}
        # topic -> its NORMAL sends as serve counted them (SERVED), and what of them is folded
        self.served: dict[str, bytearray] = {}
        self._folded: dict[str, tuple[int | float, ...]] = {}
        self._fold_lock = threading.Lock()  # readers on other threads (a scrape) fold too
        self.outflow: dict[tuple[str, str], OutFlow] = {}
        self.dlq: dict[tuple[str, str], int] = {}  # (group, topic) -> messages
        self.commits: dict[str, int] = {}  # topic -> transactions committed
        self.rollbacks: dict[str, int] = {}
        # (group, topic, queue id) -> next offset the group's last pull was answered with
        self.pulled: dict[tuple[str, str, int], int] = {}
        self.sent_back: dict[tuple[str, str], int] = {}  # (topic, group) -> messages given back
        self.pulls_found = 0  # pulls answered with messages (getMessageTimesTotalFound)
        self.pulls_missed = 0  # and without

    @property
    def inflow(self) -> dict[tuple[str, str], InFlow]:
        """(topic, message type) -> what was stored, serve's sends included."""
        if self.served:
            self._fold()
        return self._inflow

    def _fold(self) -> None:
        """Adds what serve counted since the last fold (its counters only grow)."""
        with self._fold_lock:
            for topic, counters in list(self.served.items()):
                now = SERVED.unpack(counters)  # one copy: serve does not run meanwhile
                before = self._folded.get(topic)
                if before == now:
                    continue
                self._folded[topic] = now
                flow = self._inflow.get((topic, NORMAL))
                if flow is None:
                    flow = self._inflow[(topic, NORMAL)] = InFlow()
                    flow.since = now[3]  # serve's first send of the topic
                if before is None:
                    before = (0,) * len(now)
                flow.messages += now[0] - before[0]  # type: ignore[assignment]
                flow.bytes += now[1] - before[1]  # type: ignore[assignment]
                flow.calls += now[2] - before[2]  # type: ignore[assignment]
                counts = flow.sizes.counts
                for i in range(len(counts)):
                    counts[i] += now[4 + i] - before[4 + i]  # type: ignore[assignment]
                flow.sizes.total += now[-1] - before[-1]

    def stored(self, topic: str, kind: str, count: int, size_bytes: int) -> None:
        """count messages of size_bytes in all stored in topic (a batch is one call)."""
        flow = self._inflow.get((topic, kind))
        if flow is None:
            flow = self._inflow[(topic, kind)] = InFlow()
        flow.messages += count
        flow.bytes += size_bytes
        flow.calls += 1
        sizes, size = flow.sizes, size_bytes / count  # observe_many's, inline: once per send
        sizes.counts[bisect_left(sizes.bounds, size)] += count
        sizes.total += size * count

    def pulled_from(self, group: str, topic: str, queue_id: int, count: int, size_bytes: int,
                    next_offset: int) -> None:
        """A pull answered with count messages (0: nothing found) up to next_offset."""
        self.pulled[(group, topic, queue_id)] = next_offset
        if count:
            self.pulls_found += 1
            flow = self.outflow.get((topic, group))
            if flow is None:
                flow = self.outflow[(topic, group)] = OutFlow()
            flow.messages += count
            flow.bytes += size_bytes
            flow.calls += 1
        else:
            self.pulls_missed += 1

    def gave_back(self, group: str, topic: str) -> None:
        """A consumer handed a message back (CONSUMER_SEND_MSG_BACK)."""
        self.sent_back[(topic, group)] = self.sent_back.get((topic, group), 0) + 1

    def sent_to_dlq(self, group: str, topic: str) -> None:
        self.dlq[(group, topic)] = self.dlq.get((group, topic), 0) + 1

    def transaction_ended(self, topic: str, committed: bool) -> None:
        table = self.commits if committed else self.rollbacks
        table[topic] = table.get(topic, 0) + 1

    def messages_in_total(self) -> int:
        return sum(f.messages for f in self.inflow.values())

    def messages_out_total(self) -> int:
        return sum(f.messages for f in self.outflow.values())
