"""ConsumeQueueTable: every consume queue of a store, by (topic, queue id)
(DefaultMessageStore.consumeQueueTable).

The map is copy-on-write: a new queue publishes a new dict, so the reader and the long-polling
wait look queues up without a lock while the writer (under the put lock) or recovery adds one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from . import filenames
from .consumequeue import ConsumeQueue
from .errors import InvalidTopicError
from .record import check_topic

log = logging.getLogger(__name__)


class ConsumeQueueTable:
    def __init__(self, root: Path, units_per_file: int) -> None:
        self._root = root
        self._units_per_file = units_per_file
        # Never mutated once published; read it as a whole (``by_key``) for a consistent view.
        self.by_key: dict[tuple[str, int], ConsumeQueue] = {}

    def load(self) -> None:
        """Open the queues found under consumequeue/ (directories not named as topics are
        skipped with a warning)."""
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
                    self._add(topic_dir.name, int(qdir.name)).load()

    def get(self, topic: str, queue_id: int) -> ConsumeQueue | None:
        return self.by_key.get((topic, queue_id))

    def for_write(self, topic: str, queue_id: int) -> ConsumeQueue:
        """The queue, created (with its directory) if it does not exist yet. Called by the
        writer under the put lock, or by recovery before the store serves anyone."""
        cq = self.by_key.get((topic, queue_id))
        if cq is None:
            cq = self._add(topic, queue_id)
            cq.files.directory.mkdir(parents=True, exist_ok=True)
        return cq

    def remove_topic(self, topic: str) -> list[ConsumeQueue]:
        """Take every queue of ``topic`` out of the table (the caller holds the put lock and
        retires their files)."""
        gone = [cq for (t, _), cq in self.by_key.items() if t == topic]
        if gone:
            self.by_key = {k: v for k, v in self.by_key.items() if k[0] != topic}
        return gone

    def __iter__(self) -> Iterator[ConsumeQueue]:
        return iter(list(self.by_key.values()))

    def _add(self, topic: str, queue_id: int) -> ConsumeQueue:
        cq = ConsumeQueue(filenames.consumequeue_dir(self._root, topic, queue_id), topic,
                          queue_id, self._units_per_file)
        self.by_key = {**self.by_key, (topic, queue_id): cq}
        return cq
