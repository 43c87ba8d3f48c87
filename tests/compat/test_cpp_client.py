"""The official RocketMQ C++ client (PyPI `rocketmq` 0.4.4, i.e. rocketmq-client-cpp 1.2.4)
against `rmqstore serve` started as real processes on loopback.

Each client scenario runs in its own process (cpp_client.py). Topics are created up front with
UPDATE_AND_CREATE_TOPIC, as `mqadmin updateTopic` would: a C++ consumer that starts before its
topic has a route only sees it at its 30 s route refresh and first heartbeats 30 s later.
"""

from __future__ import annotations

import signal
import time
from collections import Counter, defaultdict

import pytest

from .conftest import (
    BROKER_EXPIRY_S,
    committed_offset,
    consumer_ids,
    max_offset,
    route,
    route_brokers,
    wait_until,
)

pytestmark = pytest.mark.timeout(120)

USER_PROP = "orderNo"
BINARY = bytes(range(1, 256))  # the binding passes bodies as C strings: no NUL
BIG = ("payload-%d;" * 1500 % tuple(range(1500))).encode()  # > 4 KiB: the client compresses it


def make_messages(n: int, tag_cycle: tuple[str, ...] = ("TagA",), prefix: str = "m") -> list[dict]:
    out = []
    for i in range(n):
        body = f"{prefix}-{i} héllo wörld ✓".encode()
        if i % 5 == 1:
            body += BINARY
        if i % 7 == 3:
            body += BIG
        out.append({"body": body.hex(), "tags": tag_cycle[i % len(tag_cycle)],
                    "keys": f"{prefix}-key-{i} {prefix}-alt-{i}",
                    "props": {USER_PROP: f"{prefix}-{i}"}})
    return out


def index_of(msg: dict, prefix: str = "m") -> int:
    return int(msg["props"][USER_PROP][len(prefix) + 1:])


def assert_intact(got: dict, sent: dict, topic: str) -> None:
    assert got["topic"] == topic
    assert got["body"] == sent["body"], "body changed"
    assert got["tags"] == sent["tags"]
    assert got["keys"] == sent["keys"]
    assert got["props"][USER_PROP] == sent["props"][USER_PROP]
    assert len(got["id"]) == 32  # UNIQ_KEY of the producer


def assert_sends_ok(events: list[dict], count: int) -> None:
    results = [e for e in events if "i" in e]
    assert len(results) == count, events
    errors = [e for e in results if "error" in e]
    assert not errors, errors
    assert all(e["status"] == 0 for e in results), results


def pull_all(cpp, namesrv: str, topic: str, group: str, expr: str = "*") -> list[dict]:
    client = cpp(cmd="pull", namesrv=namesrv, group=group, topic=topic, expr=expr,
                 props=[USER_PROP])
    events = client.wait(60)
    return [e["msg"] for e in events if "msg" in e]


def follow(client, count: int, timeout_s: float) -> list[dict]:
    wait_until(lambda: len(client.messages()) >= count, timeout_s,
               what=f"{count} messages at {client.name}")
    return client.messages()


# -- producer ---------------------------------------------------------------------------------
def test_send_sync_round_trip(single, cpp):
    topic = single.create_topic("CppSync")
    sent = make_messages(20)
    events = cpp(cmd="produce", namesrv=single.namesrv, group="PG-sync", topic=topic,
                 mode="sync", messages=sent).wait(60)
    assert_sends_ok(events, len(sent))
    ids = [e["msg_id"] for e in events if "msg_id" in e]
    assert len(set(ids)) == len(ids)
    got = pull_all(cpp, single.namesrv, topic, "CG-sync-pull")
    assert len(got) == len(sent)
    for msg in got:
        assert_intact(msg, sent[index_of(msg)], topic)
    # round-robin over the 4 queues; the reported id is the one the consumer sees
    assert {m["queue_id"] for m in got} == {0, 1, 2, 3}
    assert {m["id"] for m in got} == set(ids)


