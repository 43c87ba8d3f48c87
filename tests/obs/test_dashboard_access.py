"""Who may use the broker's HTTP port. With aclEnable on, every dashboard call needs HTTP basic
credentials of an admin account of plain_acl.yml (no, a normal account's, or a wrong secret
get 401 and change nothing), while /metrics stays open; actions always need the X-Requested-By
header a page of another origin cannot send; a metricsExporterType the broker cannot honour
stops serve with one line."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest

from rmqstore.server.testing import free_broker_port, free_port
from tests.server.acl_files import ADMIN, NORMAL, WRONG
from tests.server.acl_serve import AclServe

from .conftest import get


@pytest.fixture(scope="module")
def acl_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AclServe]:
    srv = AclServe(tmp_path_factory.mktemp("obs-acl")).start()
    try:
        yield srv
    finally:
        srv.stop()


def _request(url: str, method: str = "GET", body: dict | None = None, credentials=None,
             csrf: bool = True) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if csrf:
        headers["X-Requested-By"] = "test"
    if credentials is not None:
        token = f"{credentials.access_key}:{credentials.secret_key}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(token).decode()
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def test_acl_on_the_dashboard_needs_admin_credentials(acl_server: AclServe) -> None:
    url = acl_server.proc.http_url
    assert url
    for who in (None, NORMAL, WRONG):
        status, body = _request(url + "/api/topics", credentials=who)
        assert status == 401 and "admin" in body["error"], (who, status, body)
        status, _ = _request(url + "/api/topics", "POST", {"topic": "AclDash"}, credentials=who)
        assert status == 401
    assert get(url + "/")[0] == 401  # the page itself too: the browser asks for credentials
    status, body = _request(url + "/api/topics", credentials=ADMIN)
    assert status == 200 and all(t["topic"] != "AclDash" for t in body["topics"])
    status, body = _request(url + "/api/topics", "POST", {"topic": "AclDash", "readQueues": 2},
                            credentials=ADMIN)
    assert status == 200, body
    status, body = _request(url + "/api/topics/AclDash", credentials=ADMIN)
    assert status == 200 and body["readQueues"] == 2
    assert get(url + "/metrics")[0] == 200  # scrapes need no credentials
    assert ADMIN.secret_key not in get(url + "/metrics")[2].decode()


def test_actions_need_the_csrf_header(tmp_path) -> None:
    from .conftest import start_server

    srv = start_server(tmp_path)
    try:
        status, body = _request(srv.url + "/api/topics", "POST", {"topic": "NoHeader"},
                                csrf=False)
        assert status == 403 and "X-Requested-By" in body["error"]
        assert _request(srv.url + "/api/topics/NoHeader")[0] == 404
        status, body = _request(srv.url + "/api/topics", "POST", {"topic": "Bad Name"})
        assert status == 400 and body["error"]
        assert _request(srv.url + "/api/topics", "POST", {"topic": "WithHeader"})[0] == 200
    finally:
        srv.proc.stop()


@pytest.mark.parametrize("line, reason", [
    ("metricsExporterType=OTLP_GRPC", "metricsExporterType must be PROM or DISABLE"),
    ("diskMaxUsedSpaceRatio=99", "diskMaxUsedSpaceRatio must be a percentage within [10, 95]"),
    ("diskSpaceWarningLevelRatio=1.5", "must be a ratio within (0, 1]"),
    ("metricsLabel=cluster:x", "metricsLabel wants name:value pairs"),
])
def test_settings_it_cannot_honour_stop_serve(tmp_path, line: str, reason: str) -> None:
    conf = tmp_path / "broker.conf"
    conf.write_text(line + "\n")
    ports = ["--namesrv-port", str(free_port()), "--broker-port", str(free_broker_port()),
             "--http-port", "0", "--metrics-port", "0"]  # were it to start, nothing in the way
    done = subprocess.run([sys.executable, "-m", "rmqstore.cli", "serve", "-c", str(conf),
                           "--data", str(tmp_path / "data"), *ports], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0
    assert reason in done.stderr, done.stderr
