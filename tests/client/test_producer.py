"""Producer against `rmqstore serve`: round trips of bytes and properties, batch, oneway,
ordered sends, delay level, NameServer discovery, ACL credentials, retry on another broker."""

from __future__ import annotations

import asyncio
import os

import pytest

from rmqstore.client import (
    Admin,
    ConsumeFromWhere,
    Credentials,
    LitePullConsumer,
    Message,
    MessageQueue,
    Producer,
    SendStatus,
)
from rmqstore.client.errors import SendFailed
from rmqstore.client.routes import _Entry
from rmqstore.protocol.route import BrokerData, QueueData, TopicRouteData
from rmqstore.server.testing import max_offset
from tests.server.acl_files import ADMIN, ALLOWED_TOPIC, DENIED_TOPIC, NORMAL, WRONG
from tests.server.acl_serve import AclServe

from .conftest import free_port, run, wait_until


async def drain(ns: str, topic: str, want: int, timeout_s: float = 10.0, group: str = "drain"):
    """Every message of ``topic`` from offset 0 through a lite pull consumer with assign()."""
    c = LitePullConsumer(f"{group}_{topic}", ns, consume_from_where=ConsumeFromWhere.FIRST_OFFSET,
                         broker_suspend_ms=1000)
    got = []
    async with c:
        await c.assign(await c.fetch_message_queues(topic))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while len(got) < want and loop.time() < deadline:
            got += await c.poll(0.5)
    return got


def test_round_trip_bytes_and_properties(server, topic) -> None:
    async def main():
        async with Producer("PG_rt", server.namesrv) as p:
            await p.create_topic(topic, 2)
            every_byte = bytes(range(256)) * 3
            big = os.urandom(2000) * 10  # 20 kB, compressible: sent zlib'd
            sent = [
                await p.send(Message(topic, every_byte, tags="TagA", keys=["k1", "k2"], flag=42,
                                     properties={"ünï": "çødé ✓", "empty-ish": " "})),
                await p.send(Message(topic, big, tags="Big")),
            ]
            assert all(r.status is SendStatus.SEND_OK for r in sent)
            got = {m.msg_id: m for m in await drain(server.namesrv, topic, 2)}
            a, b = got[sent[0].msg_id], got[sent[1].msg_id]
            assert a.body == every_byte and a.tags == "TagA" and a.keys == "k1 k2" and a.flag == 42
            assert a.properties["ünï"] == "çødé ✓" and a.properties["empty-ish"] == " "
            assert a.offset_msg_id == sent[0].offset_msg_id
            assert (a.queue_id, a.queue_offset) == (sent[0].queue.queue_id, sent[0].queue_offset)
            assert b.body == big and b.sys_flag & 0x1  # stored compressed, handed out inflated
            assert len(sent[0].msg_id) == 32
    run(main())


def test_batch_and_oneway(server, topic) -> None:
    async def main():
        async with Producer("PG_batch", server.namesrv) as p:
            await p.create_topic(topic, 1)
            r = await p.send_batch([Message(topic, b"b%d" % i, tags="T") for i in range(5)])
            assert r.status is SendStatus.SEND_OK and len(r.msg_id.split(",")) == 5
            assert len(r.offset_msg_id.split(",")) == 5
            await p.send_oneway(Message(topic, b"oneway"))
            got = await drain(server.namesrv, topic, 6)
            assert sorted(m.body for m in got) == \
                sorted([b"b%d" % i for i in range(5)] + [b"oneway"])
            assert [m.msg_id for m in got if m.body != b"oneway"] == r.msg_id.split(",")
    run(main())


def test_ordered_send_by_sharding_key_and_selector(server, topic) -> None:
    async def main():
        async with Producer("PG_order", server.namesrv) as p:
            await p.create_topic(topic, 4)
            for i in range(30):
                key = f"order-{i % 3}"
                r = await p.send(Message(topic, f"{key}:{i}".encode()), sharding_key=key)
                assert r.queue.queue_id == abs(hash_java(key)) % 4

            def pick_last(mqs, msg, arg):
                return mqs[-1]

            r = await p.send(Message(topic, b"sel"), selector=pick_last, arg=None)
            assert r.queue.queue_id == 3
            got = await drain(server.namesrv, topic, 31)
            by_key: dict[str, list[int]] = {}
            for m in sorted(got, key=lambda m: (m.queue_id, m.queue_offset)):
                if m.body != b"sel":
                    k, i = m.body.decode().split(":")
                    by_key.setdefault(k, []).append(int(i))
            assert all(v == sorted(v) and len(v) == 10 for v in by_key.values())
    run(main())


def hash_java(s: str) -> int:
    from rmqstore.client.producer import java_string_hash

    return java_string_hash(s)


