"""Topic configs, persisted as RocketMQ's config/topics.json (TopicConfigManager), in the
shape protocol/topic_config.py defines:

    {"dataVersion":{"counter":3,"timestamp":1700000000000},
     "topicConfigTable":{"TopicA":{"order":false,"perm":6,"readQueueNums":4,
       "topicFilterType":"SINGLE_TAG","topicName":"TopicA","topicSysFlag":0,"writeQueueNums":4}}}

and what puts need of them (TopicRoutes): names checked once, configs made on a topic's first
put, the queue of a put that names none.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from .errors import InvalidQueueError
from .filenames import config_file
from .metadata import read_json, write_json
from .protocol.topic_config import (
    DataVersion,
    TopicConfig,
    parse_serialize_wrapper,
    serialize_wrapper,
)
from .record import check_topic

FILE_NAME = "topics.json"
# Ours: {"topic": commit-log end when it was deleted}. Recovery never re-dispatches a deleted
# topic's older records into a queue (RocketMQ could, for records past every queue's end).
DELETED_FILE_NAME = "deletedTopics.json"


class TopicConfigManager:
    def __init__(self, root: Path) -> None:
        self.path = config_file(root, FILE_NAME)
        self.deleted_path = config_file(root, DELETED_FILE_NAME)
        self.topics: dict[str, TopicConfig] = {}
        self.deleted: dict[str, int] = {}
        self._counter = 0
        self._lock = threading.Lock()

    def load(self) -> None:
        version, self.topics = parse_serialize_wrapper(read_json(self.path) or {})
        self._counter = version.counter
        self.deleted = {str(k): int(v) for k, v in (read_json(self.deleted_path) or {}).items()}

    def get(self, name: str) -> TopicConfig | None:
        return self.topics.get(name)

    def put(self, config: TopicConfig) -> None:
        """Create or update, and persist at once (topic changes are rare)."""
        with self._lock:
            self.topics = {**self.topics, config.name: config}
            self._persist()

    def remove(self, name: str, log_end: int) -> bool:
        """Forget a topic's config and remember that its records before ``log_end`` are
        deleted (both persisted at once); False if it had no config."""
        with self._lock:
            self.deleted = {**self.deleted, name: log_end}
            write_json(self.deleted_path, self.deleted)
            if name not in self.topics:
                return False
            self.topics = {k: v for k, v in self.topics.items() if k != name}
            self._persist()
            return True

    def prune_deleted(self, log_start: int) -> None:
        """Forget deletions whose records retention has removed since."""
        with self._lock:
            kept = {k: v for k, v in self.deleted.items() if v > log_start}
            if kept != self.deleted:
                self.deleted = kept
                write_json(self.deleted_path, kept)

    def _persist(self) -> None:
        """A new data version and the file; under the lock."""
        self._counter += 1
        version = DataVersion(int(time.time() * 1000), self._counter)
        write_json(self.path, serialize_wrapper(version, self.topics))

    def put_if_absent(self, config: TopicConfig) -> TopicConfig:
        """The topic's config: the one it has, else ``config``, persisted."""
        with self._lock:
            found = self.topics.get(config.name)
        if found is not None:
            return found
        self.put(config)
        return config

    def replace_all(self, version: DataVersion, configs: dict[str, TopicConfig]) -> None:
        """A slave takes its master's topic configs and their version, and persists them
        (SlaveSynchronize.syncTopicConfig)."""
        with self._lock:
            self.topics = dict(configs)
            self._counter = version.counter
            write_json(self.path, serialize_wrapper(version, self.topics))


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

    def next_queue(self, topic: str) -> int:
        cfg = self._configs.get(topic)
        n = cfg.write_queue_nums if cfg else 1
        if n == 1:
            return 0
        i = self._round_robin.get(topic, -1) + 1
        self._round_robin[topic] = i
        return i % n
