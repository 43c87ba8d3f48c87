"""TopicConfig and DataVersion: a topic's queues and permissions, and the version that says
when a broker's set of them changed (common/.../TopicConfig.java, DataVersion.java).

The JSON form is the same in config/topics.json, REGISTER_BROKER, GET_ALL_TOPIC_CONFIG and
UPDATE_AND_CREATE_TOPIC bodies::

    {"order":false,"perm":6,"readQueueNums":4,"topicFilterType":"SINGLE_TAG",
     "topicName":"T1","topicSysFlag":0,"writeQueueNums":4}

wrapped, for a broker's whole set, in a TopicConfigSerializeWrapper::

    {"dataVersion":{"counter":3,"timestamp":1700000000000},"topicConfigTable":{"T1":{...}}}

TopicConfig.encode() (a compressed register body) writes "name read write perm filterType",
separated by single spaces; it has no topicSysFlag and no order flag.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# TopicConfig's field defaults: what an absent JSON field means.
DEFAULT_QUEUE_NUMS = 16
PERM_READ_WRITE = 6
SINGLE_TAG = "SINGLE_TAG"


@dataclass(frozen=True, slots=True)
class DataVersion:
    """A broker's topic-config version; a change makes the name server re-read its topics.
    stateVersion (RocketMQ 5) is a controller-mode broker's master epoch: the NameServer keeps
    a broker id for the newer one (written only when set, as a 4.x broker has none)."""

    timestamp: int = 0
    counter: int = 0
    state_version: int = 0

    def to_json(self) -> dict[str, int]:
        out = {"counter": self.counter, "timestamp": self.timestamp}
        if self.state_version:
            out["stateVersion"] = self.state_version
        return out


def parse_data_version(obj: Any) -> DataVersion:
    """A DataVersion JSON object (already parsed); anything else is version 0."""
    if not isinstance(obj, dict):
        return DataVersion()
    return DataVersion(int(obj.get("timestamp") or 0), int(obj.get("counter") or 0),
                       int(obj.get("stateVersion") or 0))


@dataclass(frozen=True, slots=True)
class TopicConfig:
    name: str
    read_queue_nums: int = DEFAULT_QUEUE_NUMS
    write_queue_nums: int = DEFAULT_QUEUE_NUMS
    perm: int = PERM_READ_WRITE
    order: bool = False
    topic_filter_type: str = SINGLE_TAG
    topic_sys_flag: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"order": self.order, "perm": self.perm, "readQueueNums": self.read_queue_nums,
                "topicFilterType": self.topic_filter_type, "topicName": self.name,
                "topicSysFlag": self.topic_sys_flag, "writeQueueNums": self.write_queue_nums}

    @classmethod
    def from_json(cls, key: str, obj: Any) -> TopicConfig:
        """From a parsed JSON object kept under ``key``; raises TypeError or ValueError."""
        if not isinstance(obj, dict):
            raise TypeError(f"topic config of {key!r} is not an object")
        return cls(name=str(obj.get("topicName") or key),  # Java keys the route by topicName
                   read_queue_nums=int(obj.get("readQueueNums", DEFAULT_QUEUE_NUMS)),
                   write_queue_nums=int(obj.get("writeQueueNums", DEFAULT_QUEUE_NUMS)),
                   perm=int(obj.get("perm", PERM_READ_WRITE)),
                   order=bool(obj.get("order", False)),
                   topic_filter_type=str(obj.get("topicFilterType") or SINGLE_TAG),
                   topic_sys_flag=int(obj.get("topicSysFlag", 0)))

    def to_text(self) -> str:
        """TopicConfig.encode(): the compressed register body's form."""
        return (f"{self.name} {self.read_queue_nums} {self.write_queue_nums} {self.perm} "
                f"{self.topic_filter_type}")

    @classmethod
    def from_text(cls, text: str) -> TopicConfig | None:
        """TopicConfig.decode(); None for a line without its five fields (Java ignores it)."""
        parts = text.split(" ")
        if len(parts) != 5:
            return None
        name, read, write, perm, filter_type = parts
        return cls(name, int(read), int(write), int(perm), topic_filter_type=filter_type)


def serialize_wrapper(version: DataVersion, configs: dict[str, TopicConfig]) -> dict[str, Any]:
    """A TopicConfigSerializeWrapper JSON object."""
    return wrapper_of(version, {name: tc.to_json() for name, tc in configs.items()})


def wrapper_of(version: DataVersion, table: dict[str, Any]) -> dict[str, Any]:
    """A TopicConfigSerializeWrapper JSON object around configs in their JSON form already."""
    return {"dataVersion": version.to_json(), "topicConfigTable": table}


def config_table(obj: Any) -> tuple[DataVersion, dict[str, Any]]:
    """The version and the configs, still in their JSON form but keyed by topicName (as Java
    keys the route), of a parsed TopicConfigSerializeWrapper: for a reader that makes each
    TopicConfig when it needs it (from_json). Raises TypeError for a malformed one."""
    if not isinstance(obj, dict):
        raise TypeError("topicConfigSerializeWrapper is not an object")
    table = obj.get("topicConfigTable") or {}
    if not isinstance(table, dict):
        raise TypeError("topicConfigTable is not an object")
    configs = {}
    for key, value in table.items():
        if not isinstance(value, dict):
            raise TypeError(f"topic config of {key!r} is not an object")
        configs[str(value.get("topicName") or key)] = value
    return parse_data_version(obj.get("dataVersion")), configs


def parse_serialize_wrapper(obj: Any) -> tuple[DataVersion, dict[str, TopicConfig]]:
    """The version and configs of a parsed TopicConfigSerializeWrapper; raises TypeError or
    ValueError for a malformed one."""
    version, table = config_table(obj)
    return version, {name: TopicConfig.from_json(name, value) for name, value in table.items()}