def test_delay_level_is_sent_as_property(server, topic) -> None:
    """DELAY=1 goes on the wire; the broker keeps the message in SCHEDULE_TOPIC_XXXX (level
    1's queue 0) with DELAY=1 and its real topic, and puts it in the topic no sooner than level
    1's 1 s later (ScheduleMessageService, store/src/main/java/org/apache/rocketmq/store/
    schedule/ScheduleMessageService.java)."""
    async def main():
        loop = asyncio.get_running_loop()
        async with Producer("PG_delay", server.namesrv) as p, Admin(server.namesrv) as admin:
            await p.create_topic(topic, 1)
            sent_at = loop.time()
            r = await p.send(Message(topic, b"later", delay_level=1))
            assert r.status is SendStatus.SEND_OK
            held = await admin.view_by_offset_id(r.offset_msg_id)
            assert (held.topic, held.queue_id, held.body) == ("SCHEDULE_TOPIC_XXXX", 0, b"later")
            assert held.properties.get("DELAY") == "1"
            assert held.properties.get("REAL_TOPIC") == topic
            got = await drain(server.namesrv, topic, 1, timeout_s=10.0)
            arrived_after = loop.time() - sent_at
            assert [m.body for m in got] == [b"later"]
            assert arrived_after >= 1.0
            assert got[0].store_timestamp - held.store_timestamp >= 1000
            assert "DELAY" not in got[0].properties
    run(main())


def test_namesrv_from_env_and_http_endpoint(server, topic, monkeypatch) -> None:
    async def main():
        monkeypatch.setenv("NAMESRV_ADDR", server.namesrv)
        async with Producer("PG_env") as p:
            assert (await p.send(Message(topic, b"env"))).status is SendStatus.SEND_OK
        monkeypatch.delenv("NAMESRV_ADDR")
        port = free_port()
        hits = []

        async def http(reader, writer):
            hits.append(await reader.readuntil(b"\r\n\r\n"))
            body = server.namesrv.encode() + b"\n"
            writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
            writer.close()

        srv = await asyncio.start_server(http, "127.0.0.1", port)
        async with srv, Producer("PG_http", namesrv_domain=f"127.0.0.1:{port}") as p:
            assert (await p.send(Message(topic, b"http"))).status is SendStatus.SEND_OK
        assert hits and hits[0].startswith(b"GET /rocketmq/nsaddr HTTP/1.0")
    run(main())


def test_credentials_are_signed_and_checked(tmp_path) -> None:
    """With aclEnable=true (RocketMQ's shipped plain_acl.yml) a producer signing as an account
    allowed the topic is served; a wrong secret, no credentials, or a topic the account may
    not publish to are refused (by the NameServer or the broker) and nothing is stored."""
    srv = AclServe(tmp_path).start()
    try:
        for topic in (ALLOWED_TOPIC, DENIED_TOPIC):
            srv.create_topic(topic)

        async def main():
            async with Producer("PG_acl", srv.namesrv, credentials=NORMAL) as p:
                assert (await p.send(Message(ALLOWED_TOPIC, b"acl"))).status is SendStatus.SEND_OK
            for credentials, topic, reason in [
                    (WRONG, ALLOWED_TOPIC, "Check signature failed for accessKey=RocketMQ"),
                    (None, ALLOWED_TOPIC, "No accessKey is configured"),
                    (Credentials("stranger", "whatever"), ALLOWED_TOPIC, "No acl config for"),
                    (NORMAL, DENIED_TOPIC, "No default permission for topic:topicA")]:
                async with Producer("PG_acl", srv.namesrv, credentials=credentials,
                                    retry_times_when_send_failed=0) as p:
                    with pytest.raises(SendFailed, match=reason):
                        await p.send(Message(topic, b"refused"))
        run(main())
        stored = {t: sum(max_offset(srv.broker, t, q, ADMIN) for q in range(4))
                  for t in (ALLOWED_TOPIC, DENIED_TOPIC)}
        assert stored == {ALLOWED_TOPIC: 1, DENIED_TOPIC: 0}
    finally:
        srv.stop()


def test_retry_on_another_broker_and_avoid_the_failed_one(server, topic) -> None:
    async def main():
        async with Producer("PG_retry", server.namesrv) as p:
            await p.create_topic(topic, 2)
            real = await p.routes.update(topic)
            dead = f"127.0.0.1:{free_port()}"  # nothing listens there
            route = TopicRouteData(
                real.queue_datas + (QueueData("broker-dead", 2, 2, 6),),
                real.broker_datas + (BrokerData("C", "broker-dead", {0: dead}),))
            p.routes.routes[topic] = _Entry(route, 1e18)  # never refreshed during the test
            results = [await p.send(Message(topic, b"r%d" % i)) for i in range(8)]
            assert all(r.queue.broker_name == "broker-a" for r in results)
            assert not p._faults.available("broker-dead")
    run(main())


def test_unknown_topic_goes_through_tbw102(server, topic) -> None:
    async def main():
        async with Producer("PG_auto", server.namesrv) as p:
            r = await p.send(Message(topic, b"auto"))
            assert r.status is SendStatus.SEND_OK and r.queue.queue_id < 4
            await wait_until(lambda: True)
            with pytest.raises(ValueError):
                await p.send(Message(topic, b""))
    run(main())


def test_explicit_queue(server, topic) -> None:
    async def main():
        async with Producer("PG_q", server.namesrv) as p:
            await p.create_topic(topic, 3)
            r = await p.send(Message(topic, b"q"), queue=MessageQueue(topic, "broker-a", 2))
            assert r.queue.queue_id == 2
    run(main())
