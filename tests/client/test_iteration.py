"""`async for msg in consumer` (PushConsumer, LitePullConsumer) and `for msg in consumer` (the
blocking façade): what is acknowledged / committed when."""

from __future__ import annotations

import asyncio
import collections
import threading
import time

import pytest

from rmqstore.client import (
    ConsumeFromWhere,
    LitePullConsumer,
    Message,
    MessageExt,
    Producer,
    PushConsumer,
    sync,
)

from .conftest import run

pytestmark = pytest.mark.timeout(90)

FAST = {"consume_from_where": ConsumeFromWhere.FIRST_OFFSET, "rebalance_interval_s": 1.0,
        "persist_interval_s": 0.5, "lock_interval_s": 1.0, "broker_suspend_ms": 1000,
        "reconsume_delay_s": 0.2, "suspend_current_queue_s": 0.2}
LITE = {"consume_from_where": ConsumeFromWhere.FIRST_OFFSET, "rebalance_interval_s": 1.0,
        "broker_suspend_ms": 1000}


async def take(consumer, n: int, timeout_s: float = 15.0) -> list[MessageExt]:
    """The next ``n`` messages of an iterating consumer (each acked by asking for the next)."""
    got: list[MessageExt] = []
    if n == 0:
        return got
    async with asyncio.timeout(timeout_s):
        async for msg in consumer:
            got.append(msg)
            if len(got) == n:
                break
    return got


async def quiet(consumer, seconds: float) -> list[MessageExt]:
    """Whatever an iterating consumer yields within ``seconds``."""
    got: list[MessageExt] = []
    try:
        async with asyncio.timeout(seconds):
            async for msg in consumer:
                got.append(msg)
    except TimeoutError:
        pass
    return got


def push(ns: str, group: str, topic: str, **kw) -> PushConsumer:
    c = PushConsumer(group, ns, **{**FAST, **kw})
    c.subscribe(topic)
    return c


def test_push_async_for_acks_on_next_and_at_break(server, topic) -> None:
    async def main():
        async with Producer("PG_iter", server.namesrv) as p:
            await p.create_topic(topic, 2)
            sent = {(await p.send(Message(topic, b"m%d" % i, tags="T"))).msg_id
                    for i in range(10)}
            c = push(server.namesrv, "CG_iter", topic)
            async with c:  # no listener: iterator mode
                got = await take(c, 10)
                assert {m.msg_id for m in got} == sent
                # every message but the one held by the loop is acknowledged already
                await asyncio.sleep(0.2)
                assert sum(pq.count for pq in c.process_queues.values()) == 1
            # leaving `async with` normally acknowledged the last one; close stored offsets
            again = push(server.namesrv, "CG_iter", topic)
            async with again:
                after = await p.send(Message(topic, b"after"))
                got2 = await take(again, 1)
                assert got2[0].msg_id == after.msg_id
                assert await quiet(again, 1.0) == []  # nothing old comes back
            with pytest.raises(RuntimeError):  # a consumer with a listener is not iterable
                c3 = push(server.namesrv, "CG_iter3", topic)
                c3.on_message(lambda msgs: None)
                await c3.__anext__()
    run(main())


def test_push_async_for_ends_at_close(server, topic) -> None:
    async def main():
        async with Producer("PG_iter_end", server.namesrv) as p:
            await p.create_topic(topic, 2)
            c = push(server.namesrv, "CG_iter_end", topic)
            await c.start()
            got: list[MessageExt] = []

            async def loop():
                async for msg in c:
                    got.append(msg)
            task = asyncio.ensure_future(loop())
            await p.send(Message(topic, b"one"))
            while not got:
                await asyncio.sleep(0.05)
            await c.close()
            async with asyncio.timeout(5):
                await task  # StopAsyncIteration ended the loop
            assert [m.body for m in got] == [b"one"]
    run(main())


def test_push_reconsume_later_and_exception_redeliver(server, topic) -> None:
    async def main():
        async with Producer("PG_iter_later", server.namesrv) as p:
            await p.create_topic(topic, 1)
            for body in (b"ok-1", b"again", b"ok-2"):
                await p.send(Message(topic, body))
            c = push(server.namesrv, "CG_iter_later", topic)
            seen = collections.Counter()
            async with c:
                async with asyncio.timeout(30):
                    async for msg in c:
                        seen[msg.body] += 1
                        if msg.body == b"again" and seen[msg.body] == 1:
                            c.reconsume_later(msg)  # comes back later
                        elif msg.body == b"again":
                            assert msg.reconsume_times >= 1
                        if seen[b"again"] == 2 and seen[b"ok-1"] and seen[b"ok-2"]:
                            break
            assert seen == {b"ok-1": 1, b"again": 2, b"ok-2": 1}

            # an exception leaving `async with` leaves the held message unacknowledged
            await p.send(Message(topic, b"boom"))
            c2 = push(server.namesrv, "CG_iter_later", topic)
            with pytest.raises(ValueError):
                async with c2:
                    async for msg in c2:
                        if msg.body == b"boom":
                            raise ValueError("handler failed")
            c3 = push(server.namesrv, "CG_iter_later", topic)
            async with c3:
                got = await take(c3, 1, 30)
                assert got[0].body == b"boom"
                c3.ack(got[0])  # explicit: acknowledged before the loop moves on
    run(main(), 80)