def test_send_oneway(single, cpp):
    topic = single.create_topic("CppOneway")
    sent = make_messages(12)
    events = cpp(cmd="produce", namesrv=single.namesrv, group="PG-oneway", topic=topic,
                 mode="oneway", messages=sent).wait(60)
    assert len([e for e in events if "i" in e]) == len(sent)
    wait_until(lambda: sum(max_offset(single.broker, topic, q) for q in range(4)) == len(sent),
               10, what="oneway messages stored")
    got = pull_all(cpp, single.namesrv, topic, "CG-oneway-pull")
    assert sorted(index_of(m) for m in got) == list(range(len(sent)))
    for msg in got:
        assert_intact(msg, sent[index_of(msg)], topic)


def test_send_orderly_same_key_same_queue_in_order(single, cpp):
    topic = single.create_topic("CppOrderly")
    sent = make_messages(30)
    for i, m in enumerate(sent):
        m["shard"] = i % 3  # three sharding keys
    events = cpp(cmd="produce", namesrv=single.namesrv, group="PG-orderly", topic=topic,
                 mode="orderly", messages=sent).wait(60)
    assert_sends_ok(events, len(sent))
    got = pull_all(cpp, single.namesrv, topic, "CG-orderly-pull")
    assert len(got) == len(sent)
    queues = defaultdict(list)
    for msg in got:
        queues[msg["queue_id"]].append(msg)
    by_shard = defaultdict(set)
    for qid, msgs in queues.items():
        for msg in msgs:
            by_shard[index_of(msg) % 3].add(qid)
        idx = [index_of(m) for m in sorted(msgs, key=lambda m: m["queue_offset"])]
        assert idx == sorted(idx), f"queue {qid} out of order: {idx}"
    # hashing selector: key % 4 queues -> keys 0, 1, 2 land in queues 0, 1, 2, one each
    assert {k: sorted(v) for k, v in by_shard.items()} == {0: [0], 1: [1], 2: [2]}


def test_send_batch(single, cpp):
    topic = single.create_topic("CppBatch")
    sent = make_messages(24)
    for m in sent:  # small: the client sends this batch uncompressed (see the test below)
        m["body"] = bytes.fromhex(m["body"]).replace(BIG, b"big").hex()
    events = cpp(cmd="produce", namesrv=single.namesrv, group="PG-batch", topic=topic,
                 mode="batch", batch_size=8, messages=sent).wait(60)
    results = [e for e in events if "i" in e]
    assert len(results) == 3 and all(e.get("status") == 0 for e in results), results
    got = pull_all(cpp, single.namesrv, topic, "CG-batch-pull")
    assert sorted(index_of(m) for m in got) == list(range(len(sent)))
    for msg in got:
        assert_intact(msg, sent[index_of(msg)], topic)
    # each batch went to one queue, as consecutive offsets, in order
    per_queue = defaultdict(list)
    for msg in sorted(got, key=lambda m: (m["queue_id"], m["queue_offset"])):
        per_queue[msg["queue_id"]].append(index_of(msg))
    for start in range(0, len(sent), 8):
        chunk = list(range(start, start + 8))
        assert any(chunk == idx[k:k + 8] for idx in per_queue.values()
                   for k in range(len(idx))), per_queue


@pytest.mark.parametrize("count", [64, 128])
def test_send_big_batch_compressed_by_the_client(single, cpp, count):
    """rocketmq-client-cpp 1.2.4 zlib-compresses a batch body over 4 KiB as a whole (sysFlag
    compressed on the batch; a Java broker fails to read it): every entry is stored, intact,
    as consecutive offsets of one queue."""
    topic = single.create_topic(f"CppBigBatch{count}")
    sent = make_messages(count, prefix=f"b{count}")
    assert sum(len(bytes.fromhex(m["body"])) for m in sent) > 4096
    events = cpp(cmd="produce", namesrv=single.namesrv, group=f"PG-bigbatch-{count}",
                 topic=topic, mode="batch", batch_size=count, messages=sent).wait(60)
    [result] = [e for e in events if "i" in e]
    assert result.get("status") == 0, result
    got = pull_all(cpp, single.namesrv, topic, f"CG-bigbatch-{count}")
    assert sorted(index_of(m, f"b{count}") for m in got) == list(range(count))
    for msg in got:
        assert_intact(msg, sent[index_of(msg, f"b{count}")], topic)
    [queue] = {m["queue_id"] for m in got}
    in_order = [index_of(m, f"b{count}") for m in sorted(got, key=lambda m: m["queue_offset"])]
    assert in_order == list(range(count))


