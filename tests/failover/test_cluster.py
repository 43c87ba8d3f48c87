"""A controller-mode cluster of real processes on loopback (server/cluster.py): three NameServers
with controllers and their etcd members, three brokers of one set. What the brokers keep on
disk, a master SIGKILLed under our producer, and a master that loses every controller."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rmqstore.client import Message, MessageQueue, Producer, SendStatus
from rmqstore.epoch_file import EpochFile
from rmqstore.protocol import RequestCode, ResponseCode
from rmqstore.protocol.controller_body import decode_epoch_entry_cache
from rmqstore.server.cluster import LocalCluster
from rmqstore.server.testing import call, create_topic, wait_until
from tests.failover.etcd import need_etcd

TOPIC = "FailoverT"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    need_etcd()
    c = LocalCluster(tmp_path_factory.mktemp("cluster"), 3)
    c.start()
    try:
        create_topic(c.wait_master(), TOPIC, 2)
        wait_until(lambda: all(TOPIC.encode() in call(n.broker_addr,
                                                      RequestCode.GET_ALL_TOPIC_CONFIG).body
                               for n in c.nodes), 30, what="the topic on every broker")
        yield c
    finally:
        c.stop()


def test_brokers_keep_their_identity_and_epochs_as_rocketmq_writes_them(cluster) -> None:
    master = cluster.wait_master()
    ids = set()
    for node in cluster.nodes:
        text = (node.store / "brokerIdentity").read_text()
        cluster_name, name, broker_id = text.split("#")
        assert (cluster_name, name) == ("c1", "broker-a")
        ids.add(int(broker_id))
        assert not (node.store / "brokerIdentity-temp").exists()
        cache = decode_epoch_entry_cache(call(node.broker_addr,
                                              RequestCode.GET_BROKER_EPOCH_CACHE).body)
        assert cache.broker_id == int(broker_id)
        assert [e[:2] for e in cache.epochs] == EpochFile(node.store).entries
    assert ids == {1, 2, 3}
    assert EpochFile(cluster.node_of(master).store).entries  # the master's epoch is written


async def send_for(producer: Producer, seconds: float, acks: list, queue: MessageQueue) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    n = 0
    while loop.time() < end:
        n += 1
        try:
            r = await producer.send(Message(TOPIC, b"k%d" % n), queue=queue)
            if r.status is SendStatus.SEND_OK:
                acks.append((loop.time(), r.master_epoch, b"k%d" % n))
        except Exception:  # noqa: BLE001 - failures are expected while the master moves
            pass
        await asyncio.sleep(0.01)


def drained(broker: str) -> set[bytes]:
    from rmqstore.chaos.workload import drain

    return {d.key.encode() for d in drain(broker, TOPIC, 1)}


def test_a_killed_master_is_replaced_and_our_producer_moves(cluster, tmp_path: Path) -> None:
    old = cluster.wait_master()
    old_node = cluster.node_of(old)

    async def main() -> tuple[list, float]:
        acks: list = []
        async with Producer("pg-failover", namesrv=cluster.namesrv_addrs,
                            send_timeout_s=3) as p:
            queue = MessageQueue(TOPIC, cluster.broker_name, 0)
            task = asyncio.create_task(send_for(p, 6.0, acks, queue))
            await asyncio.sleep(1.5)
            killed = asyncio.get_running_loop().time()
            old_node.broker.kill()
            await task
        return acks, killed

    acks, killed = asyncio.run(main())
    before = {epoch for t, epoch, _key in acks if t < killed}
    after = [(t, epoch) for t, epoch, _key in acks if t > killed and epoch not in before]
    assert before and after, "no send acknowledged by the new master"
    assert after[0][0] - killed < 3.0  # the p50 target for a SIGKILL
    new = cluster.wait_master(5, not_addr=old)
    old_node.broker.start()  # comes back as a slave of the new master
    wait_until(lambda: old in cluster.brokers_by_id().values(), 20, what="the old master back")
    assert cluster.master() == new
    kept = drained(new)
    assert {k for _, _, k in acks} <= kept  # no acknowledged send lost


def test_a_master_cut_off_from_every_controller_stops_acknowledging(cluster) -> None:
    master = cluster.wait_master()
    for node in cluster.nodes:
        node.namesrv.kill()  # controllers gone (their etcd members stay): no lease renewal
    try:
        queue = {"a": "pg", "b": TOPIC, "c": "TBW102", "d": "4", "e": "0", "f": "0",
                 "g": str(int(time.time() * 1000)), "h": "0", "i": "", "j": "0", "k": "false"}

        def refused() -> bool:
            r = call(master, RequestCode.SEND_MESSAGE_V2, queue, b"late")
            return r.code == ResponseCode.SERVICE_NOT_AVAILABLE and "lease" in (r.remark or "")
        wait_until(refused, 6.0, interval_s=0.2, what="the master refusing without a lease")
    finally:
        for node in cluster.nodes:
            node.namesrv.start()
    wait_until(lambda: call(cluster.wait_master(20), RequestCode.SEND_MESSAGE_V2, queue,
                            b"again").code == ResponseCode.SUCCESS, 30, interval_s=0.3,
               what="sends taken again")
