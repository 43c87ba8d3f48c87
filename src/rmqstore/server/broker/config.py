"""BrokerConfig: the subset of RocketMQ's broker.conf the broker honours, in Python spelling.

`BrokerConfig.from_properties(text)` reads a broker.conf (Java properties: ``key=value``, ``#``
comments). Keys keep RocketMQ's names (BrokerConfig.java, MessageStoreConfig.java of
rocketmq-all-4.9.7); unknown keys are logged and ignored so that an existing file still loads,
except replication's: a brokerRole value or an HA key this broker does not act on stops it
(BrokerConfigError, one line saying why), since running alone where a replica was asked for
would lose what the file promised.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from ...delay_levels import DEFAULT_DELAY_LEVELS, parse_delay_levels
from ...net import ServerConfig
from ...protocol.acl_signature import Credentials
from ..acl import AclSettings, parse_acl_enable
from ..config_error import ConfigError
from ..properties import parse_properties
from ..remoting_settings import RemotingSettings, is_remoting_key, parse_remoting

log = logging.getLogger(__name__)

MASTER_ID = 0
TRUE_TEXTS = frozenset({"true", "1", "yes"})
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
    extra: dict[str, str] = field(default_factory=dict)  # accepted keys we do not act on
    # StoreConfig fields set in code only (tests: small segments and index files).
    store_overrides: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
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
        return AclSettings(self.acl_enable, self.acl_file)

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
    def from_mapping(cls, items: dict[str, str]) -> BrokerConfig:
        """BrokerConfigError (one line) for a value or key it cannot run with (ConfigError or
        TlsConfigError for the remoting keys')."""
        values: dict[str, object] = {
            "remoting": parse_remoting({k: v for k, v in items.items() if is_remoting_key(k)})}
        extra: dict[str, str] = {}
        for key, raw in items.items():
            spec = _KEYS.get(key)
            if spec is None:
                if key in _ACCEPTED:
                    extra[key] = raw
                elif key in _REFUSED or key.startswith("ha"):
                    reason, harmless = _REFUSED.get(key, (_UNKNOWN_HA, ()))
                    if raw.strip() not in harmless:
                        raise BrokerConfigError(f"broker.conf: {key}={raw.strip()}: {reason}")
                    extra[key] = raw
                elif not is_remoting_key(key):
                    log.warning("broker.conf: %s is not a key this broker knows; ignored", key)
                continue
            name, convert = spec
            try:
                values[name] = convert(raw.strip())
            except ValueError as exc:
                raise BrokerConfigError(f"broker.conf: {key}={raw.strip()!r}: {exc}") from None
        return cls(**values, extra=extra)  # type: ignore[arg-type]


def _bool(raw: str) -> bool:
    return raw.lower() in TRUE_TEXTS


def _flush(raw: str) -> bool:
    if raw not in ("SYNC_FLUSH", "ASYNC_FLUSH"):
        raise ValueError(f"flushDiskType must be SYNC_FLUSH or ASYNC_FLUSH, not {raw!r}")
    return raw == "SYNC_FLUSH"


def _delay_levels(raw: str) -> str:
    parse_delay_levels(raw)  # a bad ladder fails at load, naming the entry
    return raw


def _role(raw: str) -> str:
    if raw not in ROLES:
        raise ValueError(f"brokerRole must be one of {', '.join(ROLES)}")
    return raw


def _optional(raw: str) -> str | None:
    return raw or None


def _addrs(raw: str) -> tuple[str, ...]:
    return tuple(a.strip() for a in raw.split(";") if a.strip())


_KEYS = {
    "brokerClusterName": ("cluster_name", str),
    "brokerName": ("broker_name", str),
    "brokerId": ("broker_id", int),
    "namesrvAddr": ("namesrv_addrs", _addrs),
    "listenPort": ("listen_port", int),
    "brokerIP1": ("broker_ip", str),
    "listenHost": ("listen_host", str),
    "haListenPort": ("ha_listen_port", int),
    "storePathRootDir": ("store_root", lambda raw: Path(raw).expanduser()),
    "flushDiskType": ("sync_flush", _flush),
    "autoCreateTopicEnable": ("auto_create_topic", _bool),
    "autoCreateSubscriptionGroup": ("auto_create_subscription_group", _bool),
    "defaultTopicQueueNums": ("default_topic_queue_nums", int),
    "brokerPermission": ("broker_permission", int),
    "longPollingEnable": ("long_polling", _bool),
    "shortPollingTimeMills": ("short_polling_ms", int),
    "registerNameServerPeriod": ("register_period_ms", int),
    "registerBrokerTimeoutMills": ("register_timeout_ms", int),
    "channelExpiredTimeout": ("channel_expired_ms", int),
    "rocketmq.broker.rebalance.lockMaxLiveTime": ("lock_max_live_ms", int),
    "lockMaxLiveTime": ("lock_max_live_ms", int),
    "maxTransferCountOnMessageInMemory": ("max_transfer_count", int),
    "maxTransferBytesOnMessageInMemory": ("max_transfer_bytes", int),
    "maxMessageSize": ("max_message_size", int),
    "syncFlushTimeout": ("sync_flush_timeout_ms", int),
    "fileReservedTime": ("file_reserved_hours", float),
    "mappedFileSizeCommitLog": ("commitlog_segment_bytes", int),
    "warmMapedFileEnable": ("warm_mapped_file", _bool),
    "regionId": ("region_id", str),
    "traceOn": ("trace_on", _bool),
    "enablePropertyFilter": ("enable_property_filter", _bool),
    "messageDelayLevel": ("message_delay_level", _delay_levels),
    "traceTopicEnable": ("trace_topic_enable", _bool),
    "msgTraceTopicName": ("msg_trace_topic_name", str),
    "transactionTimeOut": ("transaction_timeout_ms", int),
    "transactionCheckMax": ("transaction_check_max", int),
    "transactionCheckInterval": ("transaction_check_interval_ms", int),
    "timerWheelEnable": ("timer_wheel_enable", _bool),
    "timerMaxDelaySec": ("timer_max_delay_sec", int),
    "timerPrecisionMs": ("timer_precision_ms", int),
    "timerWheelSlots": ("timer_wheel_slots", int),
    "timerFlushIntervalMs": ("timer_flush_interval_ms", int),
    "brokerRole": ("broker_role", _role),
    "brokerIP2": ("broker_ip2", _optional),
    "haMasterAddress": ("ha_master_address", _optional),
    "haSendHeartbeatInterval": ("ha_send_heartbeat_interval_ms", int),
    "haHousekeepingInterval": ("ha_housekeeping_interval_ms", int),
    "haTransferBatchSize": ("ha_transfer_batch_size", int),
    "haSlaveFallbehindMax": ("ha_slave_fallbehind_max", int),
    "haMaxGapNotInSync": ("ha_slave_fallbehind_max", int),  # RocketMQ 5's name for it
    "slaveTimeout": ("slave_timeout_ms", int),
    "enableControllerMode": ("controller_mode", _bool),
    "controllerAddr": ("controller_addrs", _addrs),
    "brokerHeartbeatInterval": ("broker_heartbeat_interval_ms", int),
    "controllerHeartBeatTimeoutMills": ("controller_heartbeat_timeout_ms", int),
    "syncBrokerMetadataPeriod": ("sync_broker_metadata_period_ms", int),
    "checkSyncStateSetPeriod": ("check_sync_state_set_period_ms", int),
    "syncControllerMetadataPeriod": ("sync_controller_metadata_period_ms", int),
    "allAckInSyncStateSet": ("all_ack_in_sync_state_set", _bool),
    "inSyncReplicas": ("in_sync_replicas", int),
    "minInSyncReplicas": ("min_in_sync_replicas", int),
    "haMaxTimeSlaveNotCatchup": ("ha_max_time_slave_not_catchup_ms", int),
    "brokerElectionPriority": ("broker_election_priority", int),
    "syncFromLastFile": ("sync_from_last_file", _bool),
    "slaveReadEnable": ("slave_read_enable", _bool),
    "offsetCheckInSlave": ("offset_check_in_slave", _bool),
    "accessMessageInMemoryMaxRatio": ("access_message_in_memory_max_ratio", int),
    "brokerSuspendMaxTimeMillis": ("broker_suspend_max_ms", int),
    "maxQueueNumsPerTopic": ("max_queue_nums_per_topic", int),
    "maxTopicNums": ("max_topic_nums", int),
    "maxQueueNumsPerBroker": ("max_queue_nums_per_broker", int),
    "aclEnable": ("acl_enable", parse_acl_enable),
    "aclFile": ("acl_file", lambda raw: Path(raw).expanduser()),
    "aclAccessKey": ("acl_access_key", str),
    "aclSecretKey": ("acl_secret_key", str),
}

# Keys common in real broker.conf files that need no action here (cleanup hour, pools).
_ACCEPTED = frozenset({"deleteWhen", "storePathCommitLog", "sendMessageThreadPoolNums",
                       "pullMessageThreadPoolNums"})

_CONTROLLER = "not implemented in controller mode (a broker set's members all replicate)"
_DLEDGER = "the DLedger commit log is not implemented (classic master/slave only)"
_FLOW = "HA flow control (RocketMQ 5) is not implemented"
_UNKNOWN_HA = "an HA key this broker does not know"
# Replication keys RocketMQ reads that this broker does not act on: refused with why, unless
# set to the value that asks for nothing (their default).
_REFUSED: dict[str, tuple[str, tuple[str, ...]]] = {
    "totalReplicas": (_CONTROLLER, ("1",)), "enableAutoInSyncReplicas": (_CONTROLLER, ("false",)),
    "asyncLearner": (_CONTROLLER, ("false",)), "enableSlaveActingMaster": (_CONTROLLER, ("false",)),
    "haFlowControlEnable": (_FLOW, ("false",)), "maxHaTransferByteInSecond": (_FLOW, ()),
    "enableDLegerCommitLog": (_DLEDGER, ("false",)), "dLegerGroup": (_DLEDGER, ()),
    "dLegerPeers": (_DLEDGER, ()), "dLegerSelfId": (_DLEDGER, ()),
    "preferredLeaderId": (_DLEDGER, ()),
}
