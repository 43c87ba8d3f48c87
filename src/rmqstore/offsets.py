"""Consumer offsets, persisted as RocketMQ's config/consumerOffset.json:

    {"offsetTable":{"TopicA@GroupX":{0:120,1:98}}}

key "topic@group", value: per queue id, the next queue offset to consume.
"""

from __future__ import annotations

import threading
from pathlib import Path

from .filenames import config_file
from .metadata import read_json, write_json

FILE_NAME = "consumerOffset.json"


class ConsumerOffsetManager:
    def __init__(self, root: Path) -> None:
        self.path = config_file(root, FILE_NAME)
        self._table: dict[str, dict[int, int]] = {}
        self._lock = threading.Lock()
        self._dirty = False

    def load(self) -> None:
        data = read_json(self.path) or {}
        table = data.get("offsetTable", {})
        self._table = {key: {int(q): int(o) for q, o in queues.items()}
                       for key, queues in table.items()}

    def commit(self, group: str, topic: str, queue_id: int, offset: int) -> None:
        with self._lock:
            self._table.setdefault(f"{topic}@{group}", {})[queue_id] = offset
            self._dirty = True

    def committed(self, group: str, topic: str, queue_id: int) -> int | None:
        with self._lock:
            return self._table.get(f"{topic}@{group}", {}).get(queue_id)

    def keys(self) -> list[tuple[str, str]]:
        """(topic, group) of every entry, copied: what each group has committed offsets of."""
        with self._lock:
            keys = list(self._table)
        return [(topic, group) for topic, _, group in (k.partition("@") for k in keys)]

    def remove(self, *, topic: str | None = None, group: str | None = None) -> int:
        """Drop the offsets of a topic (every group) or of a group (every topic)
        (cleanOffsetByTopic, removeOffset); returns how many topic@group entries went."""
        with self._lock:
            gone = [key for key in self._table
                    if (topic is not None and key.split("@", 1)[0] == topic)
                    or (group is not None and key.split("@", 1)[1:] == [group])]
            for key in gone:
                del self._table[key]
            self._dirty = self._dirty or bool(gone)
            return len(gone)

    def table(self) -> dict[str, dict[int, int]]:
        """A copy of every committed offset, "topic@group" -> queue id -> offset
        (ConsumerOffsetSerializeWrapper's offsetTable, what GET_ALL_CONSUMER_OFFSET answers)."""
        with self._lock:
            return {key: dict(queues) for key, queues in self._table.items()}

    def adopt(self, table: dict[str, dict[int, int]]) -> None:
        """A slave takes its master's offsets: each topic@group given replaces its own
        (SlaveSynchronize.syncConsumerOffset: offsetTable.putAll); others stay."""
        with self._lock:
            for key, queues in table.items():
                self._table[key] = {int(q): int(o) for q, o in queues.items()}
            self._dirty = True

    def persist(self) -> None:
        """Write the table if it changed (atomic; see metadata.write_json)."""
        with self._lock:
            if not self._dirty:
                return
            snapshot = {key: dict(q) for key, q in self._table.items()}
            self._dirty = False
            # Written under the lock so two persists never race on the tmp file.
            write_json(self.path, {"offsetTable": snapshot})
