"""Interop both ways between our asyncio client (rmqstore.client) and the official C++ client
(PyPI `rocketmq` 0.4.4) through one `rmqstore serve`.

* ours -> theirs: our Producer sends plain, tagged, keyed, user-property, binary, compressed
  (> 4 KiB) and batched messages; the C++ PullConsumer and PushConsumer get body bytes, tags,
  keys, properties and the UNIQ_KEY message id intact.
* theirs -> ours: the C++ Producer sends with send_sync, send_orderly (a sharding key),
  send_batch and a compressed body; our PushConsumer (orderly listener) and LitePullConsumer
  get them intact and in queue order.

The binding hands bodies over as C strings, so no body here holds a NUL byte.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict

import pytest

from rmqstore.client import (
    ConsumeFromWhere,
    LitePullConsumer,
    Message,
    MessageExt,
    OrderlyStatus,
    Producer,
    PushConsumer,
)
from rmqstore.record import SYSFLAG_COMPRESSED

from .conftest import wait_until

pytestmark = pytest.mark.timeout(120)

ORDER_NO = "orderNo"
COLOUR = "colour"
PROPS = [ORDER_NO, COLOUR]
BINARY = bytes(range(1, 256))  # every byte value but NUL
BIG = ("payload-%d;" * 1500 % tuple(range(1500))).encode()  # ~15 KiB: compressed by a producer
assert len(BIG) > 4096
UNICODE = "héllo wörld ✓ 日本語".encode()


def run(coro, timeout_s: float = 60.0):
    async def bounded():
        async with asyncio.timeout(timeout_s):
            return await coro
    return asyncio.run(bounded())


async def poll_until(pred, timeout_s: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not pred():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.05)


# -- ours -> C++ --------------------------------------------------------------------------------
def expected(msg: Message) -> dict:
    """What a C++ consumer should report for ``msg`` (describe() of cpp_client.py)."""
    keys = msg.keys if isinstance(msg.keys, str) or msg.keys is None else " ".join(msg.keys)
    return {"topic": msg.topic, "body": bytes(msg.body).hex(), "tags": msg.tags or "",
            "keys": keys or "", "props": {p: msg.properties.get(p, "") for p in PROPS}}


def our_singles(topic: str) -> list[Message]:
    return [
        Message(topic, b"plain"),
        Message(topic, b"tagged", tags="TagA"),
        Message(topic, b"keyed", keys=["key-1", "key-2"]),
        Message(topic, b"one key", keys="only-key"),
        Message(topic, b"with props", tags="TagP", keys="kp",
                properties={ORDER_NO: "o-42", COLOUR: "grün ✓ = a:b; c"}),
        Message(topic, BINARY, tags="Bin", properties={ORDER_NO: "bin"}),
        Message(topic, BIG, tags="Big", keys="big-key", properties={ORDER_NO: "big"}),
        Message(topic, BINARY * 20, tags="BigBin", properties={ORDER_NO: "bigbin"}),
        Message(topic, UNICODE, tags="Uni", properties={COLOUR: "ünïcödé"}),
    ]


def our_batch(topic: str) -> list[Message]:
    return [Message(topic, b"batch-%d " % i + BINARY[i * 40:(i + 1) * 40], tags=f"B{i % 2}",
                    keys=[f"bk-{i}", f"bk-alt-{i}"], properties={ORDER_NO: f"b-{i}"})
            for i in range(6)]


def produce_ours(namesrv: str, topic: str) -> dict[str, dict]:
    """Send with our Producer; msg_id (UNIQ_KEY) -> what a consumer should see."""
    async def main() -> dict[str, dict]:
        out: dict[str, dict] = {}
        async with Producer("PG-interop-ours", namesrv) as producer:
            for msg in our_singles(topic):
                r = await producer.send(msg)
                assert r.status.name == "SEND_OK"
                out[r.msg_id] = expected(msg)
            batch = our_batch(topic)
            r = await producer.send_batch(batch)
            ids = r.msg_id.split(",")
            assert len(ids) == len(batch)
            out.update(zip(ids, map(expected, batch), strict=True))
        return out
    return run(main())


def check_cpp_got(got: list[dict], sent: dict[str, dict]) -> None:
    assert Counter(m["id"] for m in got) == Counter(list(sent)), "not every message exactly once"
    for msg in got:
        want = sent[msg["id"]]
        have = {k: msg[k] for k in ("topic", "body", "tags", "keys", "props")}
        assert have == want, f"{msg['id']} changed on the way"


def stored_compressed(namesrv: str, topic: str, count: int) -> dict[bytes, bool]:
    """Read the topic with our LitePullConsumer: body -> whether it was stored compressed."""
    async def main() -> dict[bytes, bool]:
        c = LitePullConsumer("CG-interop-check", namesrv, auto_commit=False,
                             consume_from_where=ConsumeFromWhere.FIRST_OFFSET,
                             broker_suspend_ms=1000)
        c.subscribe(topic)
        got: list[MessageExt] = []
        async with c:
            while len(got) < count:
                got += await c.poll(1.0)
        return {m.body: bool(m.sys_flag & SYSFLAG_COMPRESSED) for m in got}
    return run(main(), 30)


def test_our_producer_to_cpp_consumers(single, cpp):
    topic = single.create_topic("InteropOursToCpp")
    sent = produce_ours(single.namesrv, topic)
    assert len(sent) == len(our_singles(topic)) + len(our_batch(topic))

    # our producer compressed the big bodies (and only those), the C++ client inflates them
    flags = stored_compressed(single.namesrv, topic, len(sent))
    assert flags[BIG] and flags[BINARY * 20]
    assert not flags[BINARY] and not flags[b"plain"]

    pulled = cpp(cmd="pull", namesrv=single.namesrv, group="CG-interop-cpp-pull", topic=topic,
                 props=PROPS).wait(60)
    check_cpp_got([e["msg"] for e in pulled if "msg" in e], sent)

    pusher = cpp(cmd="push", namesrv=single.namesrv, group="CG-interop-cpp-push", topic=topic,
                 props=PROPS, max_seconds=90)
    wait_until(lambda: len(pusher.messages()) >= len(sent), 30,
               what=f"{len(sent)} messages at the C++ push consumer")
    pusher.stop()
    check_cpp_got(pusher.messages(), sent)  # stop() waited: a duplicate would be there now

    tagged = cpp(cmd="pull", namesrv=single.namesrv, group="CG-interop-cpp-tags", topic=topic,
                 expr="TagA || Big", props=PROPS).wait(60)
    assert sorted(e["msg"]["tags"] for e in tagged if "msg" in e) == ["Big", "TagA"]


# -- C++ -> ours --------------------------------------------------------------------------------
def cpp_messages(n: int, prefix: str, *, big_every: int = 0) -> list[dict]:
    out = []
    for i in range(n):
        body = f"{prefix}-{i} ".encode() + UNICODE
        if i % 3 == 1:
            body += BINARY
        if big_every and i % big_every == big_every - 1:
            body += BIG
        out.append({"body": body.hex(), "tags": f"Tag{i % 2}",
                    "keys": f"{prefix}-key-{i} {prefix}-alt-{i}",
                    "props": {ORDER_NO: f"{prefix}-{i}", COLOUR: f"blau ✓ {i}"}})
    return out


def produce_cpp(cpp, namesrv: str, topic: str) -> tuple[dict[str, dict], dict[str, str]]:
    """send_sync, send_orderly (sharding keys 0-2) and send_batch from one C++ producer.
    Returns orderNo -> spec (plus 'mode', 'shard') and orderNo -> the msg_id C++ reported."""
    sync_msgs = cpp_messages(12, "s", big_every=4)
    orderly_msgs = cpp_messages(18, "o", big_every=6)
    for i, m in enumerate(orderly_msgs):
        m["shard"] = i % 3
    batch_msgs = cpp_messages(16, "b")  # batches are never compressed: no big bodies
    steps = [{"mode": "sync", "messages": sync_msgs},
             {"mode": "orderly", "messages": orderly_msgs},
             {"mode": "batch", "messages": batch_msgs, "batch_size": 8}]
    events = cpp(cmd="produce", namesrv=namesrv, group="PG-interop-cpp", topic=topic,
                 mode="steps", steps=steps).wait(60)
    results = [e for e in events if "i" in e]
    assert not [e for e in results if "error" in e], results
    assert all(e["status"] == 0 for e in results), results
    assert len(results) == len(sync_msgs) + len(orderly_msgs) + 2  # two batches
    specs: dict[str, dict] = {}
    ids: dict[str, str] = {}
    flat = [("sync", m) for m in sync_msgs] + [("orderly", m) for m in orderly_msgs] + \
        [("batch", m) for m in batch_msgs]
    by_index = {e["i"]: e for e in results}
    for i, (mode, m) in enumerate(flat):
        specs[m["props"][ORDER_NO]] = {**m, "mode": mode}
        if mode != "batch":
            ids[m["props"][ORDER_NO]] = by_index[i]["msg_id"]
    return specs, ids


def check_ours_got(got: list[MessageExt], specs: dict[str, dict], ids: dict[str, str],
                   topic: str) -> None:
    names = [m.properties.get(ORDER_NO) for m in got]
    assert Counter(names) == Counter(list(specs)), "not every message exactly once"
    for msg in got:
        spec = specs[msg.properties[ORDER_NO]]
        assert msg.topic == topic
        assert msg.body == bytes.fromhex(spec["body"]), f"{msg.properties[ORDER_NO]}: body"
        assert msg.tags == spec["tags"]
        assert msg.keys == spec["keys"]
        assert msg.properties[COLOUR] == spec["props"][COLOUR]
        assert len(msg.msg_id) == 32  # the C++ producer's UNIQ_KEY
        if msg.properties[ORDER_NO] in ids:
            assert msg.msg_id == ids[msg.properties[ORDER_NO]]
    # the C++ producer compressed the big bodies; we inflated them
    big = [m for m in got if BIG in m.body]
    assert big and all(m.sys_flag & SYSFLAG_COMPRESSED for m in big)
    assert not any(m.sys_flag & SYSFLAG_COMPRESSED for m in got if BIG not in m.body)


def check_order(got: list[MessageExt], specs: dict[str, dict]) -> None:
    """In delivery order: each queue from offset 0, gap-free and increasing; each sharding key
    on one queue, in send order; each C++ batch consecutive on one queue."""
    per_queue: dict[int, list[MessageExt]] = defaultdict(list)
    for m in got:
        per_queue[m.queue_id].append(m)
    for qid, msgs in per_queue.items():
        offsets = [m.queue_offset for m in msgs]
        assert offsets == list(range(len(msgs))), f"queue {qid} delivered as {offsets}"
    for shard in range(3):
        mine = [m for m in got if specs[m.properties[ORDER_NO]].get("shard") == shard]
        assert {m.queue_id for m in mine} == {shard}  # the C++ hashing selector: key % 4
        idx = [int(m.properties[ORDER_NO][2:]) for m in mine]
        assert idx == sorted(idx) and len(idx) == 6, f"sharding key {shard}: {idx}"
    batch_names = [f"b-{i}" for i in range(16)]
    for start in (0, 8):
        chunk = batch_names[start:start + 8]
        found = [m for m in got if m.properties[ORDER_NO] in chunk]
        assert len({m.queue_id for m in found}) == 1
        assert [m.properties[ORDER_NO] for m in found] == chunk
        offs = [m.queue_offset for m in found]
        assert offs == list(range(offs[0], offs[0] + 8))


FAST = {"consume_from_where": ConsumeFromWhere.FIRST_OFFSET, "rebalance_interval_s": 1.0,
        "broker_suspend_ms": 1000}


def test_cpp_producer_to_our_consumers(single, cpp):
    topic = single.create_topic("InteropCppToOurs")
    specs, ids = produce_cpp(cpp, single.namesrv, topic)
    total = len(specs)

    async def consume() -> tuple[list[MessageExt], list[MessageExt]]:
        pushed: list[MessageExt] = []
        push = PushConsumer("CG-interop-ours-push", single.namesrv, lock_interval_s=1.0,
                            persist_interval_s=0.5, consume_batch_size=4, **FAST)
        push.subscribe(topic)

        async def on_orderly(msgs: list[MessageExt]) -> OrderlyStatus:
            pushed.extend(msgs)
            return OrderlyStatus.SUCCESS
        push.on_message_orderly(on_orderly)

        polled: list[MessageExt] = []
        lite = LitePullConsumer("CG-interop-ours-lite", single.namesrv, auto_commit=False,
                                **FAST)
        lite.subscribe(topic)
        async with push, lite:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            while len(polled) < total and loop.time() < deadline:
                polled += await lite.poll(0.5)
            await poll_until(lambda: len(pushed) >= total, 30, "the push consumer")
            await asyncio.sleep(1.0)  # a duplicate would show up now
        return pushed, polled

    pushed, polled = run(consume())
    for got in (pushed, polled):
        check_ours_got(got, specs, ids, topic)
        check_order(got, specs)
