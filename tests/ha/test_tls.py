"""TLS on the HA port (ha/sockets.py), both ends in this process on loopback with the test CA:
SYNC waits over TLS, a plaintext slave refused by an enforcing port, client certificates
checked when the port requires them. Every wait is bounded."""

from __future__ import annotations

import asyncio
import logging

import pytest

import rmqstore
from rmqstore.ha import HAClient, HAService
from rmqstore.net.tls import ClientAuth, TlsClientConfig, TlsMode, TlsServerConfig
from tests.ha.test_link import CFG, FAST, fill, linked, run, until
from tests.log_digest import log_digest
from tests.tls_pki import Pki, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def server_tls(pki: Pki, mode: TlsMode = TlsMode.ENFORCING,
               auth: ClientAuth = ClientAuth.NONE) -> TlsServerConfig:
    return TlsServerConfig(mode, pki.server_cert, pki.server_key,
                           trust_cert_path=pki.ca if auth is not ClientAuth.NONE else None,
                           client_auth=auth)


def client_tls(pki: Pki, cert: bool = False, rogue: bool = False) -> TlsClientConfig:
    if rogue:
        return TlsClientConfig(ca_path=pki.ca, cert_path=pki.rogue_client_cert,
                               key_path=pki.rogue_client_key)
    return TlsClientConfig(ca_path=pki.ca, cert_path=pki.client_cert if cert else None,
                           key_path=pki.client_key if cert else None)


async def replicated(service: HAService, end: int) -> bool:
    fut = asyncio.get_running_loop().create_future()
    service.when_replicated(end, fut.set_result)
    return await fut


def test_sync_replication_over_tls_enforcing(stores, pki) -> None:
    master, replica = stores
    fill(master, 100)  # within the first segment: an empty slave starts at 0

    async def main():
        async with linked(master, replica, server_tls=server_tls(pki),
                          client_tls=client_tls(pki)) as (service, _):
            await until(lambda: replica.replica.end == master.commitlog.max_offset)
            for i in range(50):  # SYNC waits end when the slave's report crosses TLS
                master.put("T", b"sync over tls %d" % i)
                assert await replicated(service, master.commitlog.max_offset)
            link = next(iter(service.links))
            assert link._transport.get_extra_info("ssl_object") is not None

    run(main())
    assert log_digest(replica, 0) == log_digest(master, 0)


@pytest.mark.parametrize("how, expect", [
    ("plaintext", "plaintext on a TLS-only port"),
    ("no certificate", "TLS handshake failed"),
    ("a certificate the port does not trust", "TLS handshake failed"),
])
def test_an_enforcing_port_refuses_a_slave_it_cannot_authenticate(stores, pki, caplog, how,
                                                                   expect) -> None:
    """Enforcing TLS, client certificates required: only a slave whose certificate the
    port's CA signed is served; a plaintext one, one without a certificate and one with a
    stranger's get nothing."""
    master, replica = stores
    fill(master, 50)
    tls = {"plaintext": None, "no certificate": client_tls(pki),
           "a certificate the port does not trust": client_tls(pki, rogue=True)}[how]

    async def main():
        service = HAService(master, "127.0.0.1", 0, FAST,
                            tls=server_tls(pki, auth=ClientAuth.REQUIRE))
        await service.start()
        address = "127.0.0.1:%d" % service.address[1]
        refused = HAClient(replica, address, FAST, tls=tls)
        await refused.start()
        try:
            await until(lambda: expect in caplog.text)
            await asyncio.sleep(0.3)  # a link that were served would have had bytes by now
            assert replica.replica.end == 0 and not service.links
        finally:
            await refused.close()
        served = HAClient(replica, address, FAST, tls=client_tls(pki, cert=True))
        await served.start()
        try:
            await until(lambda: replica.replica.end == master.commitlog.max_offset)
        finally:
            await served.close()
            await service.close()

    with caplog.at_level(logging.INFO):
        run(main())


def test_a_permissive_port_serves_tls_and_plaintext_slaves(tmp_path, pki) -> None:
    master = rmqstore.open(tmp_path / "m", **CFG)
    replicas = [rmqstore.open(tmp_path / f"r{i}", replica=True, **CFG) for i in range(2)]
    fill(master, 50)

    async def main():
        service = HAService(master, "127.0.0.1", 0, FAST,
                            tls=server_tls(pki, TlsMode.PERMISSIVE))
        await service.start()
        address = "127.0.0.1:%d" % service.address[1]
        clients = [HAClient(replicas[0], address, FAST, tls=client_tls(pki)),
                   HAClient(replicas[1], address, FAST)]
        for c in clients:
            await c.start()
        try:
            await until(lambda: all(r.replica.end == master.commitlog.max_offset
                                    for r in replicas))
            kinds = {link._transport.get_extra_info("ssl_object") is not None
                     for link in service.links}
            assert kinds == {True, False}
        finally:
            for c in clients:
                await c.close()
            await service.close()

    try:
        run(main())
    finally:
        master.close()
        for r in replicas:
            r.close()
