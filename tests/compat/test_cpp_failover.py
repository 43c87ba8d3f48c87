"""The official C++ client against controller mode (three nodes: NameServer, controller, etcd
member and broker each): its producer, paced, goes on through a SIGKILL of the master and
finds the new master with its own route refresh (pollNameServerInterval, 30 s): no push
reaches it, the NameServer's route simply names the new master as broker id 0. Every send it
saw acknowledged is on the new master."""

from __future__ import annotations

import time
from pathlib import Path

from rmqstore.chaos.workload import drain
from rmqstore.protocol import RequestCode
from rmqstore.server.cluster import LocalCluster
from rmqstore.server.testing import call, create_topic, wait_until
from tests.failover.etcd import need_etcd

ROUTE_POLL_S = 30  # the C++ client's pollNameServerInterval
TOPIC = "CppFailoverT"
SENDS, KILL_AT, INTERVAL_MS = 500, 20, 100


def test_cpp_producer_moves_to_the_new_master_with_its_route_refresh(tmp_path: Path,
                                                                      cpp) -> None:
    need_etcd()
    cluster = LocalCluster(tmp_path / "cluster", 3)
    try:
        cluster.start()
        old = cluster.wait_master()
        create_topic(old, TOPIC, 2)
        wait_until(lambda: all(TOPIC.encode() in call(n.broker_addr,
                                                      RequestCode.GET_ALL_TOPIC_CONFIG).body
                               for n in cluster.nodes), 30, what="the topic on every broker")
        producer = cpp(cmd="produce", namesrv=cluster.namesrv_addrs, group="PG_cpp_failover",
                       topic=TOPIC, mode="sync", interval_ms=INTERVAL_MS, pause_after=KILL_AT,
                       max_seconds=60,
                       messages=[{"body": (b"cpp-%04d" % i).hex()} for i in range(SENDS)])
        producer.wait_event("paused", 60)
        cluster.node_of(old).broker.kill()
        killed = time.time()
        producer.go()
        events = producer.wait(SENDS * INTERVAL_MS / 1000 + ROUTE_POLL_S + 60)
        results = [e for e in events if "i" in e]
        assert len(results) == SENDS
        ok = [e for e in results if e.get("status") == 0]
        moved = [e for e in ok if e["i"] >= KILL_AT]
        assert moved, "no send acknowledged after the master died"
        assert moved[0]["at"] - killed < ROUTE_POLL_S + 15, moved[0]["at"] - killed
        assert all(e.get("status") == 0 for e in results[-50:])  # it stays on the new master
        new = cluster.wait_master(10, not_addr=old)
        kept = {d.key for d in drain(new, TOPIC, 2)}
        acked = {"cpp-%04d" % e["i"] for e in ok}
        assert acked <= kept, sorted(acked - kept)[:10]
    finally:
        cluster.stop()
