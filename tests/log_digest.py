"""SHA-256 of a store's commit-log bytes over a range: how the replication tests compare a
replica's log with its master's."""

from __future__ import annotations

import hashlib


def log_digest(store, lo: int, hi: int | None = None) -> str:
    """SHA-256 of the commit log's bytes [lo, hi) (hi: its end)."""
    h = hashlib.sha256()
    hi = store.commitlog.max_offset if hi is None else hi
    for seg in store.commitlog.files.files:
        a, b = max(lo, seg.start), min(hi, seg.start + seg.wrote)
        if a < b:
            h.update(seg.view[a - seg.start:b - seg.start])
    return h.hexdigest()
