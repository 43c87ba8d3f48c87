"""Topic configs, persisted as RocketMQ's config/topics.json (TopicConfigManager), in the
shape protocol/topic_config.py defines:

    {"dataVersion":{"counter":3,"timestamp":1700000000000},
     "topicConfigTable":{"TopicA":{"order":false,"perm":6,"readQueueNums":4,
       "topicFilterType":"SINGLE_TAG","topicName":"TopicA","topicSysFlag":0,"writeQueueNums":4}}}

with the changes since it was last written in its journal (config_journal.py), and what puts
need of them (TopicRoutes): names checked once, configs made on a topic's first put, the queue
of a put that names none.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from .config_journal import ConfigJournal
from .errors import InvalidQueueError
from .filenames import config_file
from .metadata import read_json, write_json
from .protocol.topic_config import (
    DataVersion,
    TopicConfig,
    config_table,
    serialize_wrapper,
    wrapper_of,
)
from .record import check_topic

log = logging.getLogger(__name__)

FILE_NAME = "topics.json"
# Changes the journal holds at most before a put has topics.json written whole on a thread of
# its own (a store's housekeeping writes it every few seconds, so only a store without one, or
# thousands of creations a second, get here).
COMPACT_AFTER_CHANGES = 10_000
# Ours: {"topic": commit-log end when it was deleted}. Recovery never re-dispatches a deleted
# topic's older records into a queue (RocketMQ could, for records past every queue's end).
DELETED_FILE_NAME = "deletedTopics.json"


class TopicConfigManager:
    def __init__(self, root: Path, sync_each: bool = False) -> None:
        """sync_each: every change durable before put() returns (a store with sync flush);
        otherwise at the next sync()."""
        self.path = config_file(root, FILE_NAME)
        self._journal = ConfigJournal(self.path)
        self._sync_each = sync_each
        self._topics: dict[str, TopicConfig] = {}
        # Configs read from the files and not asked for yet, in their JSON form: making 2,500
        # TopicConfigs took most of a store's open.
        self._raw: dict[str, dict] = {}
        self.deleted_path = config_file(root, DELETED_FILE_NAME)
        self.deleted: dict[str, int] = {}
        self._counter = 0
        self._lock = threading.Lock()

    def load(self) -> None:
        obj, changes = self._journal.load()
        version, self._raw = config_table(obj or {})
        for name, value in changes:
            if isinstance(value, dict):
                self._raw[name] = value
            else:
                self._raw.pop(name, None)
        self._topics = {}
        self._counter = version.counter + len(changes)
        self.deleted = {str(k): int(v) for k, v in (read_json(self.deleted_path) or {}).items()}

    @property
    def topics(self) -> dict[str, TopicConfig]:
        """Every topic's config (a copy)."""
        for name in list(self._raw):
            self.get(name)
        return dict(self._topics)

    def get(self, name: str) -> TopicConfig | None:
        cfg = self._topics.get(name)
        if cfg is None and name in self._raw:
            with self._lock:  # a put of the same name may come in between
                value = self._raw.pop(name, None)
                if value is not None:
                    try:
                        self._topics[name] = TopicConfig.from_json(name, value)
                    except (TypeError, ValueError) as exc:
                        log.warning("%s: config of topic %r skipped: %s", self.path, name, exc)
                cfg = self._topics.get(name)
        return cfg

    def put(self, config: TopicConfig) -> None:
        """Create or update: journaled at once, durable at the next sync() (before returning
        with sync_each), written into topics.json by persist()."""
        with self._lock:
            self._topics[config.name] = config
            self._raw.pop(config.name, None)
            self._counter += 1
            self._journal.append(config.name, config.to_json())
        if self._sync_each:
            self._journal.sync()
        if self._journal.lines >= COMPACT_AFTER_CHANGES:
            self._journal.compact_soon(self.persist)

    def sync(self) -> None:
        """Make every change so far durable (the journal's)."""
        self._journal.sync()

    def persist(self) -> None:
        """Write topics.json whole, if anything changed since it was written."""
        self._journal.compact(self._snapshot)

    def close(self) -> None:
        """persist(), then let go of the journal: topics.json alone is complete."""
        self.persist()
        self._journal.close()

    def _snapshot(self) -> dict:
        """Holds every change journaled before the call (put changes the table, then
        journals). The raw table is copied first, so a config made from it meanwhile is in
        the second copy."""
        table = dict(self._raw)
        table.update((name, tc.to_json()) for name, tc in dict(self._topics).items())
        return wrapper_of(DataVersion(int(time.time() * 1000), self._counter), table)

    def remove(self, name: str, log_end: int) -> bool:
        """Forget a topic's config (a journaled deletion, synced before returning) and
        remember that its records before ``log_end`` are deleted (deletedTopics.json, written
        at once); False if it had no config."""
        with self._lock:
            self.deleted = {**self.deleted, name: log_end}
            write_json(self.deleted_path, self.deleted)
            known = self._topics.pop(name, None) is not None
            known = self._raw.pop(name, None) is not None or known
            if not known:
                return False
            self._counter += 1
            self._journal.append(name, None)
        self._journal.sync()
        return True

    def prune_deleted(self, log_start: int) -> None:
        """Forget deletions whose records retention has removed since."""
        with self._lock:
            kept = {k: v for k, v in self.deleted.items() if v > log_start}
            if kept != self.deleted:
                self.deleted = kept
                write_json(self.deleted_path, kept)

    def put_if_absent(self, config: TopicConfig) -> TopicConfig:
        """The topic's config: the one it has, else ``config``, put."""
        found = self.get(config.name)
        if found is not None:
            return found
        self.put(config)
        return config

    def replace_all(self, version: DataVersion, configs: dict[str, TopicConfig]) -> None:
        """A slave takes its master's topic configs and their version, and persists them
        (SlaveSynchronize.syncTopicConfig): topics.json written whole, the journal emptied."""
        with self._lock:
            self._topics = dict(configs)
            self._raw = {}
            self._counter = version.counter
            self._journal.rewrite(lambda: serialize_wrapper(version, configs))


