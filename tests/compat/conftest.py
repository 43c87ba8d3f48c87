"""Fixtures for the C++ client tests: `rmqstore serve` as real subprocesses on free loopback
ports, a small blocking admin client (what mqadmin would do), and the C++ client run as its own
process (cpp_client.py). Every wait is bounded; every process started here is ended in finally.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rmqstore.protocol import RequestCode
from rmqstore.server import testing

# the tests import these from here too
from rmqstore.server.testing import (  # noqa: F401
    call,
    create_topic,
    free_broker_port,
    free_port,
    max_offset,
    route,
    wait_until,
)
from tests.prerequisites import missing

HERE = Path(__file__).parent
CLIENT_SCRIPT = HERE / "cpp_client.py"
_names = itertools.count(1)  # unique file names of C++ client processes


@pytest.fixture(scope="session", autouse=True)
def cpp_client_installed() -> None:
    """Every test here runs the official C++ client, which the test extra installs on linux
    x86_64 only. Checked as a fixture, not at import, so that in CI its absence fails these
    tests rather than the whole collection."""
    if importlib.util.find_spec("rocketmq") is None:
        missing("the `rocketmq` package (C++ client) is not installed")


class ServeProcess(testing.ServeProcess):
    """`rmqstore -v serve ...` (INFO logging in the log file) with the small store."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        super().__init__(args, log_path, verbose=True)


def route_brokers(namesrv: str, topic: str) -> set[str]:
    data = route(namesrv, topic)
    return {q["brokerName"] for q in data["queueDatas"]} if data else set()


def consumer_ids(broker: str, group: str) -> list[str]:
    r = call(broker, RequestCode.GET_CONSUMER_LIST_BY_GROUP, {"consumerGroup": group})
    return json.loads(r.body)["consumerIdList"] if r.code == 0 else []


def committed_offset(broker: str, group: str, topic: str, queue_id: int) -> int | None:
    r = call(broker, RequestCode.QUERY_CONSUMER_OFFSET,
             {"consumerGroup": group, "topic": topic, "queueId": str(queue_id)})
    return int(r.ext_fields["offset"]) if r.code == 0 else None


# -- the C++ client, one process per scenario -------------------------------------------------
class CppClient:
    """cpp_client.py with a JSON spec; its stdout (JSON lines) goes to a file we follow."""

    def __init__(self, spec: dict, workdir: Path, env: dict[str, str]) -> None:
        self.name = f"{spec['cmd']}-{next(_names)}"
        self.out_path = workdir / f"{self.name}.out"
        self.err_path = workdir / f"{self.name}.err"
        self.stop_file = workdir / f"{self.name}.stop"
        self.go_file = workdir / f"{self.name}.go"
        self.spec = {"stop_file": str(self.stop_file), "go_file": str(self.go_file), **spec}
        spec_path = workdir / f"{self.name}.json"
        spec_path.write_text(json.dumps(self.spec))
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen([sys.executable, str(CLIENT_SCRIPT), str(spec_path)],
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         env=env, cwd=workdir)

    def events(self) -> list[dict]:
        text = self.out_path.read_text(errors="replace")
        return [json.loads(line) for line in text.splitlines() if line.endswith("}")]

    def messages(self) -> list[dict]:
        return [e["msg"] for e in self.events() if "msg" in e]

    def has(self, key: str) -> bool:
        return any(key in e for e in self.events())

    def wait_event(self, key: str, timeout_s: float) -> None:
        def seen() -> bool:
            if self.has(key):
                return True
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited ({self.proc.returncode}) before "
                                     f"{key!r}:\n{self.stderr()}")
            return False
        wait_until(seen, timeout_s, what=f"{self.name}: {key}")

    def go(self) -> None:
        self.go_file.touch()

    def stop(self, timeout_s: float = 20.0) -> list[dict]:
        """Ask a consumer to shut down cleanly (it persists its offsets) and wait for it."""
        self.stop_file.touch()
        return self.wait(timeout_s)

    def wait(self, timeout_s: float) -> list[dict]:
        try:
            rc = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} did not finish in {timeout_s} s:\n"
                                 f"{self.stderr()}") from None
        assert rc == 0, f"{self.name} exited with {rc}:\n{self.stderr()}"
        events = self.events()
        assert events and events[-1].get("done"), f"{self.name}: no 'done':\n{self.stderr()}"
        return events

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


CPP_LOG_LINES = 60  # of each C++ client's log, shown with a failed test


