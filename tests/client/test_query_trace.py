"""Message query, consume progress, message trace and the `rmqstore admin` commands against a
real `rmqstore serve` process. The C++ client binding (rocketmq 0.4.4) exposes no
query, view or trace API, so only our client drives these paths."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from rmqstore.client import (
    BrokerError,
    ConsumeFromWhere,
    ConsumeStatus,
    Message,
    Producer,
    PushConsumer,
)
from rmqstore.client.admin import Admin
from rmqstore.client.trace import TRACE_TOPIC, ConsumeReturnType, TraceType
from rmqstore.client.transport import Transport
from rmqstore.protocol import RequestCode, ResponseCode
from rmqstore.record import make_msg_id, parse_msg_id

from .conftest import run, wait_until

FAST = {"consume_from_where": ConsumeFromWhere.FIRST_OFFSET, "rebalance_interval_s": 1.0,
        "persist_interval_s": 0.2, "broker_suspend_ms": 1000}


async def _send_all(p: Producer, topic: str, items: list[tuple[bytes, list[str]]]) -> list:
    return [await p.send(Message(topic, body, keys=keys, tags="Q")) for body, keys in items]


def test_query_by_key_and_time_range(server, topic) -> None:
    async def main():
        async with Producer("PG_q", server.namesrv) as p, Admin(server.namesrv) as admin:
            await p.create_topic(topic, 2)
            await p.create_topic(topic + "_other", 1)
            first = await _send_all(p, topic, [(b"a1", ["k-A"]), (b"a2", ["x", "k-A"]),
                                               (b"ab", ["k-AB"]), (b"b1", ["k-B"])])
            await p.send(Message(topic + "_other", b"elsewhere", keys="k-A"))
            got = await admin.query_by_key(topic, "k-A")
            assert sorted(m.body for m in got) == [b"a1", b"a2"]
            assert {m.msg_id for m in got} == {first[0].msg_id, first[1].msg_id}
            assert [m.body for m in await admin.query_by_key(topic, "k-AB")] == [b"ab"]
            # Time range: only the later message with the key falls inside it. The index keeps
            # whole seconds since its file began (IndexFile's timeDiff), so a lower bound
            # matches from up to 999 ms before a message: the gap is over a second.
            await asyncio.sleep(1.1)
            later = await p.send(Message(topic, b"a3", keys="k-A"))
            stored = await admin.view_by_offset_id(later.offset_msg_id)
            got = await admin.query_by_key(topic, "k-A", begin_ms=stored.store_timestamp - 1000)
            assert [m.body for m in got] == [b"a3"]
            got = await admin.query_by_key(topic, "k-A", 0, stored.store_timestamp - 1)
            assert sorted(m.body for m in got) == [b"a1", b"a2"]
            assert len(await admin.query_by_key(topic, "k-A", max_num=1)) == 1
            assert await admin.query_by_key(topic, "never-used") == []
    run(main())


def test_view_by_offset_id_and_by_uniq_key(server, topic) -> None:
    async def main():
        async with Producer("PG_v", server.namesrv) as p, Admin(server.namesrv) as admin:
            r = await p.send(Message(topic, b"viewed body", tags="TagV", keys="vk"))
            m = await admin.view_by_offset_id(r.offset_msg_id)
            assert (m.topic, m.body, m.tags, m.keys) == (topic, b"viewed body", "TagV", "vk")
            assert m.msg_id == r.msg_id and m.offset_msg_id == r.offset_msg_id
            assert m.queue_offset == r.queue_offset
            u = await admin.query_by_uniq_key(topic, r.msg_id)
            assert u is not None and u.body == b"viewed body" and u.offset_msg_id == r.offset_msg_id
            assert await admin.query_by_uniq_key(topic, "0" * 32) is None
            # An id past the end of the commit log: SYSTEM_ERROR from the broker, nothing else.
            host, offset = parse_msg_id(r.offset_msg_id)
            try:
                await admin.view_by_offset_id(make_msg_id(host, offset + (1 << 40)))
                raise AssertionError("no error for a missing offset")
            except BrokerError as exc:
                assert exc.code == ResponseCode.SYSTEM_ERROR
                assert "can not find message by the offset" in (exc.remark or "")
            # An offset inside a record is not a message either.
            try:
                await admin.view_by_offset_id(make_msg_id(host, offset + 4))
                raise AssertionError("no error for an offset inside a record")
            except BrokerError as exc:
                assert exc.code == ResponseCode.SYSTEM_ERROR
    run(main())


def test_query_message_wire_codes(server, topic) -> None:
    async def main():
        async with Producer("PG_w", server.namesrv) as p:
            r = await p.send(Message(topic, b"w", keys="wk"))
            # a second record: on a fresh broker the first one sits at offset 0
            later = await p.send(Message(topic, b"w2", keys="wk2"))
        _, later_offset = parse_msg_id(later.offset_msg_id)
        t = Transport(server.namesrv, None)
        try:
            def ext(key):
                return {"topic": topic, "key": key, "maxNum": "32", "beginTimestamp": "0",
                        "endTimestamp": str(1 << 62)}
            call = t.request(RequestCode.QUERY_MESSAGE, ext("no-such-key"))
            resp = await t.invoke(server.broker_addr, call, 5)
            assert resp.code == ResponseCode.QUERY_NOT_FOUND == 22
            assert resp.remark == "can not find message, maybe time range not correct"
            assert int(resp.ext_fields["indexLastUpdatePhyoffset"]) >= later_offset > 0
            assert int(resp.ext_fields["indexLastUpdateTimestamp"]) > 0
            resp = await t.invoke(server.broker_addr, t.request(RequestCode.QUERY_MESSAGE,
                                                                ext("wk")), 5)
            assert resp.code == ResponseCode.SUCCESS
            assert int.from_bytes(resp.body[:4], "big") == len(resp.body)  # one whole record
            # A uniq-key lookup ignores maxNum=0 (the broker's defaultQueryMaxNum applies).
            uniq = {**ext(r.msg_id), "maxNum": "0", "_UNIQUE_KEY_QUERY": "true"}
            resp = await t.invoke(server.broker_addr, t.request(RequestCode.QUERY_MESSAGE, uniq), 5)
            assert resp.code == ResponseCode.SUCCESS
            # A missing required header field is refused with a clear remark.
            bad = {"topic": topic, "key": "wk"}
            resp = await t.invoke(server.broker_addr, t.request(RequestCode.QUERY_MESSAGE, bad), 5)
            assert resp.code == ResponseCode.SYSTEM_ERROR and "maxNum" in (resp.remark or "")
        finally:
            await t.close()
    run(main())


def test_consume_stats_lag_drops_to_zero(server, topic) -> None:
    group = "CG_stats_" + topic[-12:]

    async def main():
        async with Producer("PG_s", server.namesrv) as p, Admin(server.namesrv) as admin:
            await p.create_topic(topic, 2)
            for i in range(10):
                await p.send(Message(topic, b"%d" % i))
            before = await admin.consume_stats(group, topic)
            assert len(before.queues) == 2 and before.total_lag == 10
            assert sum(q.broker_offset for q in before.queues) == 10
            assert all(q.consumer_offset == 0 and q.last_timestamp_ms == 0 for q in before.queues)
            tstats = await admin.topic_stats(topic)
            assert [(q.queue_id, o.min_offset) for q, o in tstats.items()] == [(0, 0), (1, 0)]
            assert sum(o.max_offset for o in tstats.values()) == 10
            assert all(o.last_update_timestamp > 0 for o in tstats.values())
            assert await admin.consumer_connections(group) == []  # not online yet
            got = []
            c = PushConsumer(group, server.namesrv, **FAST)
            c.subscribe(topic)

            async def on(msgs):
                got.extend(msgs)
                return ConsumeStatus.SUCCESS
            c.on_message(on)
            async with c:
                await wait_until(lambda: len(got) >= 10)
                lag = []

                async def drained() -> bool:
                    stats = await admin.consume_stats(group, topic)
                    lag.append(stats.total_lag)
                    return stats.total_lag == 0
                deadline = asyncio.get_running_loop().time() + 10
                while not await drained():
                    assert asyncio.get_running_loop().time() < deadline, lag
                    await asyncio.sleep(0.1)
                conns = await admin.consumer_connections(group)
                assert [x.client_id for x in conns] == [c.client_id]
            assert await admin.consumer_connections(group) == []  # left: CONSUMER_NOT_ONLINE
            after = await admin.consume_stats(group, topic)
            assert after.total_lag == 0
            assert all(q.consumer_offset == q.broker_offset and q.last_timestamp_ms > 0
                       for q in after.queues)
            # Without a topic: every topic the group committed offsets for, retry topic included.
            every = await admin.consume_stats(group)
            assert {q.queue.topic for q in every.queues} >= {topic}
            assert every.total_lag == 0
    run(main())


def test_trace_of_a_send_and_its_consumption(server, topic) -> None:
    group = "CG_trace_" + topic[-12:]

    async def main():
        got = []
        async with Producer("PG_t", server.namesrv, trace=True) as p:
            r = await p.send(Message(topic, b"traced", tags="TagT", keys=["tk1", "tk2"]))
            c = PushConsumer(group, server.namesrv, trace=True, **FAST)
            c.subscribe(topic)

            async def on(msgs):
                got.extend(msgs)
                return ConsumeStatus.SUCCESS
            c.on_message(on)
            async with c:
                await wait_until(lambda: len(got) >= 1)
        # Both closed: their trace dispatchers flushed.
        async with Admin(server.namesrv) as admin:
            records = []

            async def found() -> bool:
                records[:] = await admin.traces(r.msg_id)
                return len(records) >= 3
            deadline = asyncio.get_running_loop().time() + 10
            while not await found():
                assert asyncio.get_running_loop().time() < deadline, records
                await asyncio.sleep(0.1)
            by_type = {rec.type: rec for rec in records}
            assert [rec.type for rec in records] == [TraceType.PUB, TraceType.SUB_BEFORE,
                                                     TraceType.SUB_AFTER]
            pub = by_type[TraceType.PUB]
            assert (pub.topic, pub.group, pub.tags, pub.keys) == (topic, "PG_t", "TagT", "tk1 tk2")
            assert pub.store_host == server.broker_addr and pub.body_length == len(b"traced")
            assert pub.offset_msg_id == r.offset_msg_id and pub.success
            assert pub.region_id == "DefaultRegion" and pub.client_host
            before, after = by_type[TraceType.SUB_BEFORE], by_type[TraceType.SUB_AFTER]
            assert before.group == after.group == group and before.retry_times == 0
            assert before.request_id == after.request_id and before.keys == "tk1 tk2"
            assert after.success and after.context_code == ConsumeReturnType.SUCCESS
            assert after.timestamp_ms >= before.timestamp_ms >= pub.timestamp_ms
            # The trace message is also indexed under the user's keys.
            by_user_key = await admin.query_by_key(TRACE_TOPIC, "tk1")
            assert any(r.msg_id.encode() in m.body for m in by_user_key)
    run(main())


def test_trace_failure_never_fails_the_send(server, topic, caplog) -> None:
    async def main():
        # SCHEDULE_TOPIC_XXXX refuses producers: every trace send fails, user sends do not.
        async with Producer("PG_tf", server.namesrv, trace=True,
                            trace_topic="SCHEDULE_TOPIC_XXXX", send_timeout_s=2.0) as p:
            for i in range(3):
                r = await p.send(Message(topic, b"%d" % i))
                assert r.status.name == "SEND_OK"
            assert p.tracer is not None
            await p.tracer.flush(10)  # the failed trace sends were given up, not stuck
            assert p.tracer.discarded == 0
        assert any("records not sent to SCHEDULE_TOPIC_XXXX" in r.getMessage()
                   for r in caplog.records)
    run(main())


def _cli(server, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "NAMESRV_ADDR"}
    return subprocess.run([sys.executable, "-m", "rmqstore.cli", "admin", *args,
                           "--namesrv", server.namesrv], check=False, capture_output=True,
                          text=True, timeout=30, env=env)


def test_admin_cli_commands(server, topic) -> None:
    group = "CG_cli_" + topic[-12:]

    async def main():
        got = []
        async with Producer("PG_cli", server.namesrv, trace=True) as p:
            r = await p.send(Message(topic, b"hello-from-cli-test", keys="cli-key"))
            c = PushConsumer(group, server.namesrv, **FAST)
            c.subscribe(topic)
            c.on_message(lambda msgs: got.extend(msgs))
            async with c:
                await wait_until(lambda: len(got) >= 1)
                await asyncio.sleep(0.5)  # offsets persisted every 0.2 s
        return r
    r = run(main())
    out = _cli(server, "query-msg", "--topic", topic, "--key", "cli-key")
    assert out.returncode == 0, out.stderr
    assert "hello-from-cli-test" in out.stdout and r.msg_id in out.stdout
    out = _cli(server, "view-msg", "--id", r.offset_msg_id)
    assert out.returncode == 0, out.stderr
    assert "hello-from-cli-test" in out.stdout and r.msg_id in out.stdout
    out = _cli(server, "view-msg", "--topic", topic, "--id", r.msg_id)
    assert out.returncode == 0 and r.offset_msg_id in out.stdout, out.stderr
    out = _cli(server, "consume-progress", "--group", group, "--topic", topic)
    assert out.returncode == 0, out.stderr
    assert "total lag 0" in out.stdout and topic[:20] in out.stdout
    out = _cli(server, "trace", "--id", r.msg_id)
    assert out.returncode == 0, out.stderr
    assert "Pub" in out.stdout and "PG_cli" in out.stdout
    out = _cli(server, "query-msg", "--topic", topic, "--key", "no-such-key")
    assert out.returncode == 1 and "no message" in out.stderr
    out = _cli(server, "view-msg", "--id", "not-hex")
    assert out.returncode == 1 and "Error" in out.stderr
