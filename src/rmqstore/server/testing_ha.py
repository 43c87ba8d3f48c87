"""A replicated broker group on loopback for integration tests (ours: tests/replication,
benches/ha_*.py; and yours): one NameServer, a master and its slave, each `rmqstore serve` in
its own process with its own broker.conf (as conf/broker-a*.properties), small store files.
Every wait is bounded; stop() ends every process it started.

    pair = HAPair(tmp, role="SYNC_MASTER").start()   # NameServer, master, slave linked
    try:
        pair.create_topic("Orders")
        ...  # clients at pair.namesrv; pair.master_proc.kill() to lose the master
    finally:
        pair.stop()
"""

from __future__ import annotations

import re
from pathlib import Path

from ..protocol import RequestCode, fastjson
from ..protocol.acl_signature import Credentials
from .testing import (
    SMALL_STORE_ARGS,
    ServeProcess,
    call,
    free_broker_port,
    free_port,
    max_offset,
    route,
    wait_until,
)

LINKED = re.compile(r"HA: slave \S+ (is empty|resumes at)")


class HAPair:
    def __init__(self, tmp: Path, role: str = "SYNC_MASTER", master_conf: str = "",
                 slave_conf: str = "", common_conf: str = "",
                 store_args: tuple[str, ...] = SMALL_STORE_ARGS,
                 credentials: Credentials | None = None,
                 namesrv_args: tuple[str, ...] = ()) -> None:
        """credentials: what this pair's own requests are signed with (brokers with
        aclEnable=true in their conf). namesrv_args: more of the NameServer's serve
        arguments (its --tls-config, say)."""
        self.store_args = store_args
        self.credentials = credentials
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        ns_port = free_port()
        self.namesrv = f"127.0.0.1:{ns_port}"
        self.ns_proc = ServeProcess(["--role", "namesrv", "--namesrv-port", str(ns_port),
                                     "--http-port", "0", "--broker-expiry", "5",
                                     *namesrv_args],
                                    tmp / "namesrv.log")
        m_port, s_port = free_broker_port(), free_broker_port()
        self.master = f"127.0.0.1:{m_port}"
        self.slave = f"127.0.0.1:{s_port}"
        self.master_ha = f"127.0.0.1:{m_port + 1}"
        self.master_data, self.slave_data = tmp / "master", tmp / "slave"
        common = (f"brokerClusterName=C\nbrokerName=broker-a\nnamesrvAddr={self.namesrv}\n"
                  f"brokerIP1=127.0.0.1\nregisterNameServerPeriod=2000\n{common_conf}")
        self.master_proc = self._broker("master", common + f"brokerId=0\nbrokerRole={role}\n"
                                        f"listenPort={m_port}\n{master_conf}", self.master_data)
        self.slave_proc = self._broker("slave", common + "brokerId=1\nbrokerRole=SLAVE\n"
                                       f"listenPort={s_port}\n{slave_conf}", self.slave_data)

    def _broker(self, name: str, conf: str, data: Path) -> ServeProcess:
        path = self.tmp / f"{name}.conf"
        path.write_text(conf)
        return ServeProcess(["--role", "broker", "-c", str(path), "--data", str(data)],
                            self.tmp / f"{name}.log", verbose=True, store_args=self.store_args)

    def start(self) -> HAPair:
        self.ns_proc.start()
        self.master_proc.start()
        self.start_slave()
        return self

    def start_slave(self) -> None:
        before = self.links()
        self.slave_proc.start()
        self.wait_linked(before + 1)

    def restart_master(self) -> None:
        before = self.links()
        self.master_proc.start()
        self.wait_linked(before + 1)

    def links(self) -> int:
        """HA links the master has served (each restart's log appends)."""
        return len(LINKED.findall(self.master_proc.log()))

    def wait_linked(self, n: int, timeout_s: float = 15.0) -> None:
        wait_until(lambda: self.links() >= n, timeout_s, what=f"{n} HA links at the master")

    def create_topic(self, topic: str, queues: int = 4) -> str:
        r = call(self.master, RequestCode.UPDATE_AND_CREATE_TOPIC, {
            "topic": topic, "defaultTopic": "TBW102", "readQueueNums": str(queues),
            "writeQueueNums": str(queues), "perm": "6", "topicFilterType": "SINGLE_TAG",
            "topicSysFlag": "0", "order": "false"}, credentials=self.credentials)
        assert r.code == 0, r.remark
        wait_until(lambda: route(self.namesrv, topic, self.credentials), 10,
                   what=f"route of {topic}")
        return topic

    def wait_topics(self, topics: list[str], timeout_s: float = 10.0) -> None:
        """Until the slave's metadata sync brought the topics (3 s after it started)."""

        def there() -> bool:
            r = call(self.slave, RequestCode.GET_ALL_TOPIC_CONFIG, credentials=self.credentials)
            return r.code == 0 and set(topics) <= set(fastjson.loads(r.body)["topicConfigTable"])
        wait_until(there, timeout_s, what=f"{topics} on the slave")

    def wait_caught_up(self, topic: str, queues: int, timeout_s: float = 15.0) -> None:
        """Until the slave's queues of ``topic`` are as long as the master's."""
        def sizes(broker: str) -> list[int]:
            return [self.max_offset(broker, topic, q) for q in range(queues)]
        wait_until(lambda: sizes(self.slave) == sizes(self.master), timeout_s, interval_s=0.2,
                   what=f"the slave to catch up on {topic}")

    def max_offset(self, broker: str, topic: str, queue_id: int) -> int:
        return max_offset(broker, topic, queue_id, self.credentials)

    def stop(self) -> None:
        for proc in (self.slave_proc, self.master_proc, self.ns_proc):
            proc.stop()
