"""The broker's configuration as GET_BROKER_CONFIG (26) shows it and UPDATE_BROKER_CONFIG (25)
changes it (AdminBrokerProcessor.getBrokerConfig / updateBrokerConfig of rocketmq-all-4.9.7).

26 shows every key the broker honours, under RocketMQ's name, with its value in force; never a
secret (aclSecretKey is left out).

25 changes only the keys of RUNTIME_KEYS, an allow-list: each value is read by the same type as
in broker.conf and takes effect at the next request that reads it. Any other key, RocketMQ's
blacklist (rocketmqHome, brokerConfigPath, configBlackList: CVE-2023-33246 and CVE-2023-37582
set them to run a command or write a file) and every path, address, port, security or store key
with it, is refused with NO_PERMISSION and nothing changes: an update is all or nothing. A
change lasts until the broker restarts (put it in broker.conf to keep it); Java would rewrite
the -c file with every key it knows.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Mapping

from ...config import StoreConfig
from ...protocol import ResponseCode
from ..acl.settings import ROCKETMQ_HOME_ENV
from .config import _KEYS, STORE_PREFIX, BrokerConfig

log = logging.getLogger(__name__)

# Keys 25 may change, each read per request by the code that acts on it.
RUNTIME_KEYS = frozenset({
    "brokerPermission", "autoCreateTopicEnable", "autoCreateSubscriptionGroup",
    "longPollingEnable", "shortPollingTimeMills", "maxTransferCountOnMessageInMemory",
    "maxTransferBytesOnMessageInMemory", "enablePropertyFilter", "registerNameServerPeriod",
    "fileReservedTime", "diskMaxUsedSpaceRatio",
})
SECRET_KEYS = frozenset({"aclSecretKey"})
BLACKLIST_REMARK = "Can not update config in black list."  # RocketMQ's remark

# How a value in force is written back as broker.conf text, where it is not str(value).
_SHOWN: dict[str, Callable[[object], str]] = {
    "flushDiskType": lambda v: "SYNC_FLUSH" if v else "ASYNC_FLUSH",
    "namesrvAddr": lambda v: ";".join(v),  # type: ignore[arg-type]
    "mappedFileSizeConsumeQueue": lambda v: str(int(v) * 20),  # type: ignore[call-overload]
    "diskMaxUsedSpaceRatio": lambda v: str(round(float(v) * 100)),  # type: ignore[arg-type]
}


class UpdateRefused(Exception):
    """An update that changes nothing: ``code`` is NO_PERMISSION or SYSTEM_ERROR."""

    def __init__(self, code: int, remark: str) -> None:
        super().__init__(remark)
        self.code = code


class RuntimeConfig:
    """The config of one running broker: what it shows, and the changes it takes. ``apply``
    is the one place a broker's config changes after start; hooks bring the change to what
    copied the value at start (the store's retention, the group manager)."""

    def __init__(self, config: BrokerConfig, store: StoreConfig,
                 hooks: Mapping[str, Callable[[object], None]]) -> None:
        self._config = config
        self._store = store
        self._hooks = hooks
        self.version_counter = 0
        self.version_ms = int(time.time() * 1000)

    def properties(self) -> dict[str, str]:
        """Every honoured key with its value in force, secrets left out."""
        out: dict[str, str] = {}
        for key, (name, _) in _KEYS.items():
            if key in SECRET_KEYS:
                continue
            if name.startswith(STORE_PREFIX):
                value = getattr(self._store, name[len(STORE_PREFIX):])
            elif hasattr(self._store, name):  # given to the store, which may have been told
                value = getattr(self._store, name)  # otherwise (serve --store)
            else:
                value = getattr(self._config, name)
            out[key] = "" if value is None else _SHOWN.get(key, _java_text)(value)
        c = self._config
        out["haListenPort"] = out["haListenPort"] or str(c.listen_port + 1)
        out["storePathCommitLog"] = out["storePathCommitLog"] or str(c.store_root / "commitlog")
        out["rocketmqHome"] = out["rocketmqHome"] or os.environ.get(ROCKETMQ_HOME_ENV, "")
        return out

    def version(self) -> dict[str, int]:
        """The DataVersion of the configuration (Configuration.getDataVersionJson)."""
        return {"counter": self.version_counter, "timestamp": self.version_ms}

    def apply(self, items: Mapping[str, str], who: str) -> None:
        """Change every key of ``items`` or none; UpdateRefused says why not."""
        changes: dict[str, object] = {}
        for key, raw in items.items():
            if key not in RUNTIME_KEYS:
                raise UpdateRefused(ResponseCode.NO_PERMISSION,
                                    f"{BLACKLIST_REMARK} {key} cannot change at runtime; the "
                                    f"keys that can: {', '.join(sorted(RUNTIME_KEYS))}")
            try:
                changes[key] = _KEYS[key][1](raw.strip())
            except ValueError as exc:
                raise UpdateRefused(ResponseCode.SYSTEM_ERROR,
                                    f"{key}={raw.strip()!r}: {exc}") from None
        for key, value in changes.items():
            name = _KEYS[key][0].removeprefix(STORE_PREFIX)
            if hasattr(self._store, name):  # what 26 shows of the store's settings
                self._store = dataclasses.replace(self._store, **{name: value})
            if hasattr(self._config, name):  # the processors share this object, read per request
                object.__setattr__(self._config, name, value)
            hook = self._hooks.get(key)
            if hook is not None:
                hook(value)
            log.warning("broker config %s=%s set by %s", key, items[key].strip(), who)
        if changes:
            self.version_counter += 1
            self.version_ms = int(time.time() * 1000)


def _java_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
