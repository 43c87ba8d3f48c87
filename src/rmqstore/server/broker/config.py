"""BrokerConfig: the subset of RocketMQ's broker.conf the broker honours, in Python spelling.

`BrokerConfig.from_properties(text)` reads a broker.conf (Java properties: ``key=value``, ``#``
comments). Keys keep RocketMQ's names (BrokerConfig.java, MessageStoreConfig.java of
rocketmq-all-4.9.7). Every value is read by its type (config_values.py) and a value that does
not read stops the broker with one line naming the key, the value and what was expected. Keys
this broker does not act on are sorted in rocketmq_keys.py: refused when ignoring them would
break a promise (a replica asked for where none can run, say), else named once in a warning,
so that an existing file still loads.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ...delay_levels import DEFAULT_DELAY_LEVELS, parse_delay_levels
from ...net import ServerConfig
from ...protocol.acl_signature import Credentials
from .. import config_values as v
from ..acl import AclSettings, parse_acl_enable
from ..addresses import advertised_address, is_wildcard
from ..config_error import ConfigError
from ..config_values import Reader
from ..properties import parse_properties
from ..remoting_settings import RemotingSettings, is_remoting_key, parse_remoting
from . import rocketmq_keys

log = logging.getLogger(__name__)

MASTER_ID = 0
ROLES = ("ASYNC_MASTER", "SYNC_MASTER", "SLAVE")  # BrokerRole
MiB = 1 << 20


class BrokerConfigError(ConfigError, ValueError):
    """A broker.conf this broker cannot run as written; the message is one line."""


@dataclass(frozen=True)
class BrokerConfig:
    cluster_name: str = "DefaultCluster"  # brokerClusterName
    broker_name: str = "broker-a"  # brokerName (Java: the host name)
    broker_id: int = MASTER_ID  # brokerId: 0 = master, >= 1 slaves
    namesrv_addrs: tuple[str, ...] = ()  # namesrvAddr, ';'-separated
    listen_port: int = 10911  # listenPort; 0 = any free port (tests)
    broker_ip: str = "127.0.0.1"  # brokerIP1: the address clients and message ids use
    listen_host: str | None = None  # where to bind (our key listenHost); None = broker_ip
    ha_listen_port: int | None = None  # haListenPort; None = listen_port + 1
    # Replication (HAService / HAClient; rmqstore.ha)
    broker_role: str = "ASYNC_MASTER"  # brokerRole: ASYNC_MASTER, SYNC_MASTER or SLAVE
    broker_ip2: str | None = None  # brokerIP2: the host of the HA address; None = brokerIP1
    ha_master_address: str | None = None  # haMasterAddress: else learnt from the NameServer
    ha_send_heartbeat_interval_ms: int = 5_000  # haSendHeartbeatInterval
    ha_housekeeping_interval_ms: int = 20_000  # haHousekeepingInterval
    ha_transfer_batch_size: int = 32 * 1024  # haTransferBatchSize
    ha_slave_fallbehind_max: int = 256 * MiB  # haSlaveFallbehindMax
    slave_timeout_ms: int = 3_000  # slaveTimeout: how long a SYNC_MASTER send waits (4.9.4+)
    # Controller mode (RocketMQ 5, automatic failover): the controller decides the role
    # (replicas_manager.py); brokerRole and brokerId are then not read. Defaults are the
    # safe ones where Java's are not: every in-sync replica acknowledges a send.
    controller_mode: bool = False  # enableControllerMode
    controller_addrs: tuple[str, ...] = ()  # controllerAddr, ';'-separated
    broker_heartbeat_interval_ms: int = 500  # brokerHeartbeatInterval (Java: 1000)
    controller_heartbeat_timeout_ms: int = 5_000  # controllerHeartBeatTimeoutMills (10000)
    sync_broker_metadata_period_ms: int = 2_000  # syncBrokerMetadataPeriod (Java: 5000)
    check_sync_state_set_period_ms: int = 1_000  # checkSyncStateSetPeriod (Java: 5000)
    sync_controller_metadata_period_ms: int = 3_000  # syncControllerMetadataPeriod (10000)
    all_ack_in_sync_state_set: bool = True  # allAckInSyncStateSet (Java: false)
    in_sync_replicas: int = 1  # inSyncReplicas (when allAckInSyncStateSet is false)
    min_in_sync_replicas: int = 1  # minInSyncReplicas
    ha_max_time_slave_not_catchup_ms: int = 15_000  # haMaxTimeSlaveNotCatchup
    broker_election_priority: int = 2**31 - 1  # brokerElectionPriority: lower wins a tie
    sync_from_last_file: bool = False  # syncFromLastFile: an empty slave copies the last file
    slave_read_enable: bool = False  # slaveReadEnable: a slave serves pulls
    offset_check_in_slave: bool = False  # offsetCheckInSlave: a slave corrects pull offsets
    # accessMessageInMemoryMaxRatio: a pull further behind than this share of the RAM is told
    # to read from a slave (slaveReadEnable)
    access_message_in_memory_max_ratio: int = 40
    store_root: Path = Path.home() / "store"  # storePathRootDir
    # brokerConfigPath: where UPDATE_BROKER_CONFIG saves its changes (serve: the -c file, else
    # config/broker.properties in the store); None = not saved (embedded brokers, tests)
    config_path: Path | None = None
    # rocketmqHome: where conf/plain_acl.yml is looked for; None = $ROCKETMQ_HOME
    rocketmq_home: Path | None = None
    sync_flush: bool = False  # flushDiskType SYNC_FLUSH (vs ASYNC_FLUSH)
    auto_create_topic: bool = True  # autoCreateTopicEnable
    auto_create_subscription_group: bool = True  # autoCreateSubscriptionGroup
    default_topic_queue_nums: int = 8  # defaultTopicQueueNums
    broker_permission: int = 6  # brokerPermission: READ | WRITE
    long_polling: bool = True  # longPollingEnable
    short_polling_ms: int = 1_000  # shortPollingTimeMills (hold time without long polling)
    register_period_ms: int = 30_000  # registerNameServerPeriod
    register_timeout_ms: int = 6_000  # registerBrokerTimeoutMills
    channel_expired_ms: int = 120_000  # ClientHousekeepingService's channel expiry
    lock_max_live_ms: int = 60_000  # rocketmq.broker.rebalance.lockMaxLiveTime
    max_transfer_count: int = 32  # maxTransferCountOnMessageInMemory
    max_transfer_bytes: int = 256 * 1024  # maxTransferBytesOnMessageInMemory
    max_message_size: int = 4 * 1024 * 1024  # maxMessageSize
    sync_flush_timeout_ms: int = 5_000  # syncFlushTimeout
    file_reserved_hours: float = 72.0  # fileReservedTime
    commitlog_segment_bytes: int = 1 << 30  # mappedFileSizeCommitLog
    # warmMapedFileEnable (Java's default: off). The store's warmer is a thread: in a broker,
    # whose appends are network-bound, its GIL hand-offs cost the event loop more (measured
    # 12 us per send) than the page faults it saves.
    warm_mapped_file: bool = False
    region_id: str = "DefaultRegion"  # regionId, sent back as MSG_REGION
    trace_on: bool = True  # traceOn, sent back as TRACE_ON
    enable_property_filter: bool = False  # enablePropertyFilter: SQL92 subscriptions
    # traceTopicEnable: create the message-trace topic at start. Java defaults to false; we
    # default to true so that client traces (trace=True) land somewhere without auto-creation.
    trace_topic_enable: bool = True
    msg_trace_topic_name: str = "RMQ_SYS_TRACE_TOPIC"  # msgTraceTopicName
    transaction_timeout_ms: int = 6_000  # transactionTimeOut: a half message is checked after this
    transaction_check_max: int = 15  # transactionCheckMax: checks before a half message is dropped
    transaction_check_interval_ms: int = 60_000  # transactionCheckInterval
    # messageDelayLevel: delay of level 1, 2, ... (units s m h d, and ms as our extension)
    message_delay_level: str = DEFAULT_DELAY_LEVELS
    # Timer messages (RocketMQ 5's TIMER_DELIVER_MS / TIMER_DELAY_SEC / TIMER_DELAY_MS).
    timer_wheel_enable: bool = True  # timerWheelEnable
    timer_max_delay_sec: int = 7 * 86_400  # timerMaxDelaySec (Java: 3 days; we promise 7)
    timer_precision_ms: int = 20  # timerPrecisionMs (Java: 1000): the slot width
    timer_wheel_slots: int = 1 << 21  # our key timerWheelSlots: window = slots x precision
    timer_flush_interval_ms: int = 1_000  # timerFlushIntervalMs
    # The long-poll hold: a pull's suspendTimeoutMillis is honoured up to this (our key, named
    # after the consumers' brokerSuspendMaxTimeMillis, whose largest default is 20 s).
    broker_suspend_max_ms: int = 20_000  # brokerSuspendMaxTimeMillis
    # What clients may create (our keys; RocketMQ has no caps): each queue written costs a
    # file, a descriptor and a mapping, and too many of them end in EMFILE for everyone.
    max_queue_nums_per_topic: int = 256  # maxQueueNumsPerTopic: read and write queues each
    max_topic_nums: int = 4096  # maxTopicNums: topics of this broker, system ones included
    max_queue_nums_per_broker: int = 8192  # maxQueueNumsPerBroker: all topics' queues
    # The listener: connection limits and TLS (remoting_settings.py has the keys).
    remoting: RemotingSettings = field(default_factory=RemotingSettings)
    acl_enable: bool = False  # aclEnable: check plain_acl.yml before every request
    acl_file: Path | None = None  # our key aclFile; None = $ROCKETMQ_HOME/conf/plain_acl.yml
    # Our keys aclAccessKey / aclSecretKey: the account (admin, when the NameServers check ACL)
    # this broker signs what it sends to NameServers and other brokers with.
    acl_access_key: str | None = None
    acl_secret_key: str | None = field(default=None, repr=False)
    # The broker's HTTP port (BrokerConfig's Prometheus exporter keys): /metrics and the
    # dashboard. metricsExporterType PROM (our default; RocketMQ's is DISABLE) or DISABLE.
    metrics_exporter: str = "PROM"  # metricsExporterType
    metrics_port: int = 5557  # metricsPromExporterPort; 0 = any free port (tests)
    metrics_host: str | None = None  # metricsPromExporterHost; None = the broker's bind host
    dashboard_enable: bool = True  # our key dashboardEnable: the web console on the same port
    # Our keys httpMaxConnections and httpHeaderTimeoutMillis: the HTTP port's connections at
    # once, and how long one may hold no request in progress (web/limits.py)
    http_max_connections: int = 64
    http_header_timeout_ms: int = 10_000
    # metricsLabel "k:v,k2:v2": labels added to every series (BrokerMetricsManager)
    metrics_labels: tuple[tuple[str, str], ...] = ()
    # The disk alarm's levels (MessageStoreConfig; the last two are system properties there)
    disk_max_used_ratio: float = 0.75  # diskMaxUsedSpaceRatio, given in percent (75)
    disk_clean_forcibly_ratio: float = 0.85  # diskSpaceCleanForciblyRatio
    disk_full_ratio: float = 0.90  # diskSpaceWarningLevelRatio: writes refused above it
    extra: dict[str, str] = field(default_factory=dict)  # keys read and not acted on
    # StoreConfig fields: the store keys of broker.conf (maxHashSlotNum, storePathCommitLog,
    # ...) and `serve --store` (tests: small segments and index files).
    store_overrides: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if is_wildcard(self.broker_ip):
            raise ValueError(f"brokerIP1={self.broker_ip}: a wildcard address cannot be "
                             f"advertised to clients; give this machine's address")
        self._check_role()
        for name in ("broker_suspend_max_ms", "max_queue_nums_per_topic", "max_topic_nums",
                     "max_queue_nums_per_broker"):
            if getattr(self, name) < 1:
                key = next(k for k, (field_name, _) in _KEYS.items() if field_name == name)
                raise ConfigError(f"{key} must be at least 1, not {getattr(self, name)}")
        if self.default_topic_queue_nums > self.max_queue_nums_per_topic:
            raise ConfigError(f"defaultTopicQueueNums {self.default_topic_queue_nums} is above "
                              f"maxQueueNumsPerTopic {self.max_queue_nums_per_topic}")
        self.server_config()  # the limits' contradictions fail here, at load

    def server_config(self) -> ServerConfig:
        """The broker's listener: its limits (the frame limit follows maxMessageSize), TLS."""
        return self.remoting.server_config(self.bind_host, self.listen_port,
                                           self.max_message_size)

    @property
    def http_enabled(self) -> bool:
        return self.metrics_exporter == "PROM" or self.dashboard_enable

    @property
    def http_host(self) -> str:
        return self.metrics_host or self.bind_host

    @property
    def addr(self) -> str:
        """brokerAddr: what the NameServer hands to clients."""
        return f"{self.broker_ip}:{self.listen_port}"

    @property
    def ha_port(self) -> int:
        return self.ha_listen_port if self.ha_listen_port is not None else self.listen_port + 1

    @property
    def ha_addr(self) -> str:
        """haServerAddr: brokerIP2:haListenPort (BrokerController.getHAServerAddr)."""
        return f"{self.broker_ip2 or self.broker_ip}:{self.ha_port}"

    @property
    def slave(self) -> bool:
        return self.broker_role == "SLAVE"

    def _check_role(self) -> None:
        """BrokerConfigError unless brokerRole, brokerId and the HA keys agree."""
        if self.controller_mode:
            self._check_controller_mode()
            return
        if self.broker_role not in ROLES:
            raise BrokerConfigError(f"brokerRole must be one of {', '.join(ROLES)}, not "
                                    f"{self.broker_role!r}")
        if self.slave and self.broker_id <= MASTER_ID:
            raise BrokerConfigError(f"brokerRole=SLAVE needs brokerId > 0, not {self.broker_id}")
        if not self.slave and self.broker_id != MASTER_ID:
            raise BrokerConfigError(f"brokerRole={self.broker_role} needs brokerId=0, not "
                                    f"{self.broker_id} (a slave says brokerRole=SLAVE)")
        if self.ha_master_address is not None and not self.slave:
            raise BrokerConfigError("haMasterAddress is a slave's setting; this broker is "
                                    f"{self.broker_role}")
        if not 0 <= self.access_message_in_memory_max_ratio <= 100:
            raise BrokerConfigError("accessMessageInMemoryMaxRatio must be within [0, 100]")

    def _check_controller_mode(self) -> None:
        if not self.controller_addrs:
            raise BrokerConfigError("enableControllerMode=true needs controllerAddr")
        if self.ha_master_address is not None:
            raise BrokerConfigError("haMasterAddress: in controller mode the controller names "
                                    "the master")
        if self.min_in_sync_replicas < 1 or self.in_sync_replicas < 1:
            raise BrokerConfigError("minInSyncReplicas and inSyncReplicas must be at least 1")
        if self.controller_heartbeat_timeout_ms < 2 * self.broker_heartbeat_interval_ms:
            raise BrokerConfigError("controllerHeartBeatTimeoutMills must be at least twice "
                                    "brokerHeartbeatInterval")

    @property
    def bind_host(self) -> str:
        return self.listen_host or self.broker_ip

    @property
    def acl(self) -> AclSettings:
        return AclSettings(self.acl_enable, self.acl_file, self.rocketmq_home)

    @property
    def credentials(self) -> Credentials | None:
        """What outgoing requests are signed with; ConfigError if only half is set."""
        if self.acl_access_key is None and self.acl_secret_key is None:
            return None
        if not self.acl_access_key or not self.acl_secret_key:
            raise ConfigError("aclAccessKey and aclSecretKey must be set together")
        return Credentials(self.acl_access_key, self.acl_secret_key)

    def replace(self, **changes: object) -> BrokerConfig:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> BrokerConfig:
        return cls.from_properties(Path(path).read_text())

    @classmethod
    def from_properties(cls, text: str) -> BrokerConfig:
        return cls.from_mapping(parse_properties(text))

    @classmethod
    def from_mapping(cls, items: dict[str, str], source: str = "broker.conf") -> BrokerConfig:
        """ConfigError, one line naming the key, the value and what was expected, for a value
        that cannot be read or a key that cannot be ignored (rocketmq_keys.py; TlsConfigError
        for a tls.* key, remoting_settings.py); a key read elsewhere or not at all is logged
        once, after every value passed."""
        values: dict[str, object] = {
            "remoting": parse_remoting({k: v for k, v in items.items() if is_remoting_key(k)})}
        store: dict[str, object] = {}
        ignored: dict[str, str] = {}
        for key, raw in items.items():
            value = raw.strip()
            spec = _KEYS.get(key)
            if spec is None:
                if is_remoting_key(key):
                    continue  # read above
                reason = rocketmq_keys.refusal(key, value)
                if reason is not None:
                    raise BrokerConfigError(f"{source}: {key}={value!r}: {reason}")
                ignored[key] = raw
                continue
            name, read = spec
            try:
                converted = read(value)
            except ValueError as exc:
                raise BrokerConfigError(f"{source}: {key}={value!r}: {exc}") from None
            if name.startswith(STORE_PREFIX):
                store[name[len(STORE_PREFIX):]] = converted
            else:
                values[name] = converted
        listen_host = values.get("listen_host")
        if "broker_ip" not in values and isinstance(listen_host, str) and is_wildcard(listen_host):
            values["broker_ip"] = advertised_address()  # never advertise 0.0.0.0
        try:
            config = cls(**values, store_overrides=store, extra=ignored)  # type: ignore[arg-type]
        except ValueError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        for key in ignored:
            rocketmq_keys.warn_ignored(source, key, _KEYS)
        return config


