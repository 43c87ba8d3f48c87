"""The NameServer on 127.0.0.1: broker registration, routes, liveness, KV config, HTTP address list.

Each test starts its own NameServer (remoting and HTTP on free ports) and talks to it with our
RemotingClient, raw sockets or raw HTTP; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import zlib
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from rmqstore.net import RemotingClient
from rmqstore.protocol import (
    FrameDecoder,
    RemotingCommand,
    RemotingError,
    RequestCode,
    ResponseCode,
    encode,
)
from rmqstore.protocol.fastjson import loads as fastjson_loads
from rmqstore.protocol.register_body import decode_register_body
from rmqstore.server.namesrv import NameServer, NamesrvConfig, run_namesrv

CLUSTER = "DefaultCluster"


def run(test: Callable[[], Coroutine[Any, Any, None]], timeout_s: float = 15) -> None:
    asyncio.run(asyncio.wait_for(test(), timeout_s))


def config(**overrides: Any) -> NamesrvConfig:
    base: dict[str, Any] = {"host": "127.0.0.1", "port": 0, "http_port": 0, "scan_interval_s": 0.1}
    base.update(overrides)
    return NamesrvConfig(**base)


Scenario = Callable[[NameServer, RemotingClient, str], Awaitable[None]]


def scenario(fn: Scenario, cfg: NamesrvConfig | None = None, timeout_s: float = 15) -> None:
    async def main() -> None:
        async with NameServer(cfg or config()) as ns:
            host, port = ns.address
            async with RemotingClient() as client:
                await fn(ns, client, f"{host}:{port}")
    run(main, timeout_s)


# -- what a Java 4.9.7 broker sends ------------------------------------------------------------


def topic_config(name: str, queues: int = 4, perm: int = 6) -> str:
    """One TopicConfig as fastjson writes it (fields in name order)."""
    return (f'"{name}":{{"order":false,"perm":{perm},"readQueueNums":{queues},'
            f'"topicFilterType":"SINGLE_TAG","topicName":"{name}","topicSysFlag":0,'
            f'"writeQueueNums":{queues}}}')


def register_body(topics: dict[str, int], counter: int = 1, *, mapping: bool = False) -> bytes:
    """RegisterBrokerBody JSON. TBW102 always included, perm 7 (READ|WRITE|INHERIT).

    ``mapping`` adds a 5.x broker's static-topic map, whose Integer keys fastjson leaves
    unquoted; the name server must still read the body.
    """
    table = ",".join([topic_config("TBW102", 8, 7)]
                     + [topic_config(t, q) for t, q in topics.items()])
    extra = (',"topicQueueMappingInfoMap":{"T":{"bname":"b","currIdMap":{0:"b",1:"c"},'
             '"epoch":0,"totalQueues":2}}') if mapping else ""
    return (f'{{"filterServerList":[],"topicConfigSerializeWrapper":{{"dataVersion":'
            f'{{"counter":{counter},"timestamp":1700000000000}},"topicConfigTable":{{{table}}}'
            f'{extra}}}}}').encode()


def register_request(name: str, addr: str, body: bytes, *, broker_id: int = 0,
                     cluster: str = CLUSTER, crc: bool = True,
                     compressed: bool = False) -> RemotingCommand:
    ext = {"brokerName": name, "brokerAddr": addr, "clusterName": cluster,
           "haServerAddr": addr.rsplit(":", 1)[0] + ":10912", "brokerId": str(broker_id),
           "compressed": "true" if compressed else "false",
           "bodyCrc32": str(zlib.crc32(body) & 0x7FFFFFFF if crc else 0)}
    return RemotingCommand.request(RequestCode.REGISTER_BROKER, ext, body)


async def register(client: RemotingClient, ns: str, name: str, addr: str,
                   topics: dict[str, int], **kw: Any) -> RemotingCommand:
    counter = kw.pop("counter", 1)
    req = register_request(name, addr, register_body(topics, counter), **kw)
    resp = await client.invoke(ns, req, 2)
    assert resp.code == ResponseCode.SUCCESS, resp.remark
    return resp


async def route(client: RemotingClient, ns: str, topic: str) -> RemotingCommand:
    return await client.invoke(ns, RemotingCommand.request(
        RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": topic}), 2)


async def route_json(client: RemotingClient, ns: str, topic: str) -> dict[str, Any]:
    resp = await route(client, ns, topic)
    assert resp.code == ResponseCode.SUCCESS, resp.remark
    obj: dict[str, Any] = json.loads(resp.body)  # standard JSON: Python's parser must take it
    return obj


async def call(client: RemotingClient, ns: str, code: int,
               ext: dict[str, str] | None = None) -> RemotingCommand:
    return await client.invoke(ns, RemotingCommand.request(code, ext), 2)


async def eventually(check: Callable[[], Awaitable[bool]], within_s: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not await check():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


# -- registration and routes -------------------------------------------------------------------


def test_register_then_route_has_queue_and_broker_data() -> None:
    async def body(ns: NameServer, client: RemotingClient, addr: str) -> None:
        resp = await register(client, addr, "broker-a", "127.0.0.1:10911", {"T1": 4})
        # A master gets no haServerAddr/masterAddr, and no body while ORDER_TOPIC_CONFIG is empty.
        assert resp.ext_fields == {} and resp.body == b""

        raw = (await route(client, addr, "T1")).body
        assert b'"brokerAddrs":{"0":"127.0.0.1:10911"}' in raw  # quoted id keys, standard JSON
        obj = json.loads(raw)
        assert obj == {
            "brokerDatas": [{"brokerAddrs": {"0": "127.0.0.1:10911"}, "brokerName": "broker-a",
                             "cluster": CLUSTER}],
            "filterServerTable": {},
            "queueDatas": [{"brokerName": "broker-a", "perm": 6, "readQueueNums": 4,
                            "topicSysFlag": 0, "writeQueueNums": 4}],
        }
        tbw = await route_json(client, addr, "TBW102")
        assert tbw["queueDatas"][0]["perm"] == 7 and tbw["queueDatas"][0]["writeQueueNums"] == 8
    scenario(body)


def test_fastjson_unquoted_int_keys_in_body_are_read() -> None:
    async def body(ns: NameServer, client: RemotingClient, addr: str) -> None:
        req = register_request("broker-a", "127.0.0.1:10911",
                               register_body({"T1": 2}, mapping=True))
        assert b"{0:" in req.body
        resp = await client.invoke(addr, req, 2)
        assert resp.code == ResponseCode.SUCCESS, resp.remark
        assert (await route_json(client, addr, "T1"))["queueDatas"][0]["readQueueNums"] == 2
    scenario(body)


def test_unknown_topic_is_topic_not_exist() -> None:
    async def body(ns: NameServer, client: RemotingClient, addr: str) -> None:
        resp = await route(client, addr, "NoSuchTopic")
        assert resp.code == ResponseCode.TOPIC_NOT_EXIST and resp.body == b""
        assert resp.remark is not None and resp.remark.startswith(
            "No topic route info in name server for the topic: NoSuchTopic")
    scenario(body)


def test_cluster_info_and_topic_list() -> None:
    async def body(ns: NameServer, client: RemotingClient, addr: str) -> None:
        await register(client, addr, "broker-a", "127.0.0.1:10911", {"T1": 4, "T2": 1})
        info = fastjson_loads((await call(client, addr, RequestCode.GET_BROKER_CLUSTER_INFO)).body)
        assert info == {
            "brokerAddrTable": {"broker-a": {"brokerAddrs": {"0": "127.0.0.1:10911"},
                                             "brokerName": "broker-a", "cluster": CLUSTER}},
            "clusterAddrTable": {CLUSTER: ["broker-a"]},
        }
        topics = json.loads((await call(
            client, addr, RequestCode.GET_ALL_TOPIC_LIST_FROM_NAMESERVER)).body)
        assert topics == {"topicList": ["T1", "T2", "TBW102"]}
    scenario(body)


def test_two_brokers_in_one_cluster_share_a_topic() -> None:
    async def body(ns: NameServer, client: RemotingClient, addr: str) -> None:
        await register(client, addr, "broker-a", "127.0.0.1:10911", {"T1": 4})
        await register(client, addr, "broker-b", "127.0.0.1:10921", {"T1": 2, "OnlyB": 1})
        obj = await route_json(client, addr, "T1")
        queues = {q["brokerName"]: q["writeQueueNums"] for q in obj["queueDatas"]}
        brokers = {b["brokerName"]: b["brokerAddrs"] for b in obj["brokerDatas"]}
        assert queues == {"broker-a": 4, "broker-b": 2}
        assert brokers == {"broker-a": {"0": "127.0.0.1:10911"},
                           "broker-b": {"0": "127.0.0.1:10921"}}
        only_b = await route_json(client, addr, "OnlyB")
        assert [b["brokerName"] for b in only_b["brokerDatas"]] == ["broker-b"]
        info = json.loads((await call(client, addr, RequestCode.GET_BROKER_CLUSTER_INFO)).body)
        assert info["clusterAddrTable"] == {CLUSTER: ["broker-a", "broker-b"]}
    scenario(body)


def test_slave_learns_its_master_and_joins_broker_addrs() -> None:
    async def body(ns: NameServer, client: RemotingClient, addr: str) -> None:
        await register(client, addr, "broker-a", "127.0.0.1:10911", {"T1": 4})
        resp = await register(client, addr, "broker-a", "127.0.0.2:10911", {"T1": 4}, broker_id=1)
        assert resp.ext_fields == {"haServerAddr": "127.0.0.1:10912",
                                   "masterAddr": "127.0.0.1:10911"}
        obj = await route_json(client, addr, "T1")
        assert obj["brokerDatas"][0]["brokerAddrs"] == {"0": "127.0.0.1:10911",
                                                       "1": "127.0.0.2:10911"}
    scenario(body)


def test_topic_changes_apply_only_with_a_new_data_version() -> None:
    async def body(ns: NameServer, client: RemotingClient, addr: str) -> None:
        await register(client, addr, "broker-a", "127.0.0.1:10911", {"T1": 4}, counter=1)
        await register(client, addr, "broker-a", "127.0.0.1:10911", {"T1": 8}, counter=1)
        assert (await route_json(client, addr, "T1"))["queueDatas"][0]["writeQueueNums"] == 4
        await register(client, addr, "broker-a", "127.0.0.1:10911", {"T1": 8, "T9": 1}, counter=2)
        assert (await route_json(client, addr, "T1"))["queueDatas"][0]["writeQueueNums"] == 8
        assert (await route(client, addr, "T9")).code == ResponseCode.SUCCESS
    scenario(body)


def test_unregister_removes_routes() -> None:
    async def body(ns: NameServer, client: RemotingClient, addr: str) -> None:
        await register(client, addr, "broker-a", "127.0.0.1:10911", {"T1": 4})
        await register(client, addr, "broker-b", "127.0.0.1:10921", {"T1": 4})
        resp = await call(client, addr, RequestCode.UNREGISTER_BROKER, {
            "brokerName": "broker-a", "brokerAddr": "127.0.0.1:10911",
            "clusterName": CLUSTER, "brokerId": "0"})
        assert resp.code == ResponseCode.SUCCESS
        obj = await route_json(client, addr, "T1")
        assert [q["brokerName"] for q in obj["queueDatas"]] == ["broker-b"]
        await call(client, addr, RequestCode.UNREGISTER_BROKER, {
            "brokerName": "broker-b", "brokerAddr": "127.0.0.1:10921",
            "clusterName": CLUSTER, "brokerId": "0"})
        assert (await route(client, addr, "T1")).code == ResponseCode.TOPIC_NOT_EXIST
        info = json.loads((await call(client, addr, RequestCode.GET_BROKER_CLUSTER_INFO)).body)
        assert info == {"brokerAddrTable": {}, "clusterAddrTable": {}}
    scenario(body)


def test_silent_broker_expires_while_heartbeating_one_stays() -> None:
    async def body(ns: NameServer, client: RemotingClient, addr: str) -> None:
        # Each broker on its own connection, as real brokers are.
        async with RemotingClient() as conn_a, RemotingClient() as conn_b:
            await register(conn_a, addr, "broker-a", "127.0.0.1:10911", {"T1": 4})
            await register(conn_b, addr, "broker-b", "127.0.0.1:10921", {"T1": 4})
            silent = await conn_b.connection(addr, 1)

            async def only_a_left() -> bool:
                # broker-a re-registers (its heartbeat) on every poll; broker-b stays silent.
                await register(conn_a, addr, "broker-a", "127.0.0.1:10911", {"T1": 4})
                obj = await route_json(client, addr, "T1")
                return [b["brokerName"] for b in obj["brokerDatas"]] == ["broker-a"]

            start = asyncio.get_running_loop().time()
            await eventually(only_a_left, within_s=5)
            assert asyncio.get_running_loop().time() - start >= 0.8  # not before the expiry
            assert "127.0.0.1:10921" not in ns.routes.broker_live_table
            await asyncio.wait_for(silent.wait_closed(), 2)  # Java closes a stale channel too
    scenario(body, config(broker_expire_s=1.0))


def test_expiry_removes_the_last_broker_and_its_topics() -> None:
    async def body(ns: NameServer, client: RemotingClient, addr: str) -> None:
        # The broker registers on a connection of its own: the expiry closes that one, as
        # Java's scanNotActiveBroker does, and the asking client must keep its own.
        async with RemotingClient() as broker_conn:
            await register(broker_conn, addr, "broker-a", "127.0.0.1:10911", {"T1": 4})

            async def gone() -> bool:
                return (await route(client, addr, "T1")).code == ResponseCode.TOPIC_NOT_EXIST

            await eventually(gone, within_s=5)
            assert ns.routes.topic_list() == [] and ns.routes.cluster_addr_table == {}
    scenario(body, config(broker_expire_s=0.5))


def test_closed_broker_connection_removes_it_at_once() -> None:
    async def body(ns: NameServer, client: RemotingClient, addr: str) -> None:
        async with RemotingClient() as broker_conn:
            await register(broker_conn, addr, "broker-a", "127.0.0.1:10911", {"T1": 4})
            assert (await route(client, addr, "T1")).code == ResponseCode.SUCCESS

        async def gone() -> bool:
            return (await route(client, addr, "T1")).code == ResponseCode.TOPIC_NOT_EXIST

        await eventually(gone, within_s=2)
    scenario(body)  # default 120 s expiry: only the closed connection can explain it


# -- body forms and checks ---------------------------------------------------------------------


def test_crc_mismatch_is_system_error() -> None:
    async def body(ns: NameServer, client: RemotingClient, addr: str) -> None:
        req = register_request("broker-a", "127.0.0.1:10911", register_body({"T1": 4}))
        req.ext_fields["bodyCrc32"] = "12345"
        resp = await client.invoke(addr, req, 2)
        assert (resp.code, resp.remark) == (ResponseCode.SYSTEM_ERROR, "crc32 not match")
        assert (await route(client, addr, "T1")).code == ResponseCode.TOPIC_NOT_EXIST
    scenario(body)


def test_compressed_body_is_read() -> None:
    def part(data: bytes) -> bytes:
        return struct.pack(">i", len(data)) + data

    # RegisterBrokerBody.encode(true): DataVersion JSON, count, TopicConfig.encode() lines, filters.
    raw = (part(b'{"counter":1,"timestamp":1700000000000}') + struct.pack(">i", 2)
           + part(b"T1 4 4 6 SINGLE_TAG") + part(b"TBW102 8 8 7 SINGLE_TAG") + part(b"[]"))
    compressed = zlib.compress(raw, 9)
    decoded = decode_register_body(compressed, compressed=True)
    assert decoded.topic_configs["T1"].write_queue_nums == 4 and decoded.data_version.counter == 1

    async def body(ns: NameServer, client: RemotingClient, addr: str) -> None:
        req = register_request("broker-a", "127.0.0.1:10911", compressed, compressed=True)
        assert (await client.invoke(addr, req, 2)).code == ResponseCode.SUCCESS
        assert (await route_json(client, addr, "T1"))["queueDatas"][0]["readQueueNums"] == 4
    scenario(body)


def test_bad_body_and_missing_header_field_are_system_error() -> None:
    async def body(ns: NameServer, client: RemotingClient, addr: str) -> None:
        req = register_request("broker-a", "127.0.0.1:10911", b"{not json", crc=False)
        resp = await client.invoke(addr, req, 2)
        assert resp.code == ResponseCode.SYSTEM_ERROR \
            and "RegisterBrokerBody" in (resp.remark or "")
        resp = await call(client, addr, RequestCode.GET_ROUTEINFO_BY_TOPIC, {})
        assert resp.code == ResponseCode.SYSTEM_ERROR and "<topic>" in (resp.remark or "")
    scenario(body)


def test_unserved_code_is_not_supported() -> None:
    async def body(ns: NameServer, client: RemotingClient, addr: str) -> None:
        resp = await call(client, addr, RequestCode.UPDATE_NAMESRV_CONFIG, {})
        assert resp.code == ResponseCode.REQUEST_CODE_NOT_SUPPORTED
    scenario(body)


def test_query_data_version() -> None:
    async def body(ns: NameServer, client: RemotingClient, addr: str) -> None:
        await register(client, addr, "broker-a", "127.0.0.1:10911", {"T1": 4}, counter=5)
        ext = {"brokerName": "broker-a", "brokerAddr": "127.0.0.1:10911",
               "clusterName": CLUSTER, "brokerId": "0"}
        for counter, changed in ((5, "false"), (6, "true")):
            req = RemotingCommand.request(
                RequestCode.QUERY_DATA_VERSION, ext,
                b'{"counter":%d,"timestamp":1700000000000}' % counter)
            resp = await client.invoke(addr, req, 2)
            assert resp.code == ResponseCode.SUCCESS and resp.ext_fields == {"changed": changed}
            assert json.loads(resp.body) == {"counter": 5, "timestamp": 1700000000000}
    scenario(body)


# -- KV config ---------------------------------------------------------------------------------


def test_kv_config_round_trip_and_persistence(tmp_path: Path) -> None:
    path = tmp_path / "kvConfig.json"

    async def body(ns: NameServer, client: RemotingClient, addr: str) -> None:
        key = {"namespace": "NS", "key": "k"}
        resp = await call(client, addr, RequestCode.GET_KV_CONFIG, key)
        assert (resp.code, resp.remark) == (ResponseCode.QUERY_NOT_FOUND,
                                            "No config item, Namespace: NS Key: k")
        assert (await call(client, addr, RequestCode.PUT_KV_CONFIG,
                           {**key, "value": "v1"})).code == ResponseCode.SUCCESS
        resp = await call(client, addr, RequestCode.GET_KV_CONFIG, key)
        assert (resp.code, resp.ext_fields) == (ResponseCode.SUCCESS, {"value": "v1"})
        assert json.loads(path.read_text()) == {"configTable": {"NS": {"k": "v1"}}}
        assert (await call(client, addr, RequestCode.DELETE_KV_CONFIG, key)).code == 0
        assert (await call(client, addr, RequestCode.GET_KV_CONFIG, key)).code == \
            ResponseCode.QUERY_NOT_FOUND
        await call(client, addr, RequestCode.PUT_KV_CONFIG, {**key, "value": "kept"})

    scenario(body, config(kv_config_path=path))

    async def reloaded(ns: NameServer, client: RemotingClient, addr: str) -> None:
        resp = await call(client, addr, RequestCode.GET_KV_CONFIG, {"namespace": "NS", "key": "k"})
        assert resp.ext_fields == {"value": "kept"}

    scenario(reloaded, config(kv_config_path=path))


def test_order_topic_conf_reaches_brokers_and_routes() -> None:
    async def body(ns: NameServer, client: RemotingClient, addr: str) -> None:
        await call(client, addr, RequestCode.PUT_KV_CONFIG, {
            "namespace": "ORDER_TOPIC_CONFIG", "key": "T1", "value": "broker-a:4"})
        resp = await register(client, addr, "broker-a", "127.0.0.1:10911", {"T1": 4})
        assert json.loads(resp.body) == {"table": {"T1": "broker-a:4"}}
        assert (await route_json(client, addr, "T1"))["orderTopicConf"] == "broker-a:4"
    scenario(body, config(order_message_enable=True))


# -- what the C++ client 1.2.4 sends, and garbage ----------------------------------------------


def cpp_route_request(address: tuple[str, int], topic: str) -> tuple[dict[str, Any], bytes]:
    """GET_ROUTEINFO_BY_TOPIC exactly as rocketmq-client-cpp 1.2.4 frames it."""
    header = json.dumps({
        "code": 105, "extFields": {"AccessKey": "", "OnsChannel": "ALIYUN",
                                   "Signature": "c2ln", "topic": topic},
        "flag": 0, "language": "CPP", "opaque": 3, "remark": "", "version": 63,
    }, separators=(",", ":"), sort_keys=True).encode() + b"\n"  # jsoncpp's newline is counted
    frame = struct.pack(">ii", 4 + len(header), len(header)) + header
    with socket.create_connection(address, timeout=2) as sock:
        sock.sendall(frame)
        decoder, got, raw = FrameDecoder(), [], b""
        while not got:
            data = sock.recv(65536)
            assert data, "closed without a response"
            raw += data
            got = list(decoder.feed(data))
    # The C++ client takes the whole header word as the header length: the type byte must be 0.
    assert raw[4] == 0
    resp = got[0]
    assert resp.opaque == 3 and resp.is_response
    return {"code": resp.code, "ext": resp.ext_fields}, resp.body


def test_cpp_client_route_request_gets_json_it_parses() -> None:
    async def body(ns: NameServer, client: RemotingClient, addr: str) -> None:
        await register(client, addr, "broker-a", "127.0.0.1:10911", {"T1": 4})
        meta, raw = await asyncio.to_thread(cpp_route_request, ns.address, "T1")
        assert meta["code"] == ResponseCode.SUCCESS
        obj = json.loads(raw)
        # TopicRouteData::Decode reads these as asInt()/asString(), brokerAddrs keys via atoi.
        q = obj["queueDatas"][0]
        assert all(isinstance(q[k], int) for k in ("readQueueNums", "writeQueueNums", "perm"))
        assert {int(k): v for k, v in obj["brokerDatas"][0]["brokerAddrs"].items()} == {
            0: "127.0.0.1:10911"}
        meta, raw = await asyncio.to_thread(cpp_route_request, ns.address, "Nope")
        assert meta["code"] == ResponseCode.TOPIC_NOT_EXIST and raw == b""
    scenario(body)


def test_garbage_connection_does_not_disturb_the_name_server() -> None:
    def throw(address: tuple[str, int], data: bytes) -> None:
        with socket.create_connection(address, timeout=2) as sock:
            try:
                sock.sendall(data)
                sock.shutdown(socket.SHUT_WR)
                while sock.recv(65536):
                    pass
            except (ConnectionError, TimeoutError):
                pass

    async def body(ns: NameServer, client: RemotingClient, addr: str) -> None:
        await register(client, addr, "broker-a", "127.0.0.1:10911", {"T1": 4})
        for junk in (b"\xff" * 64, b"GET / HTTP/1.1\r\n\r\n", struct.pack(">i", 10) + b"\x00" * 10,
                     encode(RemotingCommand(code=105, ext_fields={"topic": "T1"}))[:-3]):
            await asyncio.to_thread(throw, ns.address, junk)
        assert ns.http_address is not None
        await asyncio.to_thread(throw, ns.http_address, b"\x00\x01garbage" * 100)
        # Routes and the broker survive: the garbage connections were not the broker's.
        assert (await route_json(client, addr, "T1"))["brokerDatas"][0]["brokerName"] == "broker-a"
        assert (await http_get(ns, "/rocketmq/nsaddr"))[0] == 200
    scenario(body)


# -- HTTP address list -------------------------------------------------------------------------


async def http_get(ns: NameServer, path: str) -> tuple[int, bytes]:
    """A request as the C++ client writes it (HTTP/1.0, Connection: close); (status, body)."""
    assert ns.http_address is not None
    reader, writer = await asyncio.open_connection(*ns.http_address)
    writer.write(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: */*\r\n"
                 f"Connection: close\r\n\r\n".encode())
    data = await asyncio.wait_for(reader.read(), 2)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_nsaddr_endpoint_serves_the_configured_list() -> None:
    async def body(ns: NameServer, client: RemotingClient, addr: str) -> None:
        status, text = await http_get(ns, "/rocketmq/nsaddr")
        assert (status, text) == (200, b"10.0.0.1:9876;10.0.0.2:9876\n")
        # Java with a unit name: URL + "-<unit>?nofix=1".
        assert await http_get(ns, "/rocketmq/nsaddr-unit1?nofix=1") == (200, text)
        assert (await http_get(ns, "/rocketmq/other"))[0] == 404
    scenario(body, config(nsaddr_list=("10.0.0.1:9876", "10.0.0.2:9876")))


def test_nsaddr_endpoint_defaults_to_own_address() -> None:
    async def body(ns: NameServer, client: RemotingClient, addr: str) -> None:
        assert await http_get(ns, "/rocketmq/nsaddr") == (200, addr.encode() + b"\n")
    scenario(body)


def test_run_namesrv_serves_until_cancelled() -> None:
    async def main() -> None:
        with socket.socket() as probe:  # a free port, so that the test can find the server
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        task = asyncio.create_task(run_namesrv(config(port=port)))
        async with RemotingClient() as client:
            async def up() -> bool:
                try:
                    return (await route(client, f"127.0.0.1:{port}", "T")).code == \
                        ResponseCode.TOPIC_NOT_EXIST
                except RemotingError:  # not listening yet
                    return False
            await eventually(up, within_s=3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    run(main)


def test_http_can_be_turned_off() -> None:
    async def body(ns: NameServer, client: RemotingClient, addr: str) -> None:
        assert ns.http_address is None
    scenario(body, config(http_port=None))


@pytest.mark.parametrize("text, expected", [
    ('{"brokerAddrs":{0:"a:1",1:"b:2"}}', {"brokerAddrs": {"0": "a:1", "1": "b:2"}}),
    ('{"s":"{0:x}","m":{-1:[1,2]}}', {"s": "{0:x}", "m": {"-1": [1, 2]}}),
    ('{"q":"say \\"hi\\", 3:","n":{7:{}}}', {"q": 'say "hi", 3:', "n": {"7": {}}}),
])
def test_fastjson_dialect(text: str, expected: dict[str, Any]) -> None:
    assert fastjson_loads(text) == expected
