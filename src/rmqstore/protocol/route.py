"""Route data and the name server's response bodies (JSON), for the name server that writes
them and the clients that read them.

Field names and shapes are those of common/.../protocol/route/ and protocol/body/
(rocketmq-all-4.9.7):

  TopicRouteData  {"brokerDatas":[{"brokerAddrs":{"0":"10.0.0.1:10911"},"brokerName":"broker-a",
                   "cluster":"DefaultCluster"}],"filterServerTable":{},"queueDatas":[{"brokerName":
                   "broker-a","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}
                  plus "orderTopicConf" when the topic has one
  ClusterInfo     {"brokerAddrTable":{"broker-a":<BrokerData>},"clusterAddrTable":
                   {"DefaultCluster":["broker-a"]}}
  TopicList       {"topicList":["T1","TBW102"]} (+ "brokerAddr" for the system topics)
  KVTable         {"table":{"k":"v"}}
  DataVersion     {"counter":3,"timestamp":1700000000000}

brokerAddrs keys are quoted (standard JSON) even where Java writes fastjson's bare integers:
fastjson, jsoncpp with allowNumericKeys (C++ client 1.2.4) and every other client read both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import fastjson
from .topic_config import DataVersion

MASTER_ID = 0  # MixAll.MASTER_ID: broker id 0 is the master, others are slaves


@dataclass(frozen=True, slots=True)
class QueueData:
    """One broker's queues of a topic."""

    broker_name: str
    read_queue_nums: int
    write_queue_nums: int
    perm: int
    topic_sys_flag: int = 0


@dataclass(slots=True)
class BrokerData:
    """A broker name's members: broker id -> "ip:port" (the name server adds and removes)."""

    cluster: str
    broker_name: str
    broker_addrs: dict[int, str]

    @property
    def master_addr(self) -> str | None:
        return self.broker_addrs.get(MASTER_ID)

    def select_addr(self) -> str | None:
        """The master if present, else the lowest-id slave (BrokerData.selectBrokerAddr
        prefers the master)."""
        if MASTER_ID in self.broker_addrs:
            return self.broker_addrs[MASTER_ID]
        return self.broker_addrs[min(self.broker_addrs)] if self.broker_addrs else None


@dataclass(frozen=True, slots=True)
class TopicRouteData:
    queue_datas: tuple[QueueData, ...]
    broker_datas: tuple[BrokerData, ...]  # copies: the holder may keep them
    filter_server_table: dict[str, list[str]] = field(default_factory=dict)
    order_topic_conf: str | None = None

    def broker(self, broker_name: str) -> BrokerData | None:
        return next((b for b in self.broker_datas if b.broker_name == broker_name), None)


def decode_topic_route(body: bytes) -> TopicRouteData:
    """A GET_ROUTEINFO_BY_TOPIC body, in either JSON dialect; raises ValueError."""
    obj = fastjson.loads(body)
    try:
        queues = tuple(QueueData(q["brokerName"], int(q.get("readQueueNums", 0)),
                                 int(q.get("writeQueueNums", 0)), int(q.get("perm", 6)),
                                 int(q.get("topicSysFlag", 0)))
                       for q in obj.get("queueDatas") or [])
        brokers = tuple(BrokerData(b.get("cluster", ""), b["brokerName"],
                                   {int(k): v for k, v in (b.get("brokerAddrs") or {}).items()})
                        for b in obj.get("brokerDatas") or [])
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"malformed route data: {exc!r}") from None
    return TopicRouteData(queues, brokers, obj.get("filterServerTable") or {},
                          obj.get("orderTopicConf") or None)


def encode_topic_route(route: TopicRouteData) -> bytes:
    obj: dict[str, Any] = {
        "brokerDatas": [_broker_data(b) for b in route.broker_datas],
        "filterServerTable": route.filter_server_table,
        "queueDatas": [_queue_data(q) for q in route.queue_datas],
    }
    if route.order_topic_conf is not None:  # fastjson omits null fields
        obj["orderTopicConf"] = route.order_topic_conf
    return fastjson.dumps(obj)


def encode_cluster_info(brokers: dict[str, BrokerData], clusters: dict[str, set[str]]) -> bytes:
    return fastjson.dumps({
        "brokerAddrTable": {name: _broker_data(b) for name, b in brokers.items()},
        "clusterAddrTable": {name: sorted(names) for name, names in clusters.items()},
    })


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    """GET_BROKER_CLUSTER_INFO's answer: broker name -> BrokerData, cluster -> broker names."""

    brokers: dict[str, BrokerData]
    clusters: dict[str, set[str]]


def decode_cluster_info(body: bytes) -> ClusterInfo:
    """Either JSON dialect; raises ValueError."""
    obj = fastjson.loads(body)
    try:
        brokers = {str(name): BrokerData(b.get("cluster", ""), b.get("brokerName", name),
                                         {int(k): v for k, v in
                                          (b.get("brokerAddrs") or {}).items()})
                   for name, b in (obj.get("brokerAddrTable") or {}).items()}
        clusters = {str(c): set(names) for c, names in
                    (obj.get("clusterAddrTable") or {}).items()}
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ValueError(f"malformed cluster info: {exc!r}") from None
    return ClusterInfo(brokers, clusters)


def encode_topic_list(topics: list[str], broker_addr: str | None = None) -> bytes:
    obj: dict[str, Any] = {"topicList": topics}
    if broker_addr is not None:  # fastjson omits a null field
        obj["brokerAddr"] = broker_addr
    return fastjson.dumps(obj)


def decode_topic_list(body: bytes) -> list[str]:
    obj = fastjson.loads(body)
    return sorted(str(t) for t in (obj.get("topicList") if isinstance(obj, dict) else None) or ())


def encode_kv_table(table: dict[str, str]) -> bytes:
    return fastjson.dumps({"table": table})


def encode_data_version(version: DataVersion) -> bytes:
    return fastjson.dumps(version.to_json())


def _broker_data(b: BrokerData) -> dict[str, Any]:
    # json sorts keys as strings ("10" before "2"); order carries no meaning to any reader.
    return {"brokerAddrs": {str(i): a for i, a in sorted(b.broker_addrs.items())},
            "brokerName": b.broker_name, "cluster": b.cluster}


def _queue_data(q: QueueData) -> dict[str, Any]:
    return {"brokerName": q.broker_name, "perm": q.perm, "readQueueNums": q.read_queue_nums,
            "topicSysFlag": q.topic_sys_flag, "writeQueueNums": q.write_queue_nums}
