"""The C++ client (rocketmq-client-cpp 1.2.4 has no TLS) against TLS modes of `rmqstore serve`:
a permissive server serves it in plaintext on the TLS port, an enforcing one refuses it and
stores nothing."""

from __future__ import annotations

from pathlib import Path

from rmqstore.server.testing import ServeProcess, free_broker_port, free_port
from tests.tls_pki import make_pki

from .conftest import create_topic, max_offset, route, wait_until


def start(tmp: Path, mode: str) -> tuple[ServeProcess, str, str]:
    pki = make_pki(tmp / "pki")
    conf = tmp / "tls.properties"
    conf.write_text(f"tls.server.mode={mode}\ntls.server.certPath={pki.server_cert}\n"
                    f"tls.server.keyPath={pki.server_key}\n"
                    f"tls.enable=true\ntls.client.trustCertPath={pki.ca}\n")
    ns, bp = free_port(), free_broker_port()
    proc = ServeProcess(["--namesrv-port", str(ns), "--broker-port", str(bp), "--http-port",
                         "0", "--data", str(tmp / "data"), "--tls-config", str(conf)],
                        tmp / "serve.log", verbose=True, drop_env=("NAMESRV_ADDR",))
    proc.start()
    return proc, f"127.0.0.1:{ns}", f"127.0.0.1:{bp}"


MESSAGES = [{"body": (b"cpp %d" % i).hex()} for i in range(3)]


def test_permissive_serves_the_plaintext_cpp_client(tmp_path: Path, cpp) -> None:
    proc, namesrv, broker = start(tmp_path, "permissive")
    try:
        create_topic(broker, "CppPermissive", 1)
        wait_until(lambda: route(namesrv, "CppPermissive"), 10, what="route")
        events = cpp(cmd="produce", namesrv=namesrv, group="PG-tls", topic="CppPermissive",
                     mode="sync", messages=MESSAGES).wait(60)
        assert [e.get("status") for e in events if "i" in e] == [0, 0, 0], events
        assert max_offset(broker, "CppPermissive", 0) == 3
    finally:
        assert proc.terminate() == 0


def test_enforcing_refuses_the_plaintext_cpp_client(tmp_path: Path, cpp) -> None:
    proc, namesrv, _broker = start(tmp_path, "enforcing")
    try:
        client = cpp(cmd="produce", namesrv=namesrv, group="PG-tls", topic="CppEnforcing",
                     mode="sync", messages=MESSAGES[:1])
        # the client retries for a minute; its refusal in the server's log is enough
        wait_until(lambda: "plaintext on a TLS-only port" in proc.log(), 20,
                   what="the plaintext client refused")
        assert not [e for e in client.events() if e.get("status") == 0]
        client.kill()
    finally:
        assert proc.terminate() == 0