def cpp_client_logs(home: Path) -> str:
    """The last non-debug lines of every C++ client log under ``home``: why its sends failed
    (its own error for any failed try is only "No route info of this topic")."""
    parts = []
    for log in sorted(home.glob("logs/rocketmq-cpp/*.log*")):
        lines = [line for line in log.read_text(errors="replace").splitlines()
                 if "(debug)" not in line]
        parts.append(f"== {log.name}\n" + "\n".join(lines[-CPP_LOG_LINES:]))
    return "\n".join(parts)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    home = getattr(item, "cpp_home", None)
    if report.failed and home is not None:
        report.sections.append(("rocketmq-cpp logs", cpp_client_logs(home)))


@pytest.fixture
def cpp(tmp_path_factory: pytest.TempPathFactory,
        request: pytest.FixtureRequest) -> Iterator[Callable[..., CppClient]]:
    """cpp(cmd=..., **spec) starts a C++ client process; all are killed at teardown. A failed
    test shows the tail of each client's log."""
    workdir = tmp_path_factory.mktemp("cpp")
    home = workdir / "home"  # the client's logs and broadcasting offsets go under $HOME
    home.mkdir()
    request.node.cpp_home = home
    env = {**os.environ, "HOME": str(home)}
    env.pop("NAMESRV_ADDR", None)
    started: list[CppClient] = []

    def start(**spec: object) -> CppClient:
        client = CppClient(spec, workdir, env)
        started.append(client)
        return client

    try:
        yield start
    finally:
        for client in started:
            client.kill()


# -- one `rmqstore serve` (NameServer + Broker) for the single-broker scenarios --------------
class Single:
    def __init__(self, serve: ServeProcess, namesrv: str, broker: str, data: Path) -> None:
        self.serve = serve
        self.namesrv = namesrv
        self.broker = broker
        self.data = data

    def create_topic(self, topic: str, queues: int = 4) -> str:
        create_topic(self.broker, topic, queues)
        wait_until(lambda: route(self.namesrv, topic), 10, what=f"route of {topic}")
        return topic


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Single]:
    tmp = tmp_path_factory.mktemp("serve")
    ns_port, broker_port = free_port(), free_broker_port()
    serve = ServeProcess(["--data", str(tmp / "data"), "--namesrv-port", str(ns_port),
                          "--broker-port", str(broker_port), "--http-port", "0"],
                         tmp / "serve.log")
    try:
        serve.start()
        yield Single(serve, f"127.0.0.1:{ns_port}", f"127.0.0.1:{broker_port}", tmp / "data")
        assert serve.terminate() == 0, serve.log()[-4000:]
    finally:
        serve.kill()


# -- a cluster: one NameServer process and two Broker processes --------------------------------
class Cluster:
    def __init__(self, namesrv: str, brokers: dict[str, str],
                 processes: dict[str, ServeProcess]) -> None:
        self.namesrv = namesrv
        self.brokers = brokers  # brokerName -> address
        self.processes = processes  # "namesrv" / brokerName -> process

    def create_topic(self, topic: str, queues: int = 4) -> str:
        for addr in self.brokers.values():
            create_topic(addr, topic, queues)
        wait_until(lambda: route_brokers(self.namesrv, topic) == set(self.brokers), 10,
                   what=f"route of {topic} on every broker")
        return topic


BROKER_EXPIRY_S = 3.0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """`serve --role namesrv` (broker expiry 3 s) and two `serve --role broker` processes
    with their own broker.conf (brokerName, listenPort, a 1 s registration period)."""
    ns_port = free_port()
    namesrv = f"127.0.0.1:{ns_port}"
    processes: dict[str, ServeProcess] = {}
    brokers: dict[str, str] = {}
    try:
        processes["namesrv"] = ServeProcess(
            ["--role", "namesrv", "--namesrv-port", str(ns_port), "--http-port", "0",
             "--broker-expiry", str(BROKER_EXPIRY_S)], tmp_path / "namesrv.log").start()
        for name in ("broker-a", "broker-b"):
            port = free_broker_port()  # and its HA port, port + 1
            conf = tmp_path / f"{name}.conf"
            conf.write_text(f"brokerClusterName=DefaultCluster\nbrokerName={name}\nbrokerId=0\n"
                            f"namesrvAddr={namesrv}\nlistenPort={port}\nbrokerIP1=127.0.0.1\n"
                            f"flushDiskType=ASYNC_FLUSH\nregisterNameServerPeriod=1000\n")
            processes[name] = ServeProcess(
                ["--role", "broker", "-c", str(conf), "--data", str(tmp_path / name)],
                tmp_path / f"{name}.log").start()
            brokers[name] = f"127.0.0.1:{port}"
        yield Cluster(namesrv, brokers, processes)
        for name, proc in reversed(processes.items()):
            if proc.proc is not None and proc.proc.poll() is None:  # not killed by the test
                rc = proc.terminate()
                assert rc == 0, f"{name} exited with {rc}:\n{proc.log()[-4000:]}"
    finally:
        for proc in processes.values():
            proc.kill()
