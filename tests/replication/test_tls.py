"""TLS on a broker's HA port, through `rmqstore serve` and broker.conf: a SYNC_MASTER serving
its HA port with the remoting port's tls.* settings (enforcing, client certificates required)
and a slave connecting with its own (tls.enable, tls.client.*). Real processes on loopback,
the test CA; every wait bounded."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from rmqstore.client import Message, Producer
from rmqstore.client.producer import SendStatus
from rmqstore.net.tls import TlsClientConfig
from rmqstore.protocol.ha import encode_report
from rmqstore.server.testing import SMALL_STORE_ARGS, wait_until
from rmqstore.server.testing_ha import HAPair
from tests.client.conftest import run
from tests.log_digest import log_digest
from tests.replication.stores import pair_stores
from tests.tls_pki import Pki, make_pki

STORE_CFG = dict(commitlog_segment_bytes=16 << 20, consumequeue_units=30000, index_slots=40000,
                 index_entries=160000, background=False)
assert SMALL_STORE_ARGS[1] == "commitlog_segment_bytes=16777216"  # the pair's stores


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_keys(pki: Pki) -> dict[str, object]:
    """Both brokers' and the NameServer's: enforcing, client certificates required, and TLS
    with a certificate for their own connections (to the NameServer, the master, its HA
    port)."""
    return {"tls.server.mode": "enforcing", "tls.server.certPath": pki.server_cert,
            "tls.server.keyPath": pki.server_key, "tls.server.need.client.auth": "require",
            "tls.server.trustCertPath": pki.ca, "tls.enable": "true",
            "tls.client.trustCertPath": pki.ca, "tls.client.certPath": pki.client_cert,
            "tls.client.keyPath": pki.client_key}


def test_sync_master_replicates_over_tls_and_refuses_a_plaintext_slave(tmp_path: Path,
                                                                        pki: Pki) -> None:
    keys = tls_keys(pki)
    props = tmp_path / "tls.properties"
    props.write_text("".join(f"{k}={v}\n" for k, v in keys.items()))
    pair = HAPair(tmp_path / "pair", role="SYNC_MASTER",
                  common_conf="".join(f"{k}={v}\n" for k, v in keys.items()),
                  namesrv_args=("--tls-config", str(props)))
    client_tls = TlsClientConfig(ca_path=pki.ca, cert_path=pki.client_cert,
                                 key_path=pki.client_key)

    async def sends() -> None:
        async with Producer("PG_ha_tls", pair.namesrv, tls=client_tls) as p:
            await p.create_topic("HaTls", 2)
            for i in range(30):  # SEND_OK: the slave acknowledged it over TLS
                r = await p.send(Message("HaTls", b"over tls %d" % i))
                assert r.status is SendStatus.SEND_OK, r.status

    try:
        pair.start()
        run(sends(), timeout_s=60)
        host, port = pair.master_ha.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as plain:
            plain.sendall(encode_report(0))  # what a plaintext slave says first
            plain.settimeout(5)
            try:
                got = plain.recv(4096)
            except ConnectionResetError:  # closed with our report unread
                got = b""
            assert got == b""  # closed, nothing sent
        wait_until(lambda: "plaintext on a TLS-only port" in pair.master_proc.log(), 5,
                   what="the master's refusal")
    finally:
        pair.stop()
    with pair_stores(pair, STORE_CFG) as (master, slave):
        end = master.commitlog.max_offset
        assert slave.commitlog.max_offset == end > 0
        assert log_digest(slave, 0) == log_digest(master, 0)
