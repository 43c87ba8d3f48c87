"""ConsumeQueueTable: every consume queue of a store, by (topic, queue id)
(DefaultMessageStore.consumeQueueTable), loaded when first used.

RocketMQ loads and recovers every queue at start, which makes opening a store cost time per
queue, idle or not. Here a queue is loaded (its directory listed, its last file scanned) the
first time a read, a put or re-dispatch names it, and checked then against what recovery found:
units past the commit log's end at open are dropped, and its minimum follows the commit log's.
Enumerating every queue (``load_all``) is left to what needs them all: a corrupt record met by
recovery, `rmqstore inspect`.

Readers and the long-polling wait look queues up without a lock (a dict lookup, and copies
made in one C call, are atomic under the GIL); loading and creating run under the store's put
lock.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from . import filenames
from .consumequeue import ConsumeQueue, delete_expired_files
from .errors import InvalidTopicError
from .mapping_clock import MappingClock
from .queue_file import QueueFile
from .record import check_topic
from .topic_validator import SCHEDULE_TOPIC

log = logging.getLogger(__name__)

REMEMBERED = 262_144  # topic names checked, and queues found absent, _on_disk keeps


class ConsumeQueueTable:
    REMEMBERS_ABSENT = True  # _on_disk may remember a queue absent (no other process makes one)

    def __init__(self, root: Path, units_per_file: int, lock: threading.Lock,
                 mapped_files_max: int, clean: bool) -> None:
        """lock: the store's put lock. mapped_files_max: how many queue files stay mapped.
        clean: the store was closed cleanly (a queue's recovery reads less then)."""
        self._root = root
        # For _on_disk, asked of every queue a broker reports on (lags, topic pages), most of
        # them never written: a topic's name is checked once, and a queue found absent is
        # remembered as such until this table makes it (up to REMEMBERED of each).
        self._cq_root = os.fspath(filenames.consumequeue_root(root))
        self._checked_topics: set[str] = set()
        self._absent: set[tuple[str, int]] = set()
        self._units_per_file = units_per_file
        self._lock = lock
        self.clean = clean
        self._creating = threading.Lock()  # prepare(): one thread makes a queue at a time
        self._prepared: dict[tuple[str, int], ConsumeQueue] = {}  # made ready, not yet taken
        self.clock = MappingClock(mapped_files_max, lock)
        # Mutated under the put lock only; read it without (by_key.get, list(...)).
        self.by_key: dict[tuple[str, int], ConsumeQueue] = {}
        # What recovery found, which a queue loaded later is checked against (start()).
        self._log_end: int | None = None
        self._min_phys: Callable[[], int] = lambda: 0
        # Delay level L's queue (SCHEDULE_TOPIC_XXXX, L-1): its appends stamp each unit with
        # the record's store time + deliver_delays[L-1], as a replica's dispatch does.
        self.deliver_delays: tuple[int, ...] = ()

    def use_lock(self, lock) -> None:
        """Guard loading and mapping with ``lock`` from now on (a shared store's view's)."""
        self._lock = lock
        self.clock.lock = lock

    def start(self, log_end: int, min_phys: Callable[[], int]) -> None:
        """Recovery found the commit log ending at log_end: the queues loaded so far drop
        units past it, and so does every queue loaded later, which cannot have been written
        since. min_phys() gives the commit log's first offset."""
        self._log_end, self._min_phys = log_end, min_phys
        for cq in self.loaded():
            self._check(cq)

    # -- lookups --------------------------------------------------------------------------
    def get(self, topic: str, queue_id: int) -> ConsumeQueue | None:
        """The queue, loaded now if it is on disk; None if it does not exist. Takes the put
        lock to load: never call it holding that lock (get_locked)."""
        cq = self.by_key.get((topic, queue_id))
        if cq is not None:
            if cq.wptr.staged:  # units puts staged (rmq_queue.stage) go to the file first
                with self._lock:
                    cq.writer.unstage()
            return cq
        if not self._on_disk(topic, queue_id):
            return None
        with self._lock:
            return self.get_locked(topic, queue_id)

    def get_locked(self, topic: str, queue_id: int) -> ConsumeQueue | None:
        """get() for a caller holding the put lock."""
        cq = self.by_key.get((topic, queue_id))
        if cq is None and self._on_disk(topic, queue_id):
            cq = self._load(topic, queue_id)
        return cq

    def for_write(self, topic: str, queue_id: int) -> ConsumeQueue:
        """The queue: the one prepare() made ready, or loaded, or created (with its
        directory). Called by the writer under the put lock, or by recovery before the store
        serves anyone."""
        key = (topic, queue_id)
        cq = self.by_key.get(key)
        if cq is not None:
            return cq
        cq = self._prepared.pop(key, None)
        if cq is not None:
            self.clock.adopt(cq.files.files[0])
            self._publish(cq)
            return cq
        cq = self.get_locked(topic, queue_id)
        if cq is None:
            cq = self._add(topic, queue_id)
            cq.files.directory.mkdir(parents=True, exist_ok=True)
        self._drop_prepared(key)  # see prepare()
        return cq

    def remove_topic(self, topic: str) -> list[ConsumeQueue]:
        """Take every loaded queue of ``topic`` out of the table (the caller holds the put
        lock, retires their files and removes the topic's directory, queues not loaded and
        all)."""
        gone = [cq for (t, _), cq in list(self.by_key.items()) if t == topic]
        for cq in gone:
            del self.by_key[cq.topic, cq.queue_id]
        for key in [k for k in self._prepared if k[0] == topic]:
            self._drop_prepared(key)
        return gone

    def close(self) -> None:
        """Close every queue (what prepare() made ready and no put took too)."""
        for cq in self.loaded():
            cq.close()
        for key in list(self._prepared):
            self._drop_prepared(key)

    def prepare(self, topic: str, queue_id: int) -> None:
        """Make a queue that does not exist yet, without the put lock: its directories and
        first file, mapped and its first page faulted in (milliseconds on a busy disk, against
        microseconds for the rest of a put), so that its first put under the lock adopts it
        ready. Check the names first."""
        key = (topic, queue_id)
        if key in self.by_key or key in self._prepared:
            return
        directory = filenames.consumequeue_dir(self._root, topic, queue_id)
        with self._creating:  # one preparer at a time: two would make two first files
            if key in self._prepared or directory.is_dir():
                return  # on disk already: for_write loads it
            directory.mkdir(parents=True, exist_ok=True)
            self._absent.discard(key)
            cq = ConsumeQueue(directory, topic, queue_id, self._units_per_file, self.clock)
            try:
                f = QueueFile.create_aside(directory / filenames.offset_name(0), 0,
                                           cq.file_size, self.clock, cq)
            except FileExistsError:
                return  # a writer made it meanwhile: that one is the queue's
            cq.files.files = [f]
            self._prepared[key] = cq
            # A writer that loaded or made the queue meanwhile published its own (and took
            # nothing from _prepared): each side writes its dict, then reads the other's.
            if key in self.by_key:
                self._drop_prepared(key)

    def _drop_prepared(self, key: tuple[str, int]) -> None:
        cq = self._prepared.pop(key, None)
        if cq is not None:
            f = cq.files.files[0]
            if f.mapping is not None:
                f.mapping.unmap()  # never counted by the clock; the file stays: it is shared
                f.mapping = None

    # -- all queues ---------------------------------------------------------------------
    def write_staged(self) -> None:
        """Every queue's staged units into its file, for a flush whose checkpoint says the
        queues are durable up to now. Takes the put lock."""
        with self._lock:
            for cq in self.by_key.values():
                if cq.wptr.staged:
                    cq.writer.unstage()

    def loaded(self) -> list[ConsumeQueue]:
        """The queues loaded so far (only they can hold anything not yet flushed)."""
        return list(self.by_key.values())

    def __iter__(self) -> Iterator[ConsumeQueue]:
        return iter(self.loaded())

    def keys(self) -> list[tuple[str, int]]:
        """Every queue, loaded or only on disk, sorted."""
        return sorted(set(self.by_key) | set(self._keys_on_disk()))

    def load_all(self) -> list[ConsumeQueue]:
        """Load every queue on disk (its cost grows with the queues: for what needs them
        all)."""
        with self._lock:
            return self.load_all_locked()

    def load_all_locked(self) -> list[ConsumeQueue]:
        """load_all() for a caller holding the put lock."""
        for topic, queue_id in self._keys_on_disk():
            self.get_locked(topic, queue_id)
        return self.loaded()

    def sweep_unloaded(self, min_phys: int) -> int:
        """Retention for the queues not loaded: their files whose units all point below
        min_phys are deleted (never a queue's last); returns how many."""
        removed = 0
        for key in self._keys_on_disk():
            with self._lock:
                if key not in self.by_key:
                    removed += delete_expired_files(
                        filenames.consumequeue_dir(self._root, *key), min_phys)
        return removed

    # -- internals ------------------------------------------------------------------------
    def _on_disk(self, topic: str, queue_id: int) -> bool:
        """Whether the queue's directory is there. Only this table makes queue directories
        (a shared store's table remembers nothing: another process may make one)."""
        if type(queue_id) is not int or queue_id < 0:
            return False
        key = (topic, queue_id)
        if key in self._absent:
            return False
        checked = self._checked_topics
        if topic not in checked:
            try:
                check_topic(topic)  # a name from a client must not walk out of consumequeue/
            except InvalidTopicError:
                return False
            _remember(checked, topic)
        if os.path.isdir(f"{self._cq_root}/{topic}/{queue_id}"):  # consumequeue_dir's path
            return True
        if self.REMEMBERS_ABSENT:
            _remember(self._absent, key)
        return False

    def _keys_on_disk(self) -> Iterator[tuple[str, int]]:
        """Queues whose directories are under consumequeue/ (directories not named as topics
        are skipped with a warning)."""
        base = filenames.consumequeue_root(self._root)
        if not base.is_dir():
            return
        for topic_dir in sorted(base.iterdir()):
            try:
                check_topic(topic_dir.name)
            except InvalidTopicError:
                log.warning("ignoring %s: not a topic name", topic_dir)
                continue
            for qdir in sorted(topic_dir.iterdir()):
                if qdir.name.isdigit():
                    yield topic_dir.name, int(qdir.name)

    def _load(self, topic: str, queue_id: int) -> ConsumeQueue:
        cq = ConsumeQueue(filenames.consumequeue_dir(self._root, topic, queue_id), topic,
                          queue_id, self._units_per_file, self.clock)
        cq.load()
        cq.recover(self.clean)
        if self._log_end is not None:
            self._check(cq)
        self._publish(cq)
        return cq

    def _check(self, cq: ConsumeQueue) -> None:
        if cq.max_phys > self._log_end:
            cq.truncate_dirty(self._log_end)
        cq.correct_min_offset(self._min_phys())

    def _add(self, topic: str, queue_id: int) -> ConsumeQueue:
        cq = ConsumeQueue(filenames.consumequeue_dir(self._root, topic, queue_id), topic,
                          queue_id, self._units_per_file, self.clock)
        self._publish(cq)
        return cq

    def set_deliver_delays(self, delays: tuple[int, ...]) -> None:
        """The delay ladder (ms per level) the delay queues' units are stamped with (the
        caller holds the put lock)."""
        self.deliver_delays = delays
        for cq in self.loaded():
            self._stamp_delay(cq)

    def _stamp_delay(self, cq: ConsumeQueue) -> None:
        if cq.topic == SCHEDULE_TOPIC:
            level = cq.queue_id
            delay = self.deliver_delays[level] if level < len(self.deliver_delays) else -1
            cq.wptr.deliver_delay_ms = delay

    def _publish(self, cq: ConsumeQueue) -> None:
        self._stamp_delay(cq)
        self.by_key[cq.topic, cq.queue_id] = cq
        self._absent.discard((cq.topic, cq.queue_id))


def _remember(kept: set, item) -> None:
    """Add item to kept, emptied first once it holds REMEMBERED items."""
    if len(kept) >= REMEMBERED:
        kept.clear()
    kept.add(item)
