"""The broker's view of topic configs: defaults at start, auto-creation, the registration body.

Configs live in the store's TopicConfigManager (config/topics.json); this adds what the Java
broker's TopicConfigManager does on top: the system topics, TBW102 auto-creation
(createTopicInSendMessageMethod), retry/DLQ topics, a DataVersion for the NameServer, and a
callback so that every change is registered with the NameServers at once.

Caps (TopicCaps; RocketMQ has none): every queue a client makes the broker write costs a file, a
descriptor and a mapping, so topics, queues per topic and queues in all are bounded. A change
beyond a cap raises TopicLimitExceeded, which the request that caused it gets as its answer.
The broker's own topics (the defaults and its services' topics) are not held to the per-topic
cap, which a client's topics are, but count towards the totals.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ...net import RequestRefused
from ...protocol import ResponseCode
from ...protocol.topic_config import DataVersion, TopicConfig, serialize_wrapper
from ...store import MessageStore
from ...topic_validator import AUTO_CREATE_TOPIC, OFFSET_MOVED_EVENT, SELF_TEST_TOPIC

log = logging.getLogger(__name__)

PERM_INHERIT = 0x1
PERM_WRITE = 0x2
PERM_READ = 0x4
RETRY_PREFIX = "%RETRY%"
DLQ_PREFIX = "%DLQ%"


class TopicLimitExceeded(RequestRefused):
    """A topic change beyond a TopicCaps cap; nothing was changed."""

    def __init__(self, remark: str) -> None:
        super().__init__(ResponseCode.SYSTEM_ERROR, remark)


@dataclass(frozen=True, slots=True)
class TopicCaps:
    queues_per_topic: int = 256  # maxQueueNumsPerTopic: read and write queue nums each
    topics: int = 4096  # maxTopicNums
    queues_total: int = 8192  # maxQueueNumsPerBroker: max(read, write) summed over topics

    def check_queue_nums(self, config: TopicConfig) -> None:
        n = max(config.read_queue_nums, config.write_queue_nums)
        if n > self.queues_per_topic:
            raise TopicLimitExceeded(
                f"topic[{config.name}] asks for {n} queues; at most {self.queues_per_topic} "
                "per topic (maxQueueNumsPerTopic)")

    def check_totals(self, config: TopicConfig, configs: Mapping[str, TopicConfig]) -> None:
        old = configs.get(config.name)
        if old is None and len(configs) >= self.topics:
            raise TopicLimitExceeded(f"topic[{config.name}] not created: the broker has "
                                     f"{len(configs)} topics, its limit (maxTopicNums)")
        total = sum(_queues(c) for c in configs.values())
        grown = total - (_queues(old) if old is not None else 0) + _queues(config)
        if grown > total and grown > self.queues_total:
            raise TopicLimitExceeded(
                f"topic[{config.name}] not changed: the broker would have {grown} queues; "
                f"at most {self.queues_total} (maxQueueNumsPerBroker)")


def _queues(config: TopicConfig) -> int:
    return max(config.read_queue_nums, config.write_queue_nums)


class BrokerTopics:
    def __init__(self, store: MessageStore,
                 on_change: Callable[[], asyncio.Future[None] | None],
                 caps: TopicCaps = TopicCaps()) -> None:
        self._store = store
        self._on_change = on_change
        self.caps = caps
        self._counter = 0
        self._timestamp = _now_ms()
        self._state_version = 0
        self._registering: asyncio.Future[None] | None = None
        self._listeners: list[Callable[[], None]] = []

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
        """Create or update a client's topic (persisted by the store), bump the data version,
        register. TopicLimitExceeded past a cap."""
        self.caps.check_queue_nums(config)
        self._put_own(config)

    def _put_own(self, config: TopicConfig) -> None:
        """put() for the broker's own topics: held to the totals, not the per-topic cap."""
        self.caps.check_totals(config, self._store.topics.topics)
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

    def listen(self, callback: Callable[[], None]) -> None:
        """Call callback() after every change of a topic config or of the broker's
        permission (the native send path's fast table is emptied by it)."""
        self._listeners.append(callback)

    def _changed(self) -> None:
        self._counter += 1
        self._timestamp = _now_ms()
        self._told()

    def _told(self) -> None:
        for callback in self._listeners:
            callback()
        self._registering = self._on_change() or self._registering

    def ensure_defaults(self, cluster: str, broker: str, auto_create: bool,
                        default_queue_nums: int) -> None:
        """The topics a Java broker has from its first start (TopicConfigManager's constructor)."""
        wanted = [TopicConfig(SELF_TEST_TOPIC, 1, 1), TopicConfig(OFFSET_MOVED_EVENT, 1, 1),
                  TopicConfig(cluster, 16, 16, perm=PERM_INHERIT | PERM_READ | PERM_WRITE),
                  TopicConfig(broker, 1, 1, perm=PERM_INHERIT | PERM_READ | PERM_WRITE)]
        for cfg in wanted:
            if self.get(cfg.name) is None:
                self._put_own(cfg)
        tbw = self.get(AUTO_CREATE_TOPIC)
        if auto_create and tbw is None:
            self._put_own(TopicConfig(AUTO_CREATE_TOPIC, default_queue_nums, default_queue_nums,
                                      perm=PERM_INHERIT | PERM_READ | PERM_WRITE))
        elif not auto_create and tbw is not None and tbw.perm & PERM_INHERIT:
            # autoCreateTopicEnable=false: TBW102 stays but can no longer be inherited.
            self._put_own(TopicConfig(tbw.name, tbw.read_queue_nums, tbw.write_queue_nums,
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
        n = max(1, min(queue_nums, base.write_queue_nums, self.caps.queues_per_topic))
        cfg = TopicConfig(topic, n, n, perm=base.perm & ~PERM_INHERIT)
        self.put(cfg)
        return cfg

    def ensure_system(self, topic: str, queue_nums: int = 1) -> TopicConfig:
        """A retry or DLQ topic (createTopicInSendMessageBackMethod), or a service's own
        topic: created when missing. A group's retry and DLQ topics are the clients' (their
        names and retryQueueNums come from requests), held to every cap."""
        cfg = self.get(topic)
        if cfg is None:
            cfg = TopicConfig(topic, queue_nums, queue_nums, perm=PERM_READ | PERM_WRITE)
            if topic.startswith((RETRY_PREFIX, DLQ_PREFIX)):
                self.put(cfg)
            else:
                self._put_own(cfg)
        return cfg

    def adopt(self, version: DataVersion, configs: dict[str, TopicConfig]) -> bool:
        """A slave takes its master's configs when their version differs from its own
        (SlaveSynchronize.syncTopicConfig); returns whether it did."""
        if (version.timestamp, version.counter) == (self._timestamp, self._counter):
            return False
        self._store.topics.replace_all(version, configs)
        self._timestamp, self._counter = version.timestamp, version.counter
        self._state_version = max(self._state_version, version.state_version)
        self._told()
        log.info("topic configs of the master taken: %d topics, version %d", len(configs),
                 version.counter)
        return True

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
        return DataVersion(self._timestamp, self._counter, self._state_version)

    def next_version(self, state_version: int) -> None:
        """DataVersion.nextVersion(stateVersion): a controller-mode role change under a new
        master epoch, which the NameServer compares (RouteInfoManager.registerBroker)."""
        self._state_version = state_version
        self._counter += 1
        self._timestamp = _now_ms()


def _now_ms() -> int:
    return int(time.time() * 1000)
