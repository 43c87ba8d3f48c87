"""PushConsumer against `rmqstore serve`: tags, clustering with members joining and leaving,
broadcasting with local offsets, orderly under rebalance, RECONSUME_LATER redelivery."""

from __future__ import annotations

import asyncio
import collections
import json

from rmqstore.client import (
    ConsumeFromWhere,
    ConsumeStatus,
    Message,
    MessageModel,
    OrderlyStatus,
    Producer,
    PushConsumer,
)

from .conftest import run, wait_until

FAST = {"consume_from_where": ConsumeFromWhere.FIRST_OFFSET, "rebalance_interval_s": 1.0,
            "persist_interval_s": 0.5, "lock_interval_s": 1.0, "broker_suspend_ms": 2000,
            "reconsume_delay_s": 0.2, "suspend_current_queue_s": 0.2}


def make_consumer(ns, group, topic, sink, *, expression="*", orderly=False, **kw):
    c = PushConsumer(group, ns, **{**FAST, **kw})
    c.subscribe(topic, expression)

    async def on(msgs):
        sink.extend((c.client_id, m) for m in msgs)
        return OrderlyStatus.SUCCESS if orderly else ConsumeStatus.SUCCESS
    (c.on_message_orderly if orderly else c.on_message)(on)
    return c


def test_clustering_tag_filter(server, topic) -> None:
    async def main():
        got = []
        async with Producer("PG_tags", server.namesrv) as p:
            await p.create_topic(topic, 2)
            for i in range(12):
                await p.send(Message(topic, b"%d" % i, tags="ABC"[i % 3]))
            async with make_consumer(server.namesrv, "CG_tags", topic, got, expression="A || B"):
                await wait_until(lambda: len(got) >= 8)
                await asyncio.sleep(0.3)
        assert sorted(m.tags for _, m in got) == ["A"] * 4 + ["B"] * 4
    run(main())


def test_clustering_members_join_and_leave_nothing_lost(server, topic) -> None:
    async def main():
        got = []
        total = 400
        async with Producer("PG_join", server.namesrv) as p:
            await p.create_topic(topic, 8)
            consumers = [make_consumer(server.namesrv, "CG_join", topic, got)]
            await consumers[0].start()
            sent = set()

            async def produce():
                for i in range(total):
                    r = await p.send(Message(topic, b"%d" % i))
                    sent.add(r.msg_id)
                    await asyncio.sleep(0.004)
            producing = asyncio.ensure_future(produce())
            for _ in range(2):  # two members join
                await asyncio.sleep(0.4)
                c = make_consumer(server.namesrv, "CG_join", topic, got)
                await c.start()
                consumers.append(c)
            await asyncio.sleep(0.4)
            await consumers.pop(0).close()  # the first leaves
            await asyncio.sleep(0.4)
            await consumers.pop(0).close()
            await producing
            await wait_until(lambda: sent <= {m.msg_id for _, m in got}, timeout_s=20)
            owners = {cid for cid, _ in got}
            for c in consumers:
                await c.close()
        ids = [m.msg_id for _, m in got]
        dups = len(ids) - len(set(ids))
        assert len(owners) >= 2
        assert dups < total // 4, f"{dups} duplicates"
    run(main(), 60)


def test_broadcasting_every_member_gets_all_and_offsets_stay_local(server, topic, tmp_path) -> None:
    async def main():
        a, b = [], []
        async with Producer("PG_bc", server.namesrv) as p:
            await p.create_topic(topic, 3)
            ca = make_consumer(server.namesrv, "CG_bc", topic, a,
                               message_model=MessageModel.BROADCASTING,
                               offset_store_dir=tmp_path / "a")
            cb = make_consumer(server.namesrv, "CG_bc", topic, b,
                               message_model=MessageModel.BROADCASTING,
                               offset_store_dir=tmp_path / "b")
            async with ca, cb:
                for i in range(9):
                    await p.send(Message(topic, b"%d" % i))
                await wait_until(lambda: len(a) >= 9 and len(b) >= 9)
            path = tmp_path / "a" / "CG_bc" / "offsets.json"
            saved = json.loads(path.read_text())["offsetTable"]
            assert sum(saved.values()) == 9
            # Restarted with the same offset file: only what is new arrives.
            a2 = []
            ca2 = make_consumer(server.namesrv, "CG_bc", topic, a2,
                                message_model=MessageModel.BROADCASTING,
                                offset_store_dir=tmp_path / "a")
            async with ca2:
                await p.send(Message(topic, b"new"))
                await wait_until(lambda: len(a2) >= 1)
                await asyncio.sleep(0.3)
        assert sorted(m.body for _, m in a) == sorted(b"%d" % i for i in range(9))
        assert sorted(m.body for _, m in b) == sorted(m.body for _, m in a)
        assert [m.body for _, m in a2] == [b"new"]
    run(main())


def test_orderly_keeps_per_queue_order_under_rebalance(server, topic) -> None:
    async def main():
        got = []
        keys = [f"k{i}" for i in range(8)]
        per_key = 40
        async with Producer("PG_ord", server.namesrv) as p:
            await p.create_topic(topic, 4)
            consumers = [make_consumer(server.namesrv, "CG_ord", topic, got, orderly=True)]
            await consumers[0].start()

            async def produce():
                for i in range(per_key):
                    for k in keys:
                        await p.send(Message(topic, f"{k}:{i}".encode()), sharding_key=k)
                    await asyncio.sleep(0.01)
            producing = asyncio.ensure_future(produce())
            await asyncio.sleep(0.3)
            c2 = make_consumer(server.namesrv, "CG_ord", topic, got, orderly=True)
            await c2.start()
            consumers.append(c2)
            await asyncio.sleep(1.0)
            await consumers.pop(0).close()
            await producing
            want = len(keys) * per_key
            await wait_until(lambda: len({m.body for _, m in got}) >= want, timeout_s=25)
            for c in consumers:
                await c.close()
        seqs = collections.defaultdict(list)
        for _, m in got:
            k, i = m.body.decode().split(":")
            seqs[k].append(int(i))
        for k, s in seqs.items():
            assert s == sorted(s), f"{k} out of order: {s}"
            assert set(s) == set(range(per_key))
        assert len({cid for cid, _ in got}) == 2
    run(main(), 60)


def test_reconsume_later_is_redelivered(server, topic) -> None:
    async def main():
        seen = collections.Counter()
        times = {}
        c = PushConsumer("CG_later", server.namesrv, **FAST)
        c.subscribe(topic)

        def on(msgs):  # a plain function: runs in the thread pool
            for m in msgs:
                seen[m.body] += 1
                times[m.body] = m.reconsume_times
            return (ConsumeStatus.RECONSUME_LATER if seen[msgs[0].body] == 1
                    else ConsumeStatus.SUCCESS)
        c.on_message(on)
        async with Producer("PG_later", server.namesrv) as p:
            await p.create_topic(topic, 1)
            async with c:
                for i in range(3):
                    await p.send(Message(topic, b"%d" % i))
                await wait_until(lambda: len(seen) == 3 and all(v >= 2 for v in seen.values()))
                await asyncio.sleep(0.6)
                mq = next(iter(c.process_queues))
                assert c.offset_store.cached(mq) == 3
        assert all(t >= 1 for t in times.values())
    run(main())