def _flush(raw: str) -> bool:
    return v.choice("SYNC_FLUSH", "ASYNC_FLUSH")(raw) == "SYNC_FLUSH"


def _delay_levels(raw: str) -> str:
    parse_delay_levels(raw)  # a bad ladder fails at load, naming the entry
    return raw


def _single_path(raw: str) -> Path:
    """storePathCommitLog: one directory (RocketMQ 4.9 spreads segments over a ','-list)."""
    if "," in raw:
        raise ValueError("expected one directory: spreading the commit log over several "
                         "(MultiPathMappedFileQueue) is not implemented")
    return v.path(raw)


def _role(raw: str) -> str:
    if raw not in ROLES:
        raise ValueError(f"brokerRole must be one of {', '.join(ROLES)}")
    return raw


def _consume_queue_units(raw: str) -> int:
    """mappedFileSizeConsumeQueue: bytes per consume-queue file, a multiple of the 20-byte unit."""
    size = v.integer(20)(raw)
    if size % 20:
        raise ValueError("expected a multiple of 20 (the consume-queue unit)")
    return size // 20


def _exporter(raw: str) -> str:
    if raw.upper() not in ("PROM", "DISABLE"):
        raise ValueError("metricsExporterType must be PROM or DISABLE here (no OTLP_GRPC or "
                         "LOG exporter)")
    return raw.upper()