# -- pull consumer ----------------------------------------------------------------------------
def test_pull_consumer_reads_every_queue_to_the_end(single, cpp):
    topic = single.create_topic("CppPull", queues=6)
    sent = make_messages(40)
    events = cpp(cmd="produce", namesrv=single.namesrv, group="PG-pull", topic=topic,
                 mode="sync", messages=sent).wait(60)
    assert_sends_ok(events, len(sent))
    client = cpp(cmd="pull", namesrv=single.namesrv, group="CG-pull", topic=topic,
                 props=[USER_PROP])
    events = client.wait(60)
    got = [e["msg"] for e in events if "msg" in e]
    assert sorted(index_of(m) for m in got) == list(range(len(sent)))
    for msg in got:
        assert_intact(msg, sent[index_of(msg)], topic)
    ends = next(e["queues"] for e in events if "queues" in e)
    assert ends == {str(q): max_offset(single.broker, topic, q) for q in range(6)}


# -- push consumer ----------------------------------------------------------------------------
def push(cpp, single, group: str, topic: str, **spec):
    return cpp(cmd="push", namesrv=single.namesrv, group=group, topic=topic,
               props=[USER_PROP], max_seconds=90, **spec)


def produce_sync(cpp, single, topic: str, sent: list[dict], group: str) -> None:
    events = cpp(cmd="produce", namesrv=single.namesrv, group=group, topic=topic,
                 mode="sync", messages=sent).wait(60)
    assert_sends_ok(events, len(sent))


WARM = "Warm"


def real(messages: list[dict]) -> list[dict]:
    return [m for m in messages if m["tags"] != WARM]


def warm_up(cpp, single, topic: str, consumers: list, queues: int, each: bool) -> None:
    """Send probe messages (tag Warm, round-robin over the queues) until every consumer
    (each=True) or the consumers together (each=False) got probes from every queue: then
    their rebalance is done and a consumer starting at the max offset misses nothing."""
    probes = [{"body": b"warm".hex(), "tags": WARM} for _ in range(queues)]

    def covered() -> bool:
        seen = [{m["queue_id"] for m in c.messages() if m["tags"] == WARM} for c in consumers]
        if each:
            return all(len(s) == queues for s in seen)
        return len(set().union(*seen)) == queues

    deadline = time.monotonic() + 30
    while not covered():
        assert time.monotonic() < deadline, "consumers never got the probe messages"
        cpp(cmd="produce", namesrv=single.namesrv, group="PG-warm", topic=topic, mode="sync",
            messages=probes).wait(30)
        time.sleep(0.3)


def test_push_clustering_shares_queues_and_resumes(single, cpp):
    topic, group = single.create_topic("CppCluster", queues=8), "CG-cluster"
    first = push(cpp, single, group, topic)
    first.wait_event("started", 20)
    wait_until(lambda: len(consumer_ids(single.broker, group)) == 1, 20, what="first member")
    second = push(cpp, single, group, topic)
    second.wait_event("started", 20)
    wait_until(lambda: len(consumer_ids(single.broker, group)) == 2, 20, what="second member")
    # both rebalanced (NOTIFY_CONSUMER_IDS_CHANGED) before anything counted is sent
    warm_up(cpp, single, topic, [first, second], 8, each=False)
    sent = make_messages(40, prefix="c")
    produce_sync(cpp, single, topic, sent, "PG-cluster")
    wait_until(lambda: len(real(first.messages()) + real(second.messages())) >= len(sent), 30,
               what="every message consumed")
    time.sleep(1.5)  # a duplicate would show up now
    a, b = real(first.messages()), real(second.messages())
    counts = Counter(index_of(m, "c") for m in a + b)
    assert counts == Counter(range(len(sent))), "not every message exactly once"
    qa, qb = {m["queue_id"] for m in a}, {m["queue_id"] for m in b}
    assert a and b and not qa & qb, (qa, qb)  # shared: disjoint queues, both busy
    for msg in a + b:
        assert_intact(msg, sent[index_of(msg, "c")], topic)
    first.stop()
    second.stop()  # a clean shutdown persists the consumed offsets
    for q in range(8):
        assert committed_offset(single.broker, group, topic, q) == \
            max_offset(single.broker, topic, q)

    more = make_messages(16, prefix="r")
    produce_sync(cpp, single, topic, more, "PG-cluster")
    again = push(cpp, single, group, topic)
    wait_until(lambda: len(real(again.messages())) >= len(more), 30, what="the new messages")
    time.sleep(1.5)
    got = real(again.messages())
    assert sorted(index_of(m, "r") for m in got) == list(range(len(more))), \
        "the restarted consumer did not resume at the committed offsets"
    again.stop()


