"""Label values as RocketMQ 5 writes them (BrokerMetricsManager of rocketmq 5.3)."""

from __future__ import annotations

from ....topic_validator import is_system_topic

# MixAll.CID_RMQ_SYS_PREFIX and the system groups BrokerMetricsManager.isSystemGroup knows
SYSTEM_GROUP_PREFIX = "CID_RMQ_SYS_"
SYSTEM_GROUPS = frozenset({"TOOLS_CONSUMER", "FILTERSRV_CONSUMER", "__MONITOR_CONSUMER",
                           "CLIENT_INNER_PRODUCER", "SELF_TEST_P_GROUP", "SELF_TEST_C_GROUP",
                           "CID_ONS-HTTP-PROXY", "CID_ONSAPI_PERMISSION", "CID_ONSAPI_OWNER",
                           "CID_ONSAPI_PULL"})
CONSUME_MODES = {"CONSUME_PASSIVELY": "push", "CONSUME_ACTIVELY": "pull"}
PROTOCOL_REMOTING = "remoting"  # protocol_type: every client of ours speaks remoting


def flag(value: bool) -> str:
    return "true" if value else "false"


def is_system_group(group: str) -> bool:
    return group.startswith(SYSTEM_GROUP_PREFIX) or group in SYSTEM_GROUPS


def is_system(topic: str, group: str = "") -> str:
    """BrokerMetricsManager.isSystem: a system topic or a system group."""
    return flag(is_system_topic(topic) or (bool(group) and is_system_group(group)))


def version_desc(version: int) -> str:
    """MQVersion.getVersionDesc for the 4.9.x clients (ordinals 396..404), else the ordinal."""
    if 396 <= version <= 404:
        return f"V4_9_{version - 396}"
    return str(version)


def language(value: object) -> str:
    """LanguageCode name, as the client sent it (a name in JSON headers)."""
    name = getattr(value, "name", None)
    return str(name if name is not None else value)
