"""`rmqstore serve` as a real subprocess on free loopback ports, with a tmp data dir.

``server`` is one NameServer+Broker process per test module. ``split_server`` runs the NameServer
and the Broker as two processes so the broker can be SIGKILLed and restarted alone.
Every wait is bounded.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# Small store files: a default store reserves a 1 GiB segment (and pre-makes the next) and a
# 420 MB index file per broker, which adds up to gigabytes of disk across a test run.
SMALL_STORE = ["--store", "commitlog_segment_bytes=16777216", "--store", "consumequeue_units=30000",
               "--store", "index_slots=40000", "--store", "index_entries=160000"]
READY_PREFIX = "rmqstore serve:"
START_TIMEOUT_S = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_broker_port() -> int:
    """A port p with p+1 free too (the broker's HA port defaults to listen + 1)."""
    for _ in range(50):
        p = free_port()
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", p + 1))
            return p
        except OSError:
            continue
    raise RuntimeError("no free port pair")


class ServeProcess:
    """One `rmqstore serve` child; ``start`` waits for its ready line on stderr."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.args = args
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = dict(os.environ)
        env.pop("NAMESRV_ADDR", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rmqstore.cli", "serve", *self.args, *SMALL_STORE],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        ready = threading.Event()
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed by the pump thread

        def pump() -> None:
            assert self.proc is not None and self.proc.stderr is not None
            for line in self.proc.stderr:
                log.write(line)
                log.flush()
                if line.decode(errors="replace").startswith(READY_PREFIX):
                    ready.set()
            log.close()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(START_TIMEOUT_S):
            self.kill()
            raise RuntimeError(f"rmqstore serve {self.args} not ready; log: "
                               f"{self.log_path.read_text(errors='replace')[-2000:]}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class Server:
    """Addresses of a running NameServer + Broker."""

    def __init__(self, tmp: Path, split: bool) -> None:
        self.ns_port = free_port()
        self.broker_port = free_broker_port()
        self.data = tmp / "data"
        self.namesrv = f"127.0.0.1:{self.ns_port}"
        self.broker_addr = f"127.0.0.1:{self.broker_port}"
        common = ["--namesrv-port", str(self.ns_port), "--http-port", "0"]
        broker = ["--broker-port", str(self.broker_port), "--data", str(self.data)]
        if split:
            self.ns_proc: ServeProcess | None = ServeProcess(
                ["--role", "namesrv", *common, "--data", str(tmp / "ns")], tmp / "namesrv.log")
            self.broker_proc = ServeProcess(
                ["--role", "broker", *common, *broker, "--namesrv-addr", self.namesrv],
                tmp / "broker.log")
        else:
            self.ns_proc = None
            self.broker_proc = ServeProcess(common + broker, tmp / "serve.log")

    def start(self) -> None:
        if self.ns_proc is not None:
            self.ns_proc.start()
        self.broker_proc.start()
        self.wait_registered()

    def wait_registered(self, timeout_s: float = 10.0) -> None:
        """Until the NameServer serves TBW102 (the ready line may precede the registration)."""
        import asyncio

        from rmqstore.client.errors import ClientError
        from rmqstore.client.routes import RouteCache
        from rmqstore.client.transport import Transport

        async def poll() -> None:
            t = Transport(self.namesrv, None)
            try:
                async with asyncio.timeout(timeout_s):
                    while True:
                        try:
                            route = await RouteCache(t).fetch("TBW102")
                            if any(self.broker_addr in b.broker_addrs.values()
                                   for b in route.broker_datas):
                                return
                        except (ClientError, OSError):
                            pass
                        await asyncio.sleep(0.05)
            finally:
                await t.close()
        asyncio.run(poll())

    def stop(self) -> None:
        self.broker_proc.stop()
        if self.ns_proc is not None:
            self.ns_proc.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("serve"), split=False)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture()
def split_server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path, split=True)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


_topics = iter(range(1, 1 << 30))


@pytest.fixture()
def topic(request: pytest.FixtureRequest) -> str:
    """A topic name unique to the test."""
    return f"T_{request.node.name[:40].replace('[', '_').replace(']', '')}_{next(_topics)}_{int(time.time())}"


def run(coro, timeout_s: float = 60.0):
    """Run a test coroutine on a fresh loop with an overall bound."""
    import asyncio

    async def bounded():
        async with asyncio.timeout(timeout_s):
            return await coro
    return asyncio.run(bounded())


async def wait_until(pred, timeout_s: float = 15.0, interval_s: float = 0.05) -> None:
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not pred():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s")
        await asyncio.sleep(interval_s)
