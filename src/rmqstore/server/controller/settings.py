"""The controller's keys in a namesrv.conf (RocketMQ 5's ControllerConfig names where it has
them, ours otherwise), and how serve's flags fill them:

    enableControllerInNamesrv   true: this NameServer runs a controller (Java's key)
    controllerEtcdEndpoints     host:port,... of the etcd cluster (ours; or --etcd-endpoints,
                                or the members of --etcd-peers)
    controllerEtcdPrefix        the keys' prefix in etcd (ours; default /rmqstore/controller)
    enableElectUncleanMaster    elect outside the in-sync set (Java's key; default false)
    notifyBrokerRoleChanged     tell brokers of a new master at once (Java's key; default true)
    scanNotActiveBrokerInterval ms between liveness scans (Java's key; ours default 500)
    controllerMasterLeaseMillis the master lease (ours; default 4000; at most the brokers'
                                heartbeat timeout, see lease.py)
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config_error import ConfigError
from .service import ControllerConfig

KEYS = ("enableControllerInNamesrv", "controllerEtcdEndpoints", "controllerEtcdPrefix",
        "enableElectUncleanMaster", "notifyBrokerRoleChanged", "scanNotActiveBrokerInterval",
        "controllerMasterLeaseMillis")


@dataclass(frozen=True, slots=True)
class ControllerSettings:
    config: ControllerConfig
    etcd_endpoints: str | None = None  # None: the supervised member's peers give them


def controller_settings(items: dict[str, str]) -> ControllerSettings | None:
    """The controller asked for by ``items`` (a namesrv.conf's), or None when it is off;
    ConfigError for a controller key given while it is off, or a bad value."""
    mine = {k: v for k, v in items.items() if k in KEYS}
    if mine.get("enableControllerInNamesrv", "false").lower() != "true":
        extra = sorted(set(mine) - {"enableControllerInNamesrv"})
        if extra:
            raise ConfigError(f"namesrv config: {', '.join(extra)} given, but "
                              "enableControllerInNamesrv is not true")
        return None
    default = ControllerConfig()
    config = ControllerConfig(
        prefix=mine.get("controllerEtcdPrefix", default.prefix),
        lease_ms=_int(mine, "controllerMasterLeaseMillis", default.lease_ms),
        scan_interval_ms=_int(mine, "scanNotActiveBrokerInterval", default.scan_interval_ms),
        elect_unclean=_bool(mine, "enableElectUncleanMaster", False),
        notify_role_changed=_bool(mine, "notifyBrokerRoleChanged", True))
    if not config.prefix.startswith("/"):
        raise ConfigError("namesrv config: controllerEtcdPrefix must start with /")
    return ControllerSettings(config, mine.get("controllerEtcdEndpoints"))


def _int(items: dict[str, str], key: str, default: int) -> int:
    raw = items.get(key)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) <= 0:
        raise ConfigError(f"namesrv config: {key}={raw!r} is not a positive integer")
    return int(raw)


def _bool(items: dict[str, str], key: str, default: bool) -> bool:
    raw = items.get(key)
    if raw is None:
        return default
    if raw.lower() not in ("true", "false"):
        raise ConfigError(f"namesrv config: {key}={raw!r} is neither true nor false")
    return raw.lower() == "true"
