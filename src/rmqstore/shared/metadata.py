"""Topic configs and consumer offsets of a shared store.

topics.json and its journal (config_journal.py) stay the one home of topic configs: a process
journals a change under the control file's meta mutex after reading what the others wrote, and
bumps topics_gen; the others reload them when they see the generation move. Consumer offsets
live in the control file's offset slots, where a commit is one store to one word (two
processes cannot lose each other's commits by writing a whole table back);
config/consumerOffset.json is written from them by the process running the background
services, by a sync-flush commit, and by the last process to close.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .. import _native
from ..metadata import write_json
from ..offsets import ConsumerOffsetManager
from ..protocol.topic_config import TopicConfig
from ..topics import TopicConfigManager
from . import control as c
from .control import Control


@contextmanager
def meta_mutex(ctl: Control) -> Iterator[None]:
    """The control file's meta mutex (nothing to repair after a holder's death: every file it
    guards is replaced by rename)."""
    mutex = ctl.address(c.META_MUTEX)
    _native.mutex_lock(mutex, _native.NULL, -1)
    try:
        yield
    finally:
        _native.mutex_unlock(mutex)


class SharedTopics(TopicConfigManager):
    def __init__(self, root: Path, ctl: Control, sync_each: bool = False) -> None:
        super().__init__(root, sync_each)
        self._ctl = ctl
        self._gen = -1
        self._gen_at = c.TOPICS_GEN // 4

    def load(self) -> None:
        gen = self._ctl.u32[self._gen_at]  # read first: a write after it reloads again
        super().load()
        self._gen = gen

    def get(self, name: str) -> TopicConfig | None:
        if self._ctl.u32[self._gen_at] != self._gen:
            self.load()
        return super().get(name)

    def put(self, config: TopicConfig) -> None:
        with meta_mutex(self._ctl):
            self._reload_if_moved()
            super().put(config)
            self._published()

    def put_if_absent(self, config: TopicConfig) -> TopicConfig:
        with meta_mutex(self._ctl):
            self._reload_if_moved()
            found = super().get(config.name)
            if found is not None:
                return found
            super().put(config)
            self._published()
        return config

    def remove(self, name: str, log_end: int) -> bool:
        with meta_mutex(self._ctl):
            self._reload_if_moved()
            removed = super().remove(name, log_end)
            if removed:
                self._published()
        return removed

    def persist(self) -> None:
        """Write topics.json whole from every process's changes (the journal they share)."""
        with meta_mutex(self._ctl):
            self._reload_if_moved()
            super().persist()

    def _reload_if_moved(self) -> None:
        if self._ctl.u32[self._gen_at] != self._gen:
            self.load()

    def _published(self) -> None:
        self._ctl.bump(c.TOPICS_GEN)
        self._gen = self._ctl.u32[self._gen_at]


class SharedOffsets(ConsumerOffsetManager):
    def __init__(self, root: Path, ctl: Control) -> None:
        super().__init__(root)
        self._ctl = ctl
        self._persisted: list | None = None
        # (group, topic, queue id) -> its slot's offset: a slot, once used, is never freed or
        # moved, so a commit looks it up once, not per message
        self._slots: dict[tuple[str, str, int], int] = {}

    def load(self) -> None:
        """Offsets are read from the control file (publish() put them there)."""

    def publish(self) -> None:
        """The first opener: consumerOffset.json into the control file."""
        super().load()
        for key, queues in self._table.items():
            for queue_id, offset in queues.items():
                self._ctl.find_offset(key, queue_id, create_at=offset)
        self._table = {}

    def commit(self, group: str, topic: str, queue_id: int, offset: int) -> None:
        at = self._slot(group, topic, queue_id)
        if at is None:
            with meta_mutex(self._ctl):
                at = self._ctl.find_offset(f"{topic}@{group}", queue_id, create_at=offset)
            self._slots[group, topic, queue_id] = at
        self._ctl.set_word(at, offset)

    def committed(self, group: str, topic: str, queue_id: int) -> int | None:
        at = self._slot(group, topic, queue_id)
        return None if at is None else self._ctl.word(at)

    def _slot(self, group: str, topic: str, queue_id: int) -> int | None:
        at = self._slots.get((group, topic, queue_id))
        if at is None:
            at = self._ctl.find_offset(f"{topic}@{group}", queue_id)
            if at is not None:
                self._slots[group, topic, queue_id] = at
        return at

    def persist(self) -> None:
        """Write consumerOffset.json from the control file, if it changed."""
        with meta_mutex(self._ctl):
            rows = sorted(self._ctl.offsets())
            if rows == self._persisted:
                return
            table: dict[str, dict[int, int]] = {}
            for key, queue_id, offset in rows:
                table.setdefault(key, {})[queue_id] = offset
            write_json(self.path, {"offsetTable": table})
            self._persisted = rows