_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_OWN_LABELS = frozenset({"cluster", "node_type", "node_id"})


def _metrics_labels(raw: str) -> tuple[tuple[str, str], ...]:
    out = []
    for pair in filter(None, (p.strip() for p in raw.split(","))):
        name, sep, value = pair.partition(":")
        if not sep or not _LABEL_NAME.match(name) or name.startswith("__") \
                or name in _OWN_LABELS:
            raise ValueError(f"metricsLabel wants name:value pairs with Prometheus label names "
                             f"other than {sorted(_OWN_LABELS)}, not {pair[:60]!r}")
        out.append((name, value))
    return tuple(out)


def _percent(raw: str) -> float:
    value = int(raw)
    if not 10 <= value <= 95:  # MessageStoreConfig.getDiskMaxUsedSpaceRatio's bounds
        raise ValueError("diskMaxUsedSpaceRatio must be a percentage within [10, 95]")
    return value / 100


def _ratio(raw: str) -> float:
    value = float(raw)
    if not 0 < value <= 1:
        raise ValueError("must be a ratio within (0, 1]")
    return value


STORE_PREFIX = "store."  # a _KEYS target naming a StoreConfig field

_KEYS: dict[str, tuple[str, Reader]] = {
    "brokerClusterName": ("cluster_name", v.text),
    "brokerName": ("broker_name", v.text),
    "brokerId": ("broker_id", v.integer(-1)),  # -1: controller mode's "not assigned"
    "namesrvAddr": ("namesrv_addrs", v.addresses),
    "listenPort": ("listen_port", v.port),
    "brokerIP1": ("broker_ip", v.ip_address),
    "listenHost": ("listen_host", v.ip_address),
    "haListenPort": ("ha_listen_port", v.port),
    "rocketmqHome": ("rocketmq_home", v.path),
    "storePathRootDir": ("store_root", v.path),
    "storePathCommitLog": ("store.commitlog_path", _single_path),
    "flushDiskType": ("sync_flush", _flush),
    "autoCreateTopicEnable": ("auto_create_topic", v.boolean),
    "autoCreateSubscriptionGroup": ("auto_create_subscription_group", v.boolean),
    "defaultTopicQueueNums": ("default_topic_queue_nums", v.integer(1, 1024)),
    "brokerPermission": ("broker_permission", v.integer(0, 7)),
    "longPollingEnable": ("long_polling", v.boolean),
    "shortPollingTimeMills": ("short_polling_ms", v.integer(0)),
    "registerNameServerPeriod": ("register_period_ms", v.integer(1000, 60_000)),
    "registerBrokerTimeoutMills": ("register_timeout_ms", v.integer(1)),
    "channelExpiredTimeout": ("channel_expired_ms", v.integer(1)),
    "rocketmq.broker.rebalance.lockMaxLiveTime": ("lock_max_live_ms", v.integer(1)),
    "lockMaxLiveTime": ("lock_max_live_ms", v.integer(1)),
    "maxTransferCountOnMessageInMemory": ("max_transfer_count", v.integer(1)),
    "maxTransferBytesOnMessageInMemory": ("max_transfer_bytes", v.integer(1)),
    "maxMessageSize": ("max_message_size", v.integer(1)),
    "syncFlushTimeout": ("sync_flush_timeout_ms", v.integer(1)),
    "fileReservedTime": ("file_reserved_hours", v.number(0, 1e9)),
    "mappedFileSizeCommitLog": ("commitlog_segment_bytes", v.integer(4096)),
    "mappedFileSizeConsumeQueue": ("store.consumequeue_units", _consume_queue_units),
    "messageIndexEnable": ("store.index_enable", v.boolean),
    "maxHashSlotNum": ("store.index_slots", v.integer(1)),
    "maxIndexNum": ("store.index_entries", v.integer(2)),
    "flushIntervalCommitLog": ("store.flush_interval_ms", v.integer(1)),
    "flushCommitLogLeastPages": ("store.flush_least_pages", v.integer(0)),
    "flushCommitLogThoroughInterval": ("store.flush_thorough_interval_ms", v.integer(1)),
    "flushIntervalConsumeQueue": ("store.consumequeue_flush_interval_ms", v.integer(1)),
    "cleanResourceInterval": ("store.clean_interval_ms", v.integer(1)),
    "diskMaxUsedSpaceRatio": ("disk_max_used_ratio", _percent),
    "checkCRCOnRecover": ("store.check_crc_on_recover", v.boolean),
    "warmMapedFileEnable": ("warm_mapped_file", v.boolean),
    "regionId": ("region_id", v.text),
    "traceOn": ("trace_on", v.boolean),
    "enablePropertyFilter": ("enable_property_filter", v.boolean),
    "messageDelayLevel": ("message_delay_level", _delay_levels),
    "traceTopicEnable": ("trace_topic_enable", v.boolean),
    "msgTraceTopicName": ("msg_trace_topic_name", v.text),
    "transactionTimeOut": ("transaction_timeout_ms", v.integer(1)),
    "transactionCheckMax": ("transaction_check_max", v.integer(1)),
    "transactionCheckInterval": ("transaction_check_interval_ms", v.integer(1)),
    "timerWheelEnable": ("timer_wheel_enable", v.boolean),
    "timerMaxDelaySec": ("timer_max_delay_sec", v.integer(1)),
    "timerPrecisionMs": ("timer_precision_ms", v.integer(1)),
    "timerWheelSlots": ("timer_wheel_slots", v.integer(1)),
    "timerFlushIntervalMs": ("timer_flush_interval_ms", v.integer(1)),
    # the limits: __post_init__ checks their bounds
    "brokerSuspendMaxTimeMillis": ("broker_suspend_max_ms", v.integer()),
    "maxQueueNumsPerTopic": ("max_queue_nums_per_topic", v.integer()),
    "maxTopicNums": ("max_topic_nums", v.integer()),
    "maxQueueNumsPerBroker": ("max_queue_nums_per_broker", v.integer()),
    "brokerRole": ("broker_role", _role),
    "brokerIP2": ("broker_ip2", lambda raw: v.ip_address(raw) if raw else None),
    "haMasterAddress": ("ha_master_address", lambda raw: v.host_port(raw) if raw else None),
    "haSendHeartbeatInterval": ("ha_send_heartbeat_interval_ms", v.integer(1)),
    "haHousekeepingInterval": ("ha_housekeeping_interval_ms", v.integer(1)),
    "haTransferBatchSize": ("ha_transfer_batch_size", v.integer(1)),
    "haSlaveFallbehindMax": ("ha_slave_fallbehind_max", v.integer(0)),
    "haMaxGapNotInSync": ("ha_slave_fallbehind_max", v.integer(0)),  # RocketMQ 5's name
    "slaveTimeout": ("slave_timeout_ms", v.integer(1)),
    "enableControllerMode": ("controller_mode", v.boolean),
    "controllerAddr": ("controller_addrs", v.addresses),
    "brokerHeartbeatInterval": ("broker_heartbeat_interval_ms", v.integer(1)),
    "controllerHeartBeatTimeoutMills": ("controller_heartbeat_timeout_ms", v.integer(1)),
    "syncBrokerMetadataPeriod": ("sync_broker_metadata_period_ms", v.integer(1)),
    "checkSyncStateSetPeriod": ("check_sync_state_set_period_ms", v.integer(1)),
    "syncControllerMetadataPeriod": ("sync_controller_metadata_period_ms", v.integer(1)),
    "allAckInSyncStateSet": ("all_ack_in_sync_state_set", v.boolean),
    "inSyncReplicas": ("in_sync_replicas", v.integer(1)),
    "minInSyncReplicas": ("min_in_sync_replicas", v.integer(1)),
    "haMaxTimeSlaveNotCatchup": ("ha_max_time_slave_not_catchup_ms", v.integer(1)),
    "brokerElectionPriority": ("broker_election_priority", v.integer()),
    "syncFromLastFile": ("sync_from_last_file", v.boolean),
    "slaveReadEnable": ("slave_read_enable", v.boolean),
    "offsetCheckInSlave": ("offset_check_in_slave", v.boolean),
    "accessMessageInMemoryMaxRatio": ("access_message_in_memory_max_ratio", v.integer()),
    "metricsExporterType": ("metrics_exporter", _exporter),
    "metricsPromExporterPort": ("metrics_port", v.port),
    "metricsPromExporterHost": ("metrics_host", lambda raw: raw or None),
    "dashboardEnable": ("dashboard_enable", v.boolean),
    "httpMaxConnections": ("http_max_connections", v.integer(1, 65_536)),
    "httpHeaderTimeoutMillis": ("http_header_timeout_ms", v.integer(100, 3_600_000)),
    "metricsLabel": ("metrics_labels", _metrics_labels),
    "diskSpaceCleanForciblyRatio": ("disk_clean_forcibly_ratio", _ratio),
    "rocketmq.broker.diskSpaceCleanForciblyRatio": ("disk_clean_forcibly_ratio", _ratio),
    "diskSpaceWarningLevelRatio": ("disk_full_ratio", _ratio),
    "rocketmq.broker.diskSpaceWarningLevelRatio": ("disk_full_ratio", _ratio),
    "aclEnable": ("acl_enable", parse_acl_enable),
    "aclFile": ("acl_file", v.path),
    "aclAccessKey": ("acl_access_key", v.text),
    "aclSecretKey": ("acl_secret_key", v.text),
}
