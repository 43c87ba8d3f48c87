"""A real `rmqstore serve` with its HTTP port (/metrics, the dashboard) on a free loopback port,
and helpers to read it: scrape() parses /metrics with prometheus-client's own parser."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from rmqstore.server.testing import ServeProcess, free_broker_port, free_port, wait_until

__all__ = ["ObsServer", "get_json", "run", "sample", "scrape", "wait_until"]


@dataclass
class ObsServer:
    proc: ServeProcess
    namesrv: str
    broker: str
    data: Path

    @property
    def url(self) -> str:
        url = self.proc.http_url
        assert url, self.proc.ready_line
        return url


def start_server(tmp: Path, *extra: str, metrics_port: int | None = 0) -> ObsServer:
    ns, bp = free_port(), free_broker_port()
    data = tmp / "data"
    proc = ServeProcess(["--data", str(data), "--namesrv-port", str(ns), "--broker-port",
                         str(bp), "--http-port", "0", *extra], tmp / "serve.log",
                        verbose=True, drop_env=("NAMESRV_ADDR",), metrics_port=metrics_port)
    proc.start()
    return ObsServer(proc, f"127.0.0.1:{ns}", f"127.0.0.1:{bp}", data)


@pytest.fixture(scope="module")
def obs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObsServer]:
    srv = start_server(tmp_path_factory.mktemp("obs"))
    try:
        yield srv
    finally:
        srv.proc.stop()


def run(coro, timeout_s: float = 60.0):
    """A test coroutine on a fresh loop, bounded."""
    async def bounded():
        async with asyncio.timeout(timeout_s):
            return await coro
    return asyncio.run(bounded())


def get(url: str, timeout_s: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as r:  # loopback only
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def get_json(url: str) -> dict:
    status, _, body = get(url)
    assert status == 200, (url, status, body[:300])
    return json.loads(body)


def scrape(base_url: str) -> dict:
    """name -> Metric family of one scrape, parsed by prometheus-client."""
    status, headers, body = get(base_url + "/metrics")
    assert status == 200, (status, body[:300])
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return {f.name: f for f in text_string_to_metric_families(body.decode())}


def sample(families: dict, name: str, **labels: str) -> float | None:
    """The value of the one sample called name (a family's own name, or with _total,
    _bucket, _count, _sum) whose labels include the given ones; None if there is none."""
    found = [s.value for fam in families.values() for s in fam.samples
             if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else None
