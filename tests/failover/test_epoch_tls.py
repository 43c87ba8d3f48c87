"""TLS on a controller-mode master's HA port: the epoch handshake and the transfers received
in place cross TLS (client certificates required), the slave joins the in-sync set and sends
wait for it; a plaintext controller-mode slave is refused and appends nothing. Both ends in
this process on loopback with the test CA; every wait bounded. A broker's replication takes
its broker.conf tls.* settings on both ends."""

from __future__ import annotations

from pathlib import Path

import pytest

from rmqstore.epoch_file import EpochFile
from rmqstore.ha.epoch_client import EpochHAClient
from rmqstore.net.tls import ClientAuth
from rmqstore.protocol.headers import RegisterBrokerResponseHeader
from rmqstore.server.broker.config import BrokerConfig
from rmqstore.server.broker.controller_replication import ControllerReplication
from tests.failover.test_epoch_ha import HA, Master, open_store, run, wait_for
from tests.ha.test_tls import client_tls, server_tls
from tests.log_digest import log_digest
from tests.replication.test_tls import tls_keys
from tests.tls_pki import Pki, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_controller_mode_replicates_over_tls_with_client_certificates(tmp_path: Path,
                                                                      pki: Pki) -> None:
    async def main() -> None:
        with open_store(tmp_path / "m") as ms, open_store(tmp_path / "s", True) as ss, \
                open_store(tmp_path / "p", True) as plain_store:
            m = Master(ms, 1, epoch=1, tls=server_tls(pki, auth=ClientAuth.REQUIRE))
            m.put(300, "a")  # several segments: a full copy from offset 0
            await m.ha.start()
            epochs = EpochFile(ss.root)
            client = EpochHAClient(ss, epochs, 2, m.address, HA,
                                   tls=client_tls(pki, cert=True))
            plain = EpochHAClient(plain_store, EpochFile(plain_store.root), 3, m.address, HA)
            await client.start()
            await plain.start()
            try:
                await wait_for(lambda: ss.commitlog.max_offset == ms.commitlog.max_offset)
                await wait_for(lambda: m.proposals == [frozenset({1, 2})])
                m.isr.set_committed(frozenset({1, 2}), 2)
                for i in range(20):  # each send waits for slave 2's ack over TLS
                    assert await m.replicated(m.put(1, f"b{i}"))
                assert epochs.entries == [(1, 0)]
                assert log_digest(ss, 0) == log_digest(ms, 0)
                link = next(iter(m.ha.links))
                assert link._transport.get_extra_info("ssl_object") is not None
                assert len(m.ha.links) == 1 and not plain.connected
                assert plain_store.commitlog.max_offset == 0
            finally:
                await plain.close()
                await client.close()
                await m.ha.close()
    run(main)


def test_a_controller_mode_broker_takes_its_tls_settings_on_both_ends(tmp_path: Path,
                                                                     pki: Pki) -> None:
    """broker.conf's tls.server.* serve the master's HA port and tls.client.* make the slave's
    link (ControllerReplication), as a 4.x pair's do."""
    keys = {"enableControllerMode": "true", "controllerAddr": "127.0.0.1:1",
            "brokerIP1": "127.0.0.1", "haListenPort": "0", **tls_keys(pki)}
    config = BrokerConfig.from_mapping({k: str(v) for k, v in keys.items()})

    async def main() -> None:
        with open_store(tmp_path / "m") as ms, open_store(tmp_path / "s") as ss:
            master = ControllerReplication(config, ms, lambda _: None, lambda: None)
            slave = ControllerReplication(config, ss, lambda _: None, lambda: None)
            await master.to_master(1, 1, frozenset({1}), 1, lambda _: None)
            for i in range(50):
                ms.put("T", b"over tls %d" % i)
            await slave.to_slave(2, "127.0.0.1:10911")
            try:
                slave.on_register_answer(RegisterBrokerResponseHeader(
                    ha_server_addr=f"127.0.0.1:{master.ha_port}", master_addr="127.0.0.1:10911"))
                await wait_for(lambda: ss.commitlog.max_offset == ms.commitlog.max_offset > 0)
                assert master.service is not None
                link = next(iter(master.service.links))
                assert link._transport.get_extra_info("ssl_object") is not None
            finally:
                await slave.stop()
                await master.stop()
    run(main)
