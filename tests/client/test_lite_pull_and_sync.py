"""LitePullConsumer (subscribe/assign, poll, seek by offset and time, commit) and the blocking
façade in rmqstore.client.sync."""

from __future__ import annotations

import asyncio
import threading
import time

from rmqstore.client import (
    ConsumeFromWhere,
    ConsumeStatus,
    LitePullConsumer,
    Message,
    MessageQueue,
    Producer,
    sync,
)

from .conftest import run


async def poll_n(c: LitePullConsumer, n: int, timeout_s: float = 10.0):
    got = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while len(got) < n and loop.time() < deadline:
        got += await c.poll(0.5)
    return got


def test_subscribe_poll_commit_and_resume(server, topic) -> None:
    async def main():
        async with Producer("PG_lite", server.namesrv) as p:
            await p.create_topic(topic, 2)
            for i in range(10):
                await p.send(Message(topic, b"%d" % i, tags="X" if i < 8 else "Y"))
            c = LitePullConsumer("CG_lite", server.namesrv, auto_commit=False,
                                 consume_from_where=ConsumeFromWhere.FIRST_OFFSET,
                                 broker_suspend_ms=1000, rebalance_interval_s=1.0)
            c.subscribe(topic, "X")
            async with c:
                got = await poll_n(c, 8)
                assert sorted(m.body for m in got) == sorted(b"%d" % i for i in range(8))
                await c.commit()
                committed = [await c.committed(mq) for mq in c.assignment()]
                assert sum(committed) >= 8
            c2 = LitePullConsumer("CG_lite", server.namesrv, broker_suspend_ms=1000)
            c2.subscribe(topic, "*")
            async with c2:
                await p.send(Message(topic, b"after", tags="X"))
                got2 = []
                for _ in range(20):
                    got2 += await c2.poll(0.5)
                    if b"after" in [m.body for m in got2]:
                        break
                assert b"after" in [m.body for m in got2]  # 8 and 9 (tag Y) may come too
                assert not {m.body for m in got2} & {b"%d" % i for i in range(8)}
    run(main())


def test_assign_seek_offset_and_timestamp(server, topic) -> None:
    async def main():
        async with Producer("PG_seek", server.namesrv) as p:
            await p.create_topic(topic, 1)
            mq = MessageQueue(topic, "broker-a", 0)
            for i in range(5):
                await p.send(Message(topic, b"%d" % i), queue=mq)
            await asyncio.sleep(0.05)
            mark = int(time.time() * 1000)
            await asyncio.sleep(0.05)
            for i in range(5, 10):
                await p.send(Message(topic, b"%d" % i), queue=mq)
            c = LitePullConsumer("CG_seek", server.namesrv, broker_suspend_ms=1000,
                                 consume_from_where=ConsumeFromWhere.FIRST_OFFSET)
            async with c:
                await c.assign([mq])
                first = await poll_n(c, 10)
                assert [m.queue_offset for m in first] == list(range(10))
                await c.seek(mq, 3)
                again = await poll_n(c, 7)
                assert [m.queue_offset for m in again] == list(range(3, 10))
                await c.seek_to_timestamp(mq, mark)
                late = await poll_n(c, 5)
                assert late[0].queue_offset in (4, 5) and late[-1].queue_offset == 9
    run(main())


def test_sync_facade_producer_push_and_lite(server, topic) -> None:
    with sync.Producer("PG_sync", server.namesrv) as p:
        p.create_topic(topic, 2)
        results = [p.send(Message(topic, b"s%d" % i)) for i in range(6)]
        assert all(r.offset_msg_id for r in results)
        got = []
        lock = threading.Lock()
        done = threading.Event()

        def on(msgs):
            assert threading.current_thread() is not threading.main_thread()
            with lock:
                got.extend(msgs)
                if len(got) >= 6:
                    done.set()
            return ConsumeStatus.SUCCESS
        c = sync.PushConsumer("CG_sync", server.namesrv,
                              consume_from_where=ConsumeFromWhere.FIRST_OFFSET)
        c.subscribe(topic)
        c.on_message(on)
        with c:
            assert done.wait(15)
        assert sorted(m.body for m in got) == sorted(b"s%d" % i for i in range(6))
        lite = sync.LitePullConsumer("CG_sync_lite", server.namesrv, broker_suspend_ms=1000,
                                     consume_from_where=ConsumeFromWhere.FIRST_OFFSET)
        with lite:
            lite.assign(lite.fetch_message_queues(topic))
            polled = []
            deadline = time.monotonic() + 10
            while len(polled) < 6 and time.monotonic() < deadline:
                polled += lite.poll(0.5)
            assert len(polled) == 6
            lite.commit()


def test_sql92_subscription_is_passed_through(server, topic) -> None:
    from rmqstore.client.broker_api import FLAG_SUBSCRIPTION, Subscription
    from rmqstore.client.errors import BrokerError

    async def main():
        async with Producer("PG_sql", server.namesrv) as p:
            await p.create_topic(topic, 1)
            await p.send(Message(topic, b"x", properties={"a": "5"}))
            c = LitePullConsumer("CG_sql", server.namesrv)
            async with c:
                mq = MessageQueue(topic, "broker-a", 0)
                await c.routes.update(topic)
                sub = Subscription(topic, "a > 3", "SQL92")
                try:
                    r = await c.api.pull("CG_sql", mq, 0, sub, max_nums=8,
                                         sys_flag=FLAG_SUBSCRIPTION, commit_offset=0,
                                         suspend_ms=0, timeout_s=5)
                    assert r.messages  # a broker with SQL92 filtering
                except BrokerError as exc:
                    assert exc.code == 23  # SUBSCRIPTION_PARSE_FAILED: rmqstore refuses SQL92
    run(main())
