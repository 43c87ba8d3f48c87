"""The broker's HTTP port has limits, from broker.conf: past httpMaxConnections a connection is
answered 503 and closed, and the refusals are logged once, not once each; a connection that
holds no request in progress for httpHeaderTimeoutMillis (sends nothing, or dribbles its
headers) is closed, while /metrics keeps answering; a limit that does not read stops serve
with one line."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from rmqstore.server.testing import free_broker_port, free_port

from .conftest import ObsServer, start_server

pytestmark = pytest.mark.timeout(120)
CAP, TIMEOUT_MS = 3, 1_000


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObsServer]:
    tmp = tmp_path_factory.mktemp("limits")
    conf = tmp / "broker.conf"
    conf.write_text(f"httpMaxConnections={CAP}\nhttpHeaderTimeoutMillis={TIMEOUT_MS}\n")
    srv = start_server(tmp, "-c", str(conf), "--host", "127.0.0.1")
    try:
        yield srv
    finally:
        srv.proc.stop()


def connect(srv: ObsServer) -> socket.socket:
    parts = urlsplit(srv.url)
    s = socket.create_connection((parts.hostname, parts.port), timeout=10)
    return s


def closed_by_server(s: socket.socket, within_s: float) -> bool:
    """True if the server closes ``s`` (EOF) within ``within_s``, whatever it wrote first."""
    s.settimeout(within_s)
    try:
        while s.recv(4096):
            pass
        return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def scrape(srv: ObsServer) -> int:
    with urllib.request.urlopen(f"{srv.url}/metrics", timeout=10) as r:
        return r.status


def scrape_once_freed(srv: ObsServer, within_s: float = 5.0) -> int:
    """scrape() once the server let go of the connections closed just now: a client sees the
    close before the server's loop has run the handler's connection_lost (uvloop), and until then
    the slot still counts against the cap (a 503 with Retry-After)."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            return scrape(srv)
        except urllib.error.HTTPError as e:
            if e.code != 503 or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def cap_warnings(srv: ObsServer) -> int:
    return srv.proc.log_path.read_text().count("refusing connections")


def test_past_the_cap_a_connection_is_refused_and_logged_once(limited: ObsServer) -> None:
    held = [connect(limited) for _ in range(CAP)]
    try:
        time.sleep(0.2)  # all accepted by the server's loop
        for _ in range(3):
            extra = connect(limited)
            extra.settimeout(10)
            assert extra.recv(64).startswith(b"HTTP/1.1 503 Service Unavailable")
            extra.close()
        assert cap_warnings(limited) == 1
    finally:
        for s in held:
            s.close()
    assert scrape_once_freed(limited) == 200  # below the cap again
    assert "3 connection(s) were refused" in limited.proc.log_path.read_text()


def test_a_connection_without_a_request_in_progress_is_closed(limited: ObsServer) -> None:
    silent = connect(limited)
    slow = connect(limited)
    slow.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
    idle = connect(limited)
    idle.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")  # one answer, then keep-alive
    started = time.monotonic()
    try:
        for s in (silent, slow, idle):
            assert closed_by_server(s, TIMEOUT_MS / 1000 * 3 + 2)
        assert time.monotonic() - started >= TIMEOUT_MS / 1000 * 0.9
    finally:
        for s in (silent, slow, idle):
            s.close()
    assert scrape_once_freed(limited) == 200


@pytest.mark.parametrize("line, expected", [
    ("httpMaxConnections=0", "httpMaxConnections='0': expected an integer within [1, 65536]"),
    ("httpHeaderTimeoutMillis=soon", "httpHeaderTimeoutMillis='soon': expected an integer"),
])
def test_a_limit_that_does_not_read_is_one_line(tmp_path: Path, line: str,
                                                 expected: str) -> None:
    conf = tmp_path / "broker.conf"
    conf.write_text(line + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "rmqstore.cli", "serve", "-c", str(conf), "--data",
         str(tmp_path / "data"), "--namesrv-port", str(free_port()), "--broker-port",
         str(free_broker_port()), "--http-port", "0"],
        capture_output=True, text=True, timeout=60)
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0 and len(lines) == 1, done.stderr
    assert expected in lines[0]
