"""Warmer: keeps the pages just ahead of the commit-log writer faulted in.

A first write to a page of a mapped file costs a page fault (allocate, zero, map): on this kind
of VM that bounds appends to a few hundred MB/s. RocketMQ pre-touches whole segments
(warmMapedFileEnable); we fault in a sliding window ahead of the write position with
MADV_POPULATE_WRITE, which never changes content, so it runs beside the writer. The window is
kept small because a populated page is dirty: fdatasync writes it (as zeros) before the writer
fills it, so a whole-segment warm-up doubles what a sync-flush store writes (there the warmer
is off by default: measured, it costs more than the page faults it saves). Batches written
with pwrite (batch_write_buffer_bytes) fault nothing, and a populated page only costs them at
writeback, so the window moves only while appends go through the mapping (`mapped_bytes`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from . import _native
from .segment_queue import MappedFileQueue

log = logging.getLogger(__name__)


# While nothing goes through the mapping, the look doubles its interval up to this: an idle
# or pwrite-only store (a replica, a master feeding one) wakes 50 times a second, not 500
# (measured: 0.07 CPU s per GiB a master streams to its slave).
IDLE_INTERVAL_S = 0.02


class Warmer(threading.Thread):
    def __init__(self, files: MappedFileQueue, window_bytes: int,
                 mapped_bytes: Callable[[], int], interval_s: float = 0.002) -> None:
        super().__init__(name="rmq-warmer", daemon=True)
        self._files = files
        self._mapped_bytes = mapped_bytes
        self._window = window_bytes
        self._step = max(4096, window_bytes // 4)
        self._interval_s = interval_s
        self._stopping = threading.Event()

    def run(self) -> None:
        seg, done, mapped = None, 0, -1
        wait = self._interval_s
        while not self._stopping.wait(wait):
            now_mapped = self._mapped_bytes()
            if now_mapped == mapped:  # nothing went through the mapping lately: batches only
                wait = min(2 * wait, max(IDLE_INTERVAL_S, self._interval_s))
                continue
            mapped, wait = now_mapped, self._interval_s
            last = self._files.last()
            if last is None or last.fd < 0:
                continue
            if last is not seg:
                seg, done = last, last.wrote
            done = max(done, seg.wrote)  # pages written meanwhile (by pwrite) need no warming
            target = min(seg.size, seg.wrote + self._window)
            if target - done < self._step:
                continue
            try:
                if not _native.populate(seg.region, done, target - done):
                    log.info("MADV_POPULATE_WRITE unavailable; segments are not warmed")
                    return
            except ValueError:  # the segment was closed meanwhile
                seg = None
                continue
            done = target

    def stop(self) -> None:
        self._stopping.set()
        if self.is_alive():
            self.join()
