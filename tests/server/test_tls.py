"""TLS on the remoting ports of `rmqstore serve` (NameServer and Broker), with RocketMQ's
tls.properties keys, against a CA made by the test: enforcing refuses plaintext, permissive
serves both on one port, disabled refuses a TLS hello, client certificates are checked when
asked for, our client verifies the server, and a setting that cannot work stops serve with a
one-line reason."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from pathlib import Path

import pytest
from click.testing import CliRunner

from rmqstore.cli import main
from rmqstore.client import (
    ConsumeFromWhere,
    LitePullConsumer,
    Message,
    NameServerUnavailable,
    Producer,
    TlsClientConfig,
)
from rmqstore.protocol import FrameDecoder, RemotingCommand, RequestCode, encode
from rmqstore.server.testing import ServeError, call
from tests.tls_pki import KEY_PASSWORD, Pki, make_pki

from .conftest import Served, ServeFactory

GET_ROUTE = RequestCode.GET_ROUTEINFO_BY_TOPIC


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_properties(path: Path, **keys: object) -> Path:
    path.write_text("".join(f"{k}={v}\n" for k, v in keys.items()))
    return path


def server_tls(pki: Pki, mode: str, **more: object) -> dict[str, object]:
    """A tls.properties for both roles: the listener's keys, and TLS for the broker's own
    connection to the NameServer."""
    return {"tls.server.mode": mode, "tls.server.certPath": pki.server_cert,
            "tls.server.keyPath": pki.server_key, "tls.enable": "true",
            "tls.client.trustCertPath": pki.ca, **more}


def serve_tls(serve: ServeFactory, tmp_path: Path, keys: dict[str, object]) -> Served:
    return serve("", "--tls-config", str(tls_properties(tmp_path / "tls.properties", **keys)))


def tls_call(addr: str, context: ssl.SSLContext, code: int,
             ext: dict[str, str] | None = None) -> RemotingCommand:
    """One request over TLS on a fresh connection (what `call` does in plaintext)."""
    host, port = addr.rsplit(":", 1)
    request = RemotingCommand.request(code, ext or {})
    request.opaque = 7
    with socket.create_connection((host, int(port)), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname=host) as sock:
        sock.sendall(encode(request))
        decoder = FrameDecoder()
        while True:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("closed without an answer")
            for cmd in decoder.feed(data):
                return cmd


def client_context(pki: Pki, cert: bool = False) -> ssl.SSLContext:
    return TlsClientConfig(ca_path=pki.ca, cert_path=pki.client_cert if cert else None,
                           key_path=pki.client_key if cert else None).context()


async def round_trip(srv: Served, tls: TlsClientConfig | None, topic: str) -> list[bytes]:
    """Send three messages with our producer and read them back with our consumer."""
    async with Producer("PG_tls", srv.namesrv, tls=tls) as producer:
        await producer.create_topic(topic, 2)
        for i in range(3):
            await producer.send(Message(topic, b"over tls %d" % i))
    consumer = LitePullConsumer("CG_tls", srv.namesrv, tls=tls, broker_suspend_ms=500,
                                consume_from_where=ConsumeFromWhere.FIRST_OFFSET)
    consumer.subscribe(topic, "*")
    got: list[bytes] = []
    async with consumer:
        for _ in range(40):
            got += [m.body for m in await consumer.poll(0.5)]
            if len(got) >= 3:
                break
    return sorted(got)


def test_enforcing_serves_tls_and_refuses_plaintext(serve: ServeFactory, tmp_path: Path,
                                                    pki: Pki) -> None:
    # the key file is encrypted: tls.server.keyPassword opens it
    srv = serve_tls(serve, tmp_path, server_tls(
        pki, "enforcing", **{"tls.server.keyPath": pki.server_key_encrypted,
                             "tls.server.keyPassword": KEY_PASSWORD}))
    tls = TlsClientConfig(ca_path=pki.ca)
    got = asyncio.run(asyncio.wait_for(round_trip(srv, tls, "TlsTopic"), 60))
    assert got == [b"over tls %d" % i for i in range(3)]
    for addr in (srv.broker, srv.namesrv):
        with pytest.raises((ServeError, ConnectionError)):
            call(addr, GET_ROUTE, {"topic": "TBW102"})
    assert "plaintext on a TLS-only port (tls.server.mode=enforcing)" in srv.proc.log()
    # our client checks the server: without the CA that signed it, nothing is sent
    with pytest.raises(NameServerUnavailable, match="CERTIFICATE_VERIFY_FAILED|certificate"):
        asyncio.run(asyncio.wait_for(round_trip(srv, TlsClientConfig(), "Unverified"), 30))
    with pytest.raises(NameServerUnavailable):
        asyncio.run(asyncio.wait_for(
            round_trip(srv, TlsClientConfig(ca_path=pki.rogue_ca), "Unverified"), 30))
    # rmqstore admin speaks TLS with --tls-ca; in plaintext it fails with one line
    ok = CliRunner().invoke(main, ["admin", "topicRoute", "-t", "TlsTopic", "-n", srv.namesrv,
                                   "--tls-ca", str(pki.ca), "--json"])
    assert ok.exit_code == 0 and json.loads(ok.output)["queueDatas"], ok.output
    bad = CliRunner().invoke(main, ["admin", "topicRoute", "-t", "TlsTopic", "-n", srv.namesrv])
    assert bad.exit_code == 1 and len(bad.output.strip().splitlines()) == 1, bad.output


def test_permissive_serves_both_on_one_port(serve: ServeFactory, tmp_path: Path,
                                            pki: Pki) -> None:
    srv = serve_tls(serve, tmp_path, server_tls(pki, "permissive"))
    for addr in (srv.broker, srv.namesrv):  # answered (the broker does not serve 105: 3)
        assert call(addr, GET_ROUTE, {"topic": "TBW102"}).code in (0, 3)
        assert tls_call(addr, client_context(pki), GET_ROUTE, {"topic": "TBW102"}).code in (0, 3)
    got = asyncio.run(asyncio.wait_for(round_trip(srv, None, "PlainTopic"), 60))
    assert len(got) == 3


def test_without_tls_a_tls_hello_is_refused(serve: ServeFactory, pki: Pki) -> None:
    srv = serve()
    with pytest.raises((ssl.SSLError, ConnectionError)):
        tls_call(srv.broker, client_context(pki), GET_ROUTE, {"topic": "TBW102"})
    assert "a TLS handshake on a plaintext port" in srv.proc.log()
    assert call(srv.namesrv, GET_ROUTE, {"topic": "TBW102"}).code == 0


def test_client_certificates_are_verified_when_required(serve: ServeFactory, tmp_path: Path,
                                                       pki: Pki) -> None:
    srv = serve_tls(serve, tmp_path, server_tls(
        pki, "enforcing", **{"tls.server.need.client.auth": "require",
                             "tls.server.trustCertPath": pki.ca,
                             "tls.client.certPath": pki.client_cert,
                             "tls.client.keyPath": pki.client_key}))
    assert tls_call(srv.namesrv, client_context(pki, cert=True), GET_ROUTE,
                    {"topic": "TBW102"}).code == 0
    with pytest.raises((ssl.SSLError, ConnectionError)):
        tls_call(srv.namesrv, client_context(pki), GET_ROUTE, {"topic": "TBW102"})
    rogue = TlsClientConfig(ca_path=pki.ca, cert_path=pki.rogue_client_cert,
                            key_path=pki.rogue_client_key).context()
    with pytest.raises((ssl.SSLError, ConnectionError)):
        tls_call(srv.namesrv, rogue, GET_ROUTE, {"topic": "TBW102"})
    assert "TLS handshake failed" in srv.proc.log()


@pytest.mark.parametrize("keys, reason", [
    ({"tls.server.mode": "enforcing"},
     "tls.server.mode=enforcing needs tls.server.certPath and tls.server.keyPath"),
    ({"tls.server.mode": "strict"}, "tls.server.mode='strict': must be disabled | permissive"),
    ({"tls.test.mode.enable": "true"}, "tls.test.mode.enable=true"),
    ({"tls.server.need.client.auth": "require"}, "needs tls.server.trustCertPath"),
    ({"tls.server.authClient": "false", "tls.server.need.client.auth": "optional"},
     "would accept client certificates unverified"),
    ({"tls.server.certpath": "x"}, "tls.server.certpath: not a TLS key"),
    ({"tls.server.certPath": "/nonexistent/cert.pem", "tls.server.keyPath": "/nonexistent/k"},
     "tls.server.certPath /nonexistent/cert.pem: no such file"),
    ({"tls.server.keyPassword": "wrong"}, "cannot load the certificate and key"),
    ({"serverMaxConnections": "5"}, "serverMaxConnections is not a tls.* key"),
])
def test_a_tls_setting_that_cannot_work_stops_serve_with_one_line(
        serve: ServeFactory, tmp_path: Path, pki: Pki, keys: dict, reason: str) -> None:
    base = {"tls.server.certPath": pki.server_cert, "tls.server.keyPath": pki.server_key_encrypted}
    if "tls.server.mode" in keys or "tls.server.certpath" in keys:
        base = {}
    with pytest.raises(ServeError) as failed:
        serve_tls(serve, tmp_path, {**base, **keys})
    assert "exited with 1" in str(failed.value)
    errors = [line for line in str(failed.value).splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and reason in errors[0], str(failed.value)
    assert "Traceback" not in str(failed.value)


def test_tls_in_broker_conf_and_tls_config_at_once_is_refused(
        serve: ServeFactory, tmp_path: Path, pki: Pki) -> None:
    with pytest.raises(ServeError, match="TLS is set both in the role's config file and in "
                                         "--tls-config"):
        serve(f"tls.server.certPath={pki.server_cert}\ntls.server.keyPath={pki.server_key}\n",
              "--tls-config", str(tls_properties(tmp_path / "t.properties",
                                                 **server_tls(pki, "enforcing"))))
