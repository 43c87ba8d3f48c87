"""Batches appended across rolls, for the writer (under its put lock).

One native call appends as many records of a batch as the active commit-log segment and
consume-queue file hold, then says which one is full (or that a record can never fit, or that
a write failed); the loop here (and for put_batch's bodies, the one in _native/putter.c, which
calls roll_for_bodies) rolls what is full and calls again until the whole batch is in.
"""

from __future__ import annotations

from . import _native
from .commitlog import CommitLog
from .consumequeue import ConsumeQueue
from .errors import MessageTooLargeError
from .index import index_keys
from .record import decode_properties


def roll_for_bodies(commitlog: CommitLog, cq: ConsumeQueue, stop: int) -> None:
    """Make room for the body a native batch append (_native's Putter) stopped at, or raise."""
    if stop == _native.IO_ERROR:
        raise OSError("writing a batch to the commit log failed; nothing of the rest was "
                      "appended")
    _roll(commitlog, cq, stop, "")


def append_entries(commitlog: CommitLog, cq: ConsumeQueue, data: bytes, n: int, extra: bytes,
                   sysflag: int, born_ts: int, reconsume_times: int, host: bytes | None,
                   out) -> int:
    """Append the ``n`` checked entries of a batch body in RocketMQ's wire encoding, each
    with ``extra`` after its own properties; one report per record goes to ``out`` (from
    _native.new_entry_reports). Returns the batch's store time."""
    appender = commitlog.appender
    done = at = stamp = 0
    while done < n:
        wrote, stop = appender.put_entries(cq.writer, data, at, extra, sysflag, born_ts,
                                           reconsume_times, host, stamp, done == 0, out + done)
        if wrote:
            done += wrote
            last = out[done - 1]
            at = last.props_at + last.props_len  # past the last entry written
        stamp = appender.last_ts if done else 0
        if stop == _native.IO_ERROR:
            raise OSError("writing a batch to the commit log failed; nothing of the rest was "
                          "appended")
        _roll(commitlog, cq, stop, ", or its properties exceed 32767 bytes")
    return appender.last_ts


def entry_index_keys(data: bytes,
                     reports: list[tuple[int, int, int, int, int, int]]) -> list[tuple[str, int]]:
    """(key, commit-log offset) of every key the entries of ``data`` are indexed under; the
    native reports say where each UNIQ_KEY is, and whether it has KEYS (then its properties
    are decoded)."""
    found: list[tuple[str, int]] = []
    for phys, props_at, props_len, uniq_at, uniq_len, has_keys in reports:
        if has_keys:
            props = decode_properties(data[props_at:props_at + props_len])
            found.extend((key, phys) for key in index_keys(props))
        elif uniq_len > 0:
            start = props_at + uniq_at
            found.append((data[start:start + uniq_len].decode("utf-8", "replace"), phys))
    return found


def _roll(commitlog: CommitLog, cq: ConsumeQueue, stop: int, too_large_also: str) -> None:
    """Make room for the record the native call stopped at."""
    if stop == _native.SEGMENT_FULL:
        commitlog.roll()
    elif stop == _native.STALE:
        commitlog.catch_up(cq)
    elif stop == _native.QUEUE_FULL:
        cq.roll()
    elif stop == _native.TOO_LARGE:
        raise MessageTooLargeError(f"a record does not fit a {commitlog.segment_bytes}-byte "
                                   f"segment{too_large_also}")
