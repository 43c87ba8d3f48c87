"""Topic configs, persisted as RocketMQ's config/topics.json (TopicConfigManager), in the
shape protocol/topic_config.py defines:

    {"dataVersion":{"counter":3,"timestamp":1700000000000},
     "topicConfigTable":{"TopicA":{"order":false,"perm":6,"readQueueNums":4,
       "topicFilterType":"SINGLE_TAG","topicName":"TopicA","topicSysFlag":0,"writeQueueNums":4}}}
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from .filenames import config_file
from .metadata import read_json, write_json
from .protocol.topic_config import (
    DataVersion,
    TopicConfig,
    parse_serialize_wrapper,
    serialize_wrapper,
)

FILE_NAME = "topics.json"


class TopicConfigManager:
    def __init__(self, root: Path) -> None:
        self.path = config_file(root, FILE_NAME)
        self.topics: dict[str, TopicConfig] = {}
        self._counter = 0
        self._lock = threading.Lock()

    def load(self) -> None:
        version, self.topics = parse_serialize_wrapper(read_json(self.path) or {})
        self._counter = version.counter

    def get(self, name: str) -> TopicConfig | None:
        return self.topics.get(name)

    def put(self, config: TopicConfig) -> None:
        """Create or update, and persist at once (topic changes are rare)."""
        with self._lock:
            self.topics = {**self.topics, config.name: config}
            self._counter += 1
            version = DataVersion(int(time.time() * 1000), self._counter)
            write_json(self.path, serialize_wrapper(version, self.topics))
