"""Subscription-group configs, persisted as RocketMQ's config/subscriptionGroup.json
(SubscriptionGroupManager):

    {"dataVersion":{"counter":2,"timestamp":1700000000000},
     "subscriptionGroupTable":{"G1":{"brokerId":0,"consumeBroadcastEnable":true,
       "consumeEnable":true,"consumeFromMinEnable":true,"groupName":"G1",
       "notifyConsumerIdsChangedEnable":true,"retryMaxTimes":16,"retryQueueNums":1,
       "whichBrokerWhenConsumeSlowly":1}}}

Groups are created on first heartbeat or pull when autoCreateSubscriptionGroup is on, or by
UPDATE_AND_CREATE_SUBSCRIPTIONGROUP. Unknown JSON keys of a group are kept as they were.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ...errors import InvalidTopicError
from ...filenames import config_file
from ...metadata import read_json, write_json
from ...topic_validator import check_group

log = logging.getLogger(__name__)

FILE_NAME = "subscriptionGroup.json"


def default_group(name: str) -> dict:
    """SubscriptionGroupConfig's defaults."""
    return {"groupName": name, "consumeEnable": True, "consumeFromMinEnable": True,
            "consumeBroadcastEnable": True, "retryQueueNums": 1, "retryMaxTimes": 16,
            "brokerId": 0, "whichBrokerWhenConsumeSlowly": 1,
            "notifyConsumerIdsChangedEnable": True}


class SubscriptionGroupManager:
    """Runs on the event loop thread; a change is written at once (groups change rarely)."""

    def __init__(self, root: Path, auto_create: bool) -> None:
        self.path = config_file(root, FILE_NAME)
        self.auto_create = auto_create
        self._groups: dict[str, dict] = {}
        self._counter = 0

    def load(self) -> None:
        data = read_json(self.path) or {}
        self._counter = int(data.get("dataVersion", {}).get("counter", 0))
        self._groups = {name: {**default_group(name), **cfg}
                        for name, cfg in data.get("subscriptionGroupTable", {}).items()}

    def get(self, group: str) -> dict | None:
        return self._groups.get(group)

    def find_or_create(self, group: str) -> dict | None:
        """The group's config; created with defaults when missing, auto-create is on and the
        name is a group name (Validators.checkGroup): a client's junk is never persisted."""
        cfg = self._groups.get(group)
        if cfg is None and self.auto_create and _valid_name(group):
            cfg = self.put(default_group(group))
        return cfg

    def put(self, config: dict) -> dict:
        name = config["groupName"]
        cfg = {**default_group(name), **config}
        self._groups[name] = cfg
        self._persist()
        log.info("subscription group %s saved", name)
        return cfg

    def delete(self, group: str) -> bool:
        """SubscriptionGroupManager.deleteSubscriptionGroupConfig; False if it was unknown."""
        if self._groups.pop(group, None) is None:
            return False
        self._persist()
        log.info("subscription group %s deleted", group)
        return True

    def adopt(self, table: dict[str, dict]) -> bool:
        """A slave takes its master's groups when they differ from its own
        (SlaveSynchronize.syncSubscriptionGroupConfig); returns whether it did."""
        groups = {name: {**default_group(name), **cfg} for name, cfg in table.items()}
        if groups == self._groups:
            return False
        self._groups = groups
        self._persist()
        log.info("subscription groups of the master taken: %d groups", len(groups))
        return True

    def all(self) -> dict:
        return {"dataVersion": self._version(), "subscriptionGroupTable": dict(self._groups)}

    def _version(self) -> dict:
        return {"counter": self._counter, "timestamp": int(time.time() * 1000)}

    def _persist(self) -> None:
        self._counter += 1
        write_json(self.path, self.all())


def _valid_name(group: str) -> bool:
    try:
        check_group(group)
    except InvalidTopicError as exc:
        log.warning("subscription group not created: %s", exc)
        return False
    return True
