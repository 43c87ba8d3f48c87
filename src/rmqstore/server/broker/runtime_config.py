"""The broker's configuration as GET_BROKER_CONFIG (26) shows it and UPDATE_BROKER_CONFIG (25)
changes it (AdminBrokerProcessor.getBrokerConfig / updateBrokerConfig of rocketmq-all-4.9.7).

26 shows every key the broker honours, under RocketMQ's name, with its value in force; never a
secret (aclSecretKey is left out).

25 changes only the keys of RUNTIME_KEYS, an allow-list: each value is read by the same type as
in broker.conf and takes effect at the next request that reads it. Any other key, RocketMQ's
blacklist (rocketmqHome, brokerConfigPath, configBlackList: CVE-2023-33246 and CVE-2023-37582
set them to run a command or write a file) and every path, address, port, security or store key
with it, is refused with NO_PERMISSION and nothing changes: an update is all or nothing.

A change outlives a restart, as Java's Configuration.persist makes it: it is written to the
broker's config file (brokerConfigPath: the -c file, else config/broker.properties in the store,
which `serve` reads back at start) before it takes effect, and a change that cannot be written
is refused. Only the changed keys' lines are rewritten; Java rewrites the whole file from memory.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from ...config import StoreConfig
from ...filenames import config_file
from ...metadata import write_atomic
from ...protocol import ResponseCode
from ...protocol.java_properties import parse_properties, rewrite_properties
from ..acl.settings import ROCKETMQ_HOME_ENV
from ..config_error import ConfigError
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
SAVED_NAME = "broker.properties"  # BrokerPathConfigHelper's name, under the store's config/
NEW_FILE_MODE = 0o600  # what a new config file is created with: broker.conf may hold secrets

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
        if changes and self._config.config_path is not None:
            self._persist(self._config.config_path, {k: items[k].strip() for k in changes})
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

    @staticmethod
    def _persist(path: Path, items: Mapping[str, str]) -> None:
        """The changed keys written to the config file, or UpdateRefused and nothing changed."""
        try:
            try:
                text, mode = path.read_text(), path.stat().st_mode & 0o777
            except FileNotFoundError:
                text, mode = "", NEW_FILE_MODE
            write_atomic(path, rewrite_properties(text, items).encode(), mode)
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise UpdateRefused(ResponseCode.SYSTEM_ERROR,
                                f"not saved to {path.name}, so nothing changed: {reason}") from None


def saved_path(store_root: Path) -> Path:
    """Where a broker started without a config file keeps its runtime changes."""
    return config_file(store_root, SAVED_NAME)


def saved_updates(path: Path) -> dict[str, object]:
    """The BrokerConfig fields a saved broker.properties sets ({} if there is none); ConfigError
    (one line) for a key 25 could not have written or a value that does not read."""
    try:
        items = parse_properties(path.read_text())
    except (FileNotFoundError, NotADirectoryError):  # a store that is not one says so later
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} cannot be read: {exc}") from None
    out: dict[str, object] = {}
    for key, raw in items.items():
        if key not in RUNTIME_KEYS:
            raise ConfigError(f"{path}: {key} is not a key UPDATE_BROKER_CONFIG can set; "
                              f"put it in a broker.conf given with -c")
        try:
            out[_KEYS[key][0]] = _KEYS[key][1](raw)
        except ValueError as exc:
            raise ConfigError(f"{path}: {key}={raw!r}: {exc}") from None
    return out


def _java_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
