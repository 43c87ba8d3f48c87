"""A controller-mode slave follows the master the controller named: a NameServer's registration
answer that still names the deposed master (the new one not registered there yet) is not
followed, the next one naming the new master is. Found in the long chaos run: a partitioned
master's slave went back to it from such an answer and stayed out of the in-sync set for 14 s
after the partition healed."""

from __future__ import annotations

from pathlib import Path

from rmqstore.protocol.headers import RegisterBrokerResponseHeader
from rmqstore.server.broker.config import BrokerConfig
from rmqstore.server.broker.controller_replication import ControllerReplication
from tests.failover.test_epoch_ha import open_store, run, wait_for

CONFIG = BrokerConfig.from_mapping({"enableControllerMode": "true",
                                    "controllerAddr": "127.0.0.1:1", "brokerIP1": "127.0.0.1",
                                    "haListenPort": "0"})
NEW, OLD = "127.0.0.1:20911", "127.0.0.1:30911"  # broker addresses: the named master, the old


def test_a_slave_follows_only_the_master_the_controller_named(tmp_path: Path) -> None:
    async def main() -> None:
        with open_store(tmp_path / "m") as ms, open_store(tmp_path / "s") as ss:
            master = ControllerReplication(CONFIG, ms, lambda _: None, lambda: None)
            slave = ControllerReplication(CONFIG, ss, lambda _: None, lambda: None)
            await master.to_master(1, 2, frozenset({1}), 1, lambda _: None)
            ms.put("T", b"from the new master")
            await slave.to_slave(3, NEW)
            try:
                assert slave.client is not None
                slave.on_register_answer(RegisterBrokerResponseHeader(
                    ha_server_addr="127.0.0.1:30912", master_addr=OLD))  # a stale NameServer
                assert slave.client.master is None
                slave.on_register_answer(RegisterBrokerResponseHeader(
                    ha_server_addr=f"127.0.0.1:{master.ha_port}", master_addr=NEW))
                assert slave.client.master == f"127.0.0.1:{master.ha_port}"
                await wait_for(lambda: ss.commitlog.max_offset == ms.commitlog.max_offset)
            finally:
                await slave.stop()
                await master.stop()
    run(main)