class TopicRoutes:
    """Where puts go, for the writer: a topic's name is checked (RocketMQ's rule) and its
    config made (``default_queue_nums`` queues) on its first put, and a put without a queue
    takes the topic's write queues in turn. ``next_queue`` runs under the put lock; the
    others from any thread (a set add, and the configs' own lock)."""

    def __init__(self, configs: TopicConfigManager, default_queue_nums: int) -> None:
        self._configs = configs
        self._default_queue_nums = default_queue_nums
        self.admitted: set[str] = set()  # valid names that have a config: the one name cache
        self._round_robin: dict[str, int] = {}

    def validate(self, topic: str) -> None:
        """InvalidTopicError unless topic follows RocketMQ's rule; an admitted topic passes
        without a check."""
        if topic not in self.admitted:
            check_topic(topic)

    def admit(self, topic: str) -> None:
        """A topic's first put: check the name, make its config if it has none."""
        check_topic(topic)
        if self._configs.get(topic) is None:
            n = self._default_queue_nums
            self._configs.put_if_absent(TopicConfig(topic, n, n))
        self.admitted.add(topic)

    def forget(self, topic: str) -> None:
        """A deleted topic: its next put admits it again."""
        self.admitted.discard(topic)
        self._round_robin.pop(topic, None)

    def check_queue(self, topic: str, queue_id: int) -> None:
        """InvalidQueueError unless queue_id is one of the topic's queues: 0 <= id < the larger
        of its read and write queue counts (SendMessageProcessor.msgCheck). Without the check a
        put to queue -1 was acknowledged, then lost at the next open, which loads only queue
        directories named by digits."""
        cfg = self._configs.get(topic)
        n = max(cfg.read_queue_nums, cfg.write_queue_nums) if cfg else self._default_queue_nums
        if type(queue_id) is not int or not 0 <= queue_id < n:
            raise InvalidQueueError(f"queue id {queue_id!r} is not one of {topic}'s {n} queues "
                                    f"(0..{n - 1}); create_topic sets the count")

    def single_queue(self, topic: str) -> bool:
        cfg = self._configs.get(topic)
        return cfg is None or cfg.write_queue_nums == 1

    def peek_queue(self, topic: str) -> int:
        """The queue next_queue would give now (a hint: another put may take it first)."""
        cfg = self._configs.get(topic)
        n = cfg.write_queue_nums if cfg else 1
        return 0 if n == 1 else (self._round_robin.get(topic, -1) + 1) % n

    def next_queue(self, topic: str) -> int:
        cfg = self._configs.get(topic)
        n = cfg.write_queue_nums if cfg else 1
        if n == 1:
            return 0
        i = self._round_robin.get(topic, -1) + 1
        self._round_robin[topic] = i
        return i % n
