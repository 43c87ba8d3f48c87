"""`rmqstore serve` started with a broker.conf written by the test (limits, TLS), on free loopback
ports, and raw blocking sockets to poke at it. Every process started here is stopped in the
fixture's finally; every wait is bounded."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rmqstore.protocol import FrameDecoder, RemotingCommand, encode
from rmqstore.server.testing import (
    SMALL_STORE_ARGS,
    ServeError,
    ServeProcess,
    free_broker_port,
    free_port,
)


@dataclass
class Served:
    proc: ServeProcess
    broker: str  # host:port
    namesrv: str

    @property
    def broker_address(self) -> tuple[str, int]:
        host, port = self.broker.rsplit(":", 1)
        return host, int(port)

    @property
    def namesrv_address(self) -> tuple[str, int]:
        host, port = self.namesrv.rsplit(":", 1)
        return host, int(port)

    def rss_bytes(self) -> int:
        """The serve process's resident set (VmRSS)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS line")


ServeFactory = Callable[..., Served]


@pytest.fixture()
def serve(tmp_path: Path) -> Iterator[ServeFactory]:
    """serve(broker_conf_text, *extra_args) -> Served; stopped at the end of the test."""
    started: list[ServeProcess] = []

    def start(broker_conf: str = "", *extra: str,
              store_args: tuple[str, ...] = SMALL_STORE_ARGS) -> Served:
        n = len(started)
        conf = tmp_path / f"broker{n}.conf"
        conf.write_text(f"brokerName=broker-t{n}\n{broker_conf}")
        ns, bp = free_port(), free_broker_port()
        proc = ServeProcess(["-c", str(conf), "--namesrv-port", str(ns), "--broker-port",
                             str(bp), "--http-port", "0", "--data", str(tmp_path / f"data{n}"),
                             *extra], tmp_path / f"serve{n}.log", verbose=True,
                            drop_env=("NAMESRV_ADDR",), store_args=store_args)
        started.append(proc)
        proc.start()
        return Served(proc, f"127.0.0.1:{bp}", f"127.0.0.1:{ns}")

    try:
        yield start
    finally:
        # a prompt, clean shutdown is part of every test: ServeError if SIGTERM is not enough
        hung = []
        for proc in started:
            try:
                proc.terminate()
            except ServeError as exc:  # killed by terminate; the others still get stopped
                hung.append(exc)
        if hung:
            raise hung[0]


def connect(address: tuple[str, int], timeout_s: float = 3.0) -> socket.socket:
    sock = socket.create_connection(address, timeout=timeout_s)
    sock.settimeout(timeout_s)
    return sock


def request(sock: socket.socket, cmd: RemotingCommand) -> RemotingCommand | None:
    """Send ``cmd`` and read its response; None if the server closes the connection first."""
    try:
        sock.sendall(encode(cmd))
    except OSError:
        return None
    decoder = FrameDecoder()
    while True:
        try:
            data = sock.recv(65536)
        except (ConnectionError, TimeoutError):
            return None
        if not data:
            return None
        for got in decoder.feed(data):
            if got.opaque == cmd.opaque:
                return got


def closed_within(sock: socket.socket, timeout_s: float) -> float | None:
    """Seconds until the server closed ``sock`` (reading and dropping what it sends), or None
    if it is still open after ``timeout_s``."""
    start = time.monotonic()
    while (left := timeout_s - (time.monotonic() - start)) > 0:
        sock.settimeout(left)
        try:
            if not sock.recv(65536):
                return time.monotonic() - start
        except (ConnectionError, OSError) as exc:
            if isinstance(exc, TimeoutError):
                return None
            return time.monotonic() - start
    return None
