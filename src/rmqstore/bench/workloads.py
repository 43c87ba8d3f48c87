"""The workloads of `rmqstore bench` and the data every system gets.

Message i of a single-put workload goes to queue i % 4 at that queue's next offset; batch k of
a batch workload holds `batch` consecutive messages of queue k % 4 (rmqstore's put_batch takes
one queue). Bodies come from one pool of 4096 os.urandom bodies per size (fewer for bodies over
16 KiB: the pool stays within 64 MiB), shared by all systems, so every system stores the same
bytes in the same order (as in research/peers-embedded.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

QUEUES = 4
POOL = 4096  # bodies in a pool, at most
POOL_BYTES = 64 << 20  # and at most this many bytes: a large --size would not fit in memory
WINDOW_QUEUE = QUEUES  # put_async windows go to a queue of their own (rmqstore: topic "A")

# name: (flush, what it measures); the order is the run order within one message size.
WORKLOADS: dict[str, tuple[str, str]] = {
    "put": ("async", "one put per message"),
    "put_batch": ("async", "put_batch of --batch messages"),
    "read": ("async", "in-order read of every queue through the consume queue"),
    "random_read": ("async", "point reads at random (rmqstore: by commit-log offset)"),
    "query": ("async", "key lookups through the index (rmqstore only)"),
    "recovery": ("async", "crash recovery of a store of --recovery-mb (rmqstore only)"),
    "put_sync": ("sync", "one put per message, each durable before the next"),
    "put_batch_sync": ("sync", "put_batch of --batch, each durable before the next"),
    "writers": ("sync", "1, 2, 4, 8 threads calling put (group commit)"),
    "in_flight": ("sync", "put_async with --in-flight puts pending, then wait"),
}
FIRST_SIZE_ONLY = ("query", "recovery", "writers", "in_flight")


@dataclass(frozen=True)
class Workload:
    name: str
    size: int
    batch: int = 1
    writers: int = 1

    @property
    def flush(self) -> str:
        return WORKLOADS[self.name][0]

    @property
    def sync(self) -> bool:
        return self.flush == "sync"

    @property
    def label(self) -> str:
        extra = f" x{self.writers}" if self.name == "writers" else ""
        return f"{self.name}{extra} {format_size(self.size)}"


def plan(sizes: tuple[int, ...], names: tuple[str, ...], batch: int,
         writers: tuple[int, ...], in_flight: int) -> list[Workload]:
    """The workloads to run, grouped by size; concurrency, query and recovery run at the first
    size only, to keep the default run short."""
    chosen = [n for n in WORKLOADS if not names or n in names]
    out: list[Workload] = []
    for k, size in enumerate(sizes):
        for name in chosen:
            if name in FIRST_SIZE_ONLY and k:
                continue
            if name == "writers":
                out += [Workload(name, size, 1, w) for w in writers]
            elif name in ("put_batch", "put_batch_sync"):
                out.append(Workload(name, size, batch))
            elif name == "in_flight":
                out.append(Workload(name, size, in_flight))
            else:
                out.append(Workload(name, size))
    return out


def body_pool(size: int) -> list[bytes]:
    """Incompressible bodies, as the peers were measured."""
    return [os.urandom(size) for _ in range(max(1, min(POOL, POOL_BYTES // size)))]


def format_size(size: int) -> str:
    if size >= 1024 and size % 1024 == 0:
        return f"{size // 1024} KiB"
    return f"{size} B"


class Cursor:
    """The next queue offset of each queue of one system's store; the runner advances it."""

    def __init__(self) -> None:
        self.next = [0] * (QUEUES + 1)
        self.sent = 0  # messages written so far (picks the next pool body)

    def singles(self, pool: list[bytes], n: int) -> list[tuple[int, int, bytes]]:
        """The next n single-put messages: (queue, offset, body)."""
        out = []
        nxt, sent, count = self.next, self.sent, len(pool)
        for i in range(sent, sent + n):
            q = i % QUEUES
            out.append((q, nxt[q], pool[i % count]))
            nxt[q] += 1
        self.sent = sent + n
        return out

    def batch(self, pool: list[bytes], k: int, n: int, queue: int | None = None
              ) -> tuple[int, int, list[bytes]]:
        """Batch number k of n messages: (queue, first offset, bodies)."""
        q = k % QUEUES if queue is None else queue
        off = self.next[q]
        count = len(pool)
        start = self.sent % count
        bodies = (pool[start:start + n] if start + n <= count
                  else [pool[(start + j) % count] for j in range(n)])
        self.next[q] += n
        self.sent += n
        return q, off, bodies

    def written(self) -> list[int]:
        """Messages in each of the QUEUES read queues."""
        return self.next[:QUEUES]
