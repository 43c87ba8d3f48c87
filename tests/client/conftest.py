"""`rmqstore serve` as a real subprocess on free loopback ports, with a tmp data dir.

``server`` is one NameServer+Broker process per test module. ``split_server`` runs the NameServer
and the Broker as two processes so the broker can be SIGKILLed and restarted alone.
Every wait is bounded.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# free_port: the tests import it from here too
from rmqstore.server.testing import ServeProcess, free_broker_port, free_port


def _serve(args: list[str], log_path: Path) -> ServeProcess:
    # our client would read NAMESRV_ADDR from a developer's shell; the server must not see it
    return ServeProcess(args, log_path, drop_env=("NAMESRV_ADDR",))


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
            self.ns_proc: ServeProcess | None = _serve(
                ["--role", "namesrv", *common, "--data", str(tmp / "ns")], tmp / "namesrv.log")
            self.broker_proc = _serve(
                ["--role", "broker", *common, *broker, "--namesrv-addr", self.namesrv],
                tmp / "broker.log")
        else:
            self.ns_proc = None
            self.broker_proc = _serve(common + broker, tmp / "serve.log")

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
    name = request.node.name[:40].replace("[", "_").replace("]", "")
    return f"T_{name}_{next(_topics)}_{int(time.time())}"


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
