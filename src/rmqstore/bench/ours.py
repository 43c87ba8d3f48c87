"""rmqstore as a benchmarked system: topic "T" with 4 queues; put_window uses topic "A" (one
queue) so that put_async takes the plain path."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from pathlib import Path

from ..store import MessageStore, open_store
from .systems import Msg
from .workloads import QUEUES

TOPIC = "T"
WINDOW_TOPIC = "A"
GET_BYTES = 64 << 20  # one get() returns up to 1024 messages, and at most about this many bytes


class RmqStore:
    name = "rmqstore"
    role = "ours"
    mapping = ("topic T with 4 queues; put = store.put(queue_id=q); batch = store.put_batch of "
               "one queue; read = store.get(1024, fewer over 64 KiB) reading m.body (variant "
               "get_bodies: store.get_bodies(4096)); random read = "
               "get_by_commitlog_offset(...).body; in_flight = put_async on a 1-queue topic, "
               "wait() on the last")

    def __init__(self, segment_bytes: int, **config) -> None:
        self.config = dict(commitlog_segment_bytes=segment_bytes, **config)
        self.store: MessageStore | None = None
        self.read_variant = "get"

    def open(self, root: Path, sync: bool, size: int) -> None:
        self.store = open_store(root, flush="sync" if sync else "async", **self.config)
        self.store.create_topic(TOPIC, QUEUES)
        self.store.create_topic(WINDOW_TOPIC, 1)
        self.get_count = max(1, min(1024, GET_BYTES // size))

    def put_each(self, msgs: Sequence[Msg]) -> None:
        put = self.store.put
        for q, _, body in msgs:
            put(TOPIC, body, queue_id=q)

    def put_batch(self, queue: int, offset: int, bodies: list[bytes]) -> None:
        self.store.put_batch(TOPIC, bodies, queue_id=queue)

    def put_window(self, offset: int, bodies: list[bytes]) -> None:
        put_async = self.store.put_async
        last = None
        for body in bodies:
            last = put_async(WINDOW_TOPIC, body)
        last.wait()

    def finish(self) -> None:
        self.store.flush()

    def read_in_order(self, counts: list[int], deadline: float, limit: int) -> tuple[int, int]:
        if self.read_variant == "get_bodies":
            return self._read_bodies(counts, deadline, limit)
        get = self.store.get
        n = nbytes = 0
        for q, count in enumerate(counts):
            off = 0
            while off < count and n < limit and time.perf_counter() < deadline:
                res = get(TOPIC, q, off, min(self.get_count, limit - n))
                if not res.messages:
                    break
                for m in res.messages:
                    nbytes += len(m.body)
                n += len(res.messages)
                off = res.next_offset
        return n, nbytes

    def _read_bodies(self, counts: list[int], deadline: float, limit: int) -> tuple[int, int]:
        get_bodies = self.store.get_bodies
        n = nbytes = 0
        for q, count in enumerate(counts):
            off = 0
            while off < count and n < limit and time.perf_counter() < deadline:
                b = get_bodies(TOPIC, q, off, min(4096, limit - n))
                if not len(b):
                    break
                nbytes += len(b.data)
                n += len(b)
                off = b.next_offset
        return n, nbytes

    def random_handles(self, samples: list[tuple[int, int]], rng: random.Random) -> list:
        get = self.store.get
        return [get(TOPIC, q, off, 1).messages[0].commitlog_offset for q, off in samples]

    def read_random(self, handles: list) -> int:
        by_offset = self.store.get_by_commitlog_offset
        return sum(len(by_offset(off).body) for off in handles)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None
