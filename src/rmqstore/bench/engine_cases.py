"""Workloads only rmqstore has: key lookups through the index, and crash recovery time."""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path

from .. import filenames
from ..store import MessageStore, open_store
from .options import Bound

KEY_TOPIC = "K"
MAX_KEYED = 20_000
RECOVERY_BATCH = 256


def fill_keys(store: MessageStore, pool: list[bytes], bound: Bound) -> int:
    """Untimed: messages with one key each (key-<i>) in their own topic."""
    n = min(MAX_KEYED, bound.max_count or MAX_KEYED)
    for i in range(n):
        store.put(KEY_TOPIC, pool[i % len(pool)], keys=[f"key-{i}"])
    return n


def run_query(store: MessageStore, keyed: int, bound: Bound, rng: random.Random
              ) -> tuple[int, float, int]:
    """Random key lookups until the bound: (lookups, seconds, body bytes found)."""
    keys = [f"key-{rng.randrange(keyed)}" for _ in range(1024)]
    query = store.query
    deadline = bound.deadline()
    done = nbytes = 0
    t0 = time.perf_counter()
    while (room := bound.room(done)) and time.perf_counter() < deadline:
        for key in keys[:room]:
            hits = query(KEY_TOPIC, key)
            if len(hits) != 1:
                raise AssertionError(f"query({key!r}) found {len(hits)} messages, expected 1")
            nbytes += len(hits[0].body)
        done += min(room, len(keys))
    return done, time.perf_counter() - t0, nbytes


def build_store(root: Path, pool: list[bytes], log_bytes: int, **config) -> int:
    """Untimed: a store with about log_bytes of commit log, closed cleanly. Returns messages."""
    n = 0
    with open_store(root, **config) as store:
        store.create_topic("T", 4)
        k = 0
        while store.commitlog.max_offset < log_bytes:
            start = (k * RECOVERY_BATCH) % len(pool)
            store.put_batch("T", pool[start:start + RECOVERY_BATCH], queue_id=k % 4)
            n += RECOVERY_BATCH
            k += 1
    return n


def time_open(root: Path, crashed: bool, **config) -> tuple[float, int]:
    """Seconds to open the store; crashed leaves the abort marker first, which forces
    RocketMQ's abnormal recovery (every record re-scanned and CRC-checked)."""
    if crashed:
        filenames.abort_file(root).touch()
    recovery_log = logging.getLogger("rmqstore.recovery")
    level = recovery_log.level
    recovery_log.setLevel(logging.ERROR)  # "not closed cleanly" is what this case is about
    try:
        t0 = time.perf_counter()
        store = open_store(root, **config)
        dt = time.perf_counter() - t0
    finally:
        recovery_log.setLevel(level)
    log_bytes = store.commitlog.max_offset
    store.close()
    return dt, log_bytes
