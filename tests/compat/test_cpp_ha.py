"""The official C++ client against a master and its slave: it keeps consuming from the slave
once its route refresh (30 s) shows the master gone, and its producer handles SYNC_MASTER's
FLUSH_SLAVE_TIMEOUT and SLAVE_NOT_AVAILABLE as it does RocketMQ's: rocketmq-client-cpp 1.2.4
(DefaultMQProducer::sendDefaultImpl) sends again on any status but SEND_OK, up to its 1 + 2
tries within its 3 s timeout, each one stored, then fails the send ("No route info")."""

from __future__ import annotations

import asyncio
import time

from rmqstore.client import Message, Producer
from rmqstore.client.producer import SendStatus
from rmqstore.server.testing_ha import HAPair
from tests.client.conftest import run
from tests.compat.conftest import wait_until

ROUTE_POLL_S = 30  # the C++ client's pollNameServerInterval
CPP_CACHE = 1000  # DefaultMQPushConsumer's maxCacheMsgSizePerQueue


async def fill(namesrv: str, topic: str, n: int) -> None:
    async with Producer("PG_cpp_ha", namesrv=namesrv) as p:
        for start in range(0, n, 100):
            batch = [Message(topic, b"%06d" % i) for i in range(start, min(n, start + 100))]
            assert (await p.send_batch(batch)).status is SendStatus.SEND_OK


def test_cpp_consumer_moves_to_the_slave_within_its_route_refresh(tmp_path, cpp) -> None:
    pair = HAPair(tmp_path, role="SYNC_MASTER", common_conf="slaveReadEnable=true\n")
    n = 3000
    try:
        pair.ns_proc.start()
        pair.master_proc.start()
        topic = pair.create_topic("CppHaT", 1)
        pair.start_slave()
        pair.wait_topics([topic])
        run(fill(pair.namesrv, topic, n))
        # one slow consumer thread: far more is left unpulled than the client caches
        consumer = cpp(cmd="push", namesrv=pair.namesrv, group="CG_cpp_ha", topic=topic,
                       threads=1, sleep_ms=2, max_seconds=120)
        wait_until(lambda: len(consumer.messages()) >= 50, 30, what="consuming from the master")
        pair.master_proc.kill()
        killed = time.monotonic()
        wait_until(lambda: len({m["body"] for m in consumer.messages()}) >= n,
                   ROUTE_POLL_S + 40, what="every message, the rest from the slave")
        events = [e for e in consumer.events() if "msg" in e]
        after = [e for e in events if e["at"] > killed]
        # more than the client can hold (1000 cached + a pull of 32 in flight): the rest was
        # pulled after the master died, from the slave
        assert len(after) > CPP_CACHE + 32, len(after)
        assert max(e["at"] for e in events) - killed < ROUTE_POLL_S + 40
        consumer.stop()
    finally:
        pair.stop()


def test_cpp_producer_reads_sync_masters_statuses(tmp_path, cpp) -> None:
    pair = HAPair(tmp_path, role="SYNC_MASTER", master_conf="slaveTimeout=1000\n")
    try:
        pair.ns_proc.start()
        pair.master_proc.start()
        topic = pair.create_topic("CppSyncT", 1)
        pair.start_slave()

        def send_one(tag: str) -> tuple[dict, int]:
            """The C++ producer's one event for a sync send, and how many records the master
            stored for it."""
            before = pair.max_offset(pair.master, topic, 0)
            events = cpp(cmd="produce", namesrv=pair.namesrv, group="PG_cpp_sync", topic=topic,
                         mode="sync", messages=[{"body": tag.encode().hex()}]).wait(60)
            results = [e for e in events if "i" in e]
            assert len(results) == 1, results
            return results[0], pair.max_offset(pair.master, topic, 0) - before

        ok, stored = send_one("ok")
        assert ok.get("status") == 0 and stored == 1  # SEND_OK
        pair.slave_proc.pause()  # linked, acknowledging nothing
        try:
            failed, stored = send_one("no ack")
        finally:
            pair.slave_proc.resume()
        # three tries, each answered FLUSH_SLAVE_TIMEOUT after slaveTimeout (1 s)
        assert "No route info" in failed.get("error", "") and stored == 3
        assert 2.9 <= failed["seconds"] < 4.0
        run(asyncio.sleep(0.5))
        ok, stored = send_one("acked again")
        assert ok.get("status") == 0 and stored == 1
        pair.slave_proc.stop()
        run(asyncio.sleep(0.3))
        failed, stored = send_one("no slave")
        # three tries, each answered SLAVE_NOT_AVAILABLE at once
        assert "No route info" in failed.get("error", "") and stored == 3
        assert failed["seconds"] < 0.5
        pair.start_slave()
        ok, stored = send_one("back")
        assert ok.get("status") == 0 and stored == 1
        wait_until(lambda: pair.max_offset(pair.slave, topic, 0) == 9, 10,
                   what="every message on the slave")
    finally:
        pair.stop()