def test_push_broadcasting_each_consumer_gets_everything(single, cpp):
    topic, group = single.create_topic("CppBroadcast"), "CG-broadcast"
    # Broadcasting offsets live in $HOME/.rocketmq_offsets/<ip>@<instance>/<group>: two
    # consumers on one host need their own instance names (RocketMQ's advice too).
    consumers = [push(cpp, single, group, topic, model="broadcasting", instance=f"bc-{i}")
                 for i in range(2)]
    for c in consumers:
        c.wait_event("started", 20)
    # first start of a broadcasting consumer: CONSUME_FROM_LAST_OFFSET = the max offset then
    warm_up(cpp, single, topic, consumers, 4, each=True)
    sent = make_messages(20, prefix="b")
    produce_sync(cpp, single, topic, sent, "PG-broadcast")
    for c in consumers:
        wait_until(lambda c=c: len(real(c.messages())) >= len(sent), 30, what="every message")
    time.sleep(1.0)
    for c in consumers:
        got = real(c.messages())
        assert sorted(index_of(m, "b") for m in got) == list(range(len(sent)))
        for msg in got:
            assert_intact(msg, sent[index_of(msg, "b")], topic)
        c.stop()


def test_push_orderly_listener(single, cpp):
    topic, group = single.create_topic("CppOrderlyPush"), "CG-orderly"
    sent = make_messages(45, prefix="o")
    for i, m in enumerate(sent):
        m["shard"] = i % 3
    events = cpp(cmd="produce", namesrv=single.namesrv, group="PG-orderly-push", topic=topic,
                 mode="orderly", messages=sent).wait(60)
    assert_sends_ok(events, len(sent))
    consumer = push(cpp, single, group, topic, orderly=True)
    follow(consumer, len(sent), 30)
    time.sleep(1.0)
    got = consumer.messages()
    assert sorted(index_of(m, "o") for m in got) == list(range(len(sent)))
    for shard in range(3):
        idx = [index_of(m, "o") for m in got if index_of(m, "o") % 3 == shard]
        assert idx == sorted(idx), f"sharding key {shard} consumed out of order: {idx}"
        assert len({m["queue_id"] for m in got if index_of(m, "o") % 3 == shard}) == 1
    for msg in got:
        assert_intact(msg, sent[index_of(msg, "o")], topic)
    consumer.stop()


def test_tag_subscription(single, cpp):
    topic = single.create_topic("CppTags")
    sent = make_messages(30, tag_cycle=("TagA", "TagB", "TagC"), prefix="t")
    produce_sync(cpp, single, topic, sent, "PG-tags")
    wanted = sorted(i for i, m in enumerate(sent) if m["tags"] in ("TagA", "TagB"))
    consumer = push(cpp, single, "CG-tags", topic, expr="TagA || TagB")
    follow(consumer, len(wanted), 30)
    only_c = push(cpp, single, "CG-tags-c", topic, expr="TagC")
    follow(only_c, len(sent) - len(wanted), 30)
    time.sleep(1.0)
    got = consumer.messages()
    assert sorted(index_of(m, "t") for m in got) == wanted
    assert {m["tags"] for m in got} == {"TagA", "TagB"}
    assert {m["tags"] for m in only_c.messages()} == {"TagC"}
    assert len(only_c.messages()) == len(sent) - len(wanted)
    consumer.stop()
    only_c.stop()
    pulled = pull_all(cpp, single.namesrv, topic, "CG-tags-pull", expr="TagA || TagB")
    assert sorted(index_of(m, "t") for m in pulled) == wanted


