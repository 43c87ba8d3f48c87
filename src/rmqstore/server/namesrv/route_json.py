"""Response bodies of the name server, as JSON bytes.

Field names and shapes are those of common/.../protocol/route/ and protocol/body/ (rocketmq-all-4.9.7):

  TopicRouteData  {"brokerDatas":[{"brokerAddrs":{"0":"10.0.0.1:10911"},"brokerName":"broker-a",
                   "cluster":"DefaultCluster"}],"filterServerTable":{},"queueDatas":[{"brokerName":
                   "broker-a","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}
                  plus "orderTopicConf" when the topic has one
  ClusterInfo     {"brokerAddrTable":{"broker-a":<BrokerData>},"clusterAddrTable":{"DefaultCluster":["broker-a"]}}
  TopicList       {"topicList":["T1","TBW102"]}
  KVTable         {"table":{"k":"v"}}
  DataVersion     {"counter":3,"timestamp":1700000000000}

brokerAddrs keys are quoted (standard JSON) even where Java writes fastjson's bare integers:
fastjson, jsoncpp with allowNumericKeys (C++ client 1.2.4) and every other client read both.
"""

from __future__ import annotations

from typing import Any

from . import fastjson
from .register_body import DataVersion
from .routes import BrokerData, QueueData, TopicRouteData


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


def encode_topic_list(topics: list[str]) -> bytes:
    return fastjson.dumps({"topicList": topics})  # brokerAddr is null here, so omitted


def encode_kv_table(table: dict[str, str]) -> bytes:
    return fastjson.dumps({"table": table})


def encode_data_version(version: DataVersion) -> bytes:
    return fastjson.dumps({"counter": version.counter, "timestamp": version.timestamp})


def _broker_data(b: BrokerData) -> dict[str, Any]:
    # json sorts keys as strings ("10" before "2"); order carries no meaning to any reader.
    return {"brokerAddrs": {str(i): a for i, a in sorted(b.broker_addrs.items())},
            "brokerName": b.broker_name, "cluster": b.cluster}


def _queue_data(q: QueueData) -> dict[str, Any]:
    return {"brokerName": q.broker_name, "perm": q.perm, "readQueueNums": q.read_queue_nums,
            "topicSysFlag": q.topic_sys_flag, "writeQueueNums": q.write_queue_nums}