def test_push_orderly_iteration_keeps_queue_order(server, topic) -> None:
    async def main():
        keys = ["k0", "k1", "k2"]
        async with Producer("PG_iter_ord", server.namesrv) as p:
            await p.create_topic(topic, 4)
            for i in range(30):
                await p.send(Message(topic, b"%d" % i, keys=keys[i % 3]),
                             sharding_key=keys[i % 3])
            c = push(server.namesrv, "CG_iter_ord", topic)
            c.use_iterator(orderly=True)
            async with c:
                got = await take(c, 30)
        for k in keys:
            seq = [int(m.body) for m in got if m.keys == k]
            assert seq == sorted(seq) and len(seq) == 10, (k, seq)
            assert len({m.queue_id for m in got if m.keys == k}) == 1
    run(main())


def test_lite_pull_async_for_commits_what_the_loop_finished(server, topic) -> None:
    async def main():
        async with Producer("PG_iter_lite", server.namesrv) as p:
            await p.create_topic(topic, 1)
            for i in range(12):
                await p.send(Message(topic, b"%d" % i))

            async def bodies(c) -> list[int]:
                return [int(m.body) for m in await take(c, 1)]

            # auto_commit off: commit() inside the loop stores up to the message in hand
            c = LitePullConsumer("CG_iter_lite", server.namesrv, auto_commit=False, **LITE)
            c.subscribe(topic)
            async with c:
                got = []
                async for msg in c:
                    got.append(int(msg.body))
                    if len(got) == 5:
                        await c.commit()
                    if len(got) == 7:
                        break
                assert got == list(range(7))
                mq = c.assignment()[0]
                assert await c.committed(mq) == 5
            # auto_commit on: an exception leaving `async with` keeps the held message
            c = LitePullConsumer("CG_iter_lite", server.namesrv, **LITE)
            c.subscribe(topic)
            with pytest.raises(KeyError):
                async with c:
                    async for msg in c:
                        got.append(int(msg.body))
                        if int(msg.body) == 8:
                            raise KeyError("handler failed")
            assert got[7:] == [5, 6, 7, 8]
            # ... and a normal exit (break) counts it as consumed
            c = LitePullConsumer("CG_iter_lite", server.namesrv, **LITE)
            c.subscribe(topic)
            async with c:
                assert await bodies(c) == [8]
            c = LitePullConsumer("CG_iter_lite", server.namesrv, **LITE)
            c.subscribe(topic)
            async with c:
                assert await bodies(c) == [9]
                task = asyncio.ensure_future(take(c, 5))
                await asyncio.sleep(0.3)
            assert [int(m.body) for m in await task] == [10, 11]  # close ended the loop
    run(main())


def test_sync_facade_iteration(server, topic) -> None:
    with sync.Producer("PG_iter_sync", server.namesrv) as p:
        p.create_topic(topic, 2)
        sent = {p.send(Message(topic, b"s%d" % i)).msg_id for i in range(6)}
        c = sync.PushConsumer("CG_iter_sync", server.namesrv, **FAST)
        c.subscribe(topic)
        with c:
            got = []
            for msg in c:
                got.append(msg)
                if len(got) == 6:
                    break
        assert {m.msg_id for m in got} == sent

        lite = sync.LitePullConsumer("CG_iter_sync_lite", server.namesrv, **LITE)
        lite.subscribe(topic)
        lite.start()
        pulled: list[MessageExt] = []

        def consume() -> None:
            for msg in lite:  # blocks until a message comes or the consumer closes
                pulled.append(msg)  # noqa: PERF402 - seen by the main thread as it grows
        t = threading.Thread(target=consume, daemon=True)
        t.start()
        for _ in range(100):
            if len(pulled) >= 6:
                break
            time.sleep(0.1)
        lite.close()
        t.join(10)
        assert not t.is_alive(), "close() did not end the iteration"
        assert {m.msg_id for m in pulled} == sent
