"""The broker's view of topic configs: defaults at start, auto-creation, the registration body.

Configs live in the store's TopicConfigManager (config/topics.json); this adds what the Java
broker's TopicConfigManager does on top: the system topics, TBW102 auto-creation
(createTopicInSendMessageMethod), retry/DLQ topics, a DataVersion for the NameServer, and a
callback so that every change is registered with the NameServers at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable

from ...protocol.topic_config import DataVersion, TopicConfig, serialize_wrapper
from ...store import MessageStore
from ...topic_validator import AUTO_CREATE_TOPIC, OFFSET_MOVED_EVENT, SELF_TEST_TOPIC

log = logging.getLogger(__name__)

PERM_INHERIT = 0x1
PERM_WRITE = 0x2
PERM_READ = 0x4
RETRY_PREFIX = "%RETRY%"
DLQ_PREFIX = "%DLQ%"


class BrokerTopics:
    def __init__(self, store: MessageStore,
                 on_change: Callable[[], asyncio.Future[None] | None]) -> None:
        self._store = store
        self._on_change = on_change
        self._counter = 0
        self._timestamp = _now_ms()
        self._registering: asyncio.Future[None] | None = None

    @property
    def version(self) -> int:
        """DataVersion counter: changes with every topic config put."""
        return self._counter

    async def registered(self, timeout_s: float) -> None:
        """Wait (at most timeout_s) until the NameServers know every change made so far:
        a request that created a topic answers after that, as in Java."""
        pending = self._registering
        if pending is None or pending.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(pending), timeout_s)
        except TimeoutError:
            log.warning("topic change not registered with the name servers in %.1f s", timeout_s)

    def get(self, topic: str) -> TopicConfig | None:
        return self._store.topics.get(topic)

    def put(self, config: TopicConfig) -> None:
        """Create or update (persisted by the store), bump the data version, register."""
        self._store.topics.put(config)
        log.info("topic config %s: read %d write %d perm %d", config.name,
                 config.read_queue_nums, config.write_queue_nums, config.perm)
        self._changed()

    def delete(self, topic: str) -> bool:
        """Delete a topic and its files (the store's delete_topic), bump the data version and
        register; False if there was nothing to delete."""
        deleted = self._store.delete_topic(topic)
        self._changed()
        log.info("topic %s deleted", topic)
        return deleted

    def touch(self) -> None:
        """Something the registration body reflects changed (the broker's permission)."""
        self._changed()

    def _changed(self) -> None:
        self._counter += 1
        self._timestamp = _now_ms()
        self._registering = self._on_change() or self._registering

    def ensure_defaults(self, cluster: str, broker: str, auto_create: bool,
                        default_queue_nums: int) -> None:
        """The topics a Java broker has from its first start (TopicConfigManager's constructor)."""
        wanted = [TopicConfig(SELF_TEST_TOPIC, 1, 1), TopicConfig(OFFSET_MOVED_EVENT, 1, 1),
                  TopicConfig(cluster, 16, 16, perm=PERM_INHERIT | PERM_READ | PERM_WRITE),
                  TopicConfig(broker, 1, 1, perm=PERM_INHERIT | PERM_READ | PERM_WRITE)]
        for cfg in wanted:
            if self.get(cfg.name) is None:
                self.put(cfg)
        tbw = self.get(AUTO_CREATE_TOPIC)
        if auto_create and tbw is None:
            self.put(TopicConfig(AUTO_CREATE_TOPIC, default_queue_nums, default_queue_nums,
                                 perm=PERM_INHERIT | PERM_READ | PERM_WRITE))
        elif not auto_create and tbw is not None and tbw.perm & PERM_INHERIT:
            # autoCreateTopicEnable=false: TBW102 stays but can no longer be inherited.
            self.put(TopicConfig(tbw.name, tbw.read_queue_nums, tbw.write_queue_nums,
                                 perm=tbw.perm & ~PERM_INHERIT, order=tbw.order))

    def create_from_default(self, topic: str, default_topic: str,
                            queue_nums: int) -> TopicConfig | None:
        """createTopicInSendMessageMethod: inherit from default_topic if it allows it."""
        existing = self.get(topic)
        if existing is not None:
            return existing
        base = self.get(default_topic)
        if base is None or not base.perm & PERM_INHERIT:
            return None
        n = max(1, min(queue_nums, base.write_queue_nums))
        cfg = TopicConfig(topic, n, n, perm=base.perm & ~PERM_INHERIT)
        self.put(cfg)
        return cfg

    def ensure_system(self, topic: str, queue_nums: int = 1) -> TopicConfig:
        """A retry or DLQ topic (createTopicInSendMessageBackMethod): created when missing."""
        cfg = self.get(topic)
        if cfg is None:
            cfg = TopicConfig(topic, queue_nums, queue_nums, perm=PERM_READ | PERM_WRITE)
            self.put(cfg)
        return cfg

    def all_configs(self) -> dict[str, TopicConfig]:
        return self._store.topics.topics

    def registered_configs(self, broker_permission: int) -> dict[str, TopicConfig]:
        """What REGISTER_BROKER carries: a broker that may not be read or written passes the
        restriction on to every topic's perm (BrokerController.registerBrokerAll)."""
        configs = self.all_configs()
        if broker_permission & (PERM_READ | PERM_WRITE) == PERM_READ | PERM_WRITE:
            return configs
        return {name: dataclasses.replace(cfg, perm=cfg.perm & broker_permission)
                for name, cfg in configs.items()}

    def serialize_wrapper(self) -> dict:
        """TopicConfigSerializeWrapper, as GET_ALL_TOPIC_CONFIG carries it."""
        return serialize_wrapper(self.data_version(), self.all_configs())

    def data_version(self) -> DataVersion:
        return DataVersion(self._timestamp, self._counter)


def _now_ms() -> int:
    return int(time.time() * 1000)