def test_auto_created_topic_is_consumable_at_once(single, cpp):
    """A topic created by a send (from TBW102) is routed before the send returns, so a consumer
    started right after finds it (else the C++ client waits for its 30 s route refresh)."""
    topic = "CppAutoCreated"
    assert route(single.namesrv, topic) is None
    sent = make_messages(8, prefix="a")
    produce_sync(cpp, single, topic, sent, "PG-auto")
    assert route_brokers(single.namesrv, topic) == {"broker-a"}
    consumer = push(cpp, single, "CG-auto", topic)
    got = follow(consumer, len(sent), 15)
    assert sorted(index_of(m, "a") for m in got) == list(range(len(sent)))
    consumer.stop()


# -- two brokers behind one NameServer ---------------------------------------------------------
def broker_total(addr: str, topic: str, queues: int = 4) -> int:
    return sum(max_offset(addr, topic, q) for q in range(queues))


def test_cluster_spreads_and_fails_over_when_a_broker_dies(cluster, cpp):
    topic = cluster.create_topic("CppCluster2")
    a, b = cluster.brokers["broker-a"], cluster.brokers["broker-b"]
    sent = make_messages(32, prefix="f")
    producer = cpp(cmd="produce", namesrv=cluster.namesrv, group="PG-failover", topic=topic,
                   mode="sync", messages=sent, pause_after=16, max_seconds=60)
    producer.wait_event("paused", 30)
    before = [e for e in producer.events() if "i" in e]
    assert_sends_ok(before, 16)
    on_a, on_b = broker_total(a, topic), broker_total(b, topic)
    assert on_a + on_b == 16 and on_a > 0 and on_b > 0, (on_a, on_b)  # spread over both

    cluster.processes["broker-b"].signal(signal.SIGKILL)  # no unregister, no goodbye
    killed_at = time.monotonic()
    # The NameServer forgets broker-b at once: its connection closed (no 3 s expiry needed).
    wait_until(lambda: route_brokers(cluster.namesrv, topic) == {"broker-a"}, BROKER_EXPIRY_S,
               what="broker-b gone from the route")
    assert time.monotonic() - killed_at < BROKER_EXPIRY_S
    producer.go()  # its route still lists broker-b: sends there fail, the retry goes to broker-a
    events = producer.wait(60)
    after = [e for e in events if "i" in e and e["i"] >= 16]
    assert_sends_ok(after, 16)
    # A send whose request was already on broker-b's dying connection waits for the 3 s
    # request timeout before its retry; one that finds the connection gone retries at once.
    assert max(e["seconds"] for e in after) < 7.0
    assert broker_total(a, topic) == on_a + 16
    got = pull_all(cpp, cluster.namesrv, topic, "CG-failover-pull")
    assert len(got) == on_a + 16  # what broker-a holds; broker-b's share is on its disk
    for msg in got:
        assert_intact(msg, sent[index_of(msg, "f")], topic)


def test_cluster_silent_broker_expires_from_the_name_server(cluster):
    topic = cluster.create_topic("CppExpiry")
    stopped = cluster.processes["broker-b"]
    stopped.signal(signal.SIGSTOP)  # alive to TCP, silent to the NameServer
    try:
        t0 = time.monotonic()
        wait_until(lambda: route_brokers(cluster.namesrv, topic) == {"broker-a"},
                   BROKER_EXPIRY_S * 3, what="broker-b expired")
        assert time.monotonic() - t0 >= BROKER_EXPIRY_S - 1.5  # it waited for the expiry
    finally:
        stopped.signal(signal.SIGCONT)
    # Back: its next registration (every 1 s here) restores the route.
    wait_until(lambda: route_brokers(cluster.namesrv, topic) == {"broker-a", "broker-b"}, 10,
               what="broker-b registered again")
