"""Where a client finds its NameServers, in Java's order: the code argument, the
``rocketmq.namesrv.addr`` system property (client/properties.py, RMQSTORE_CLIENT_OPTS), the
NAMESRV_ADDR environment variable, then the HTTP endpoint whose domain and subgroup the
``rocketmq.namesrv.domain(.subgroup)`` properties override. HTTP against a tiny loopback server."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Self

import pytest

from rmqstore.client import Message, NameServerUnavailable, Producer, SendStatus, system_properties
from rmqstore.client.properties import (
    NAMESRV_ADDR,
    NAMESRV_DOMAIN,
    NAMESRV_DOMAIN_SUBGROUP,
    SystemProperties,
    parse_opts,
)
from rmqstore.client.transport import Transport

from .conftest import free_port, run


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch) -> None:
    """No lookup source from the developer's shell leaks in; properties restored after."""
    for env in ("NAMESRV_ADDR", "ROCKETMQ_NAMESRV_DOMAIN"):
        monkeypatch.delenv(env, raising=False)
    for key in (NAMESRV_ADDR, NAMESRV_DOMAIN, NAMESRV_DOMAIN_SUBGROUP):
        if key in system_properties:
            monkeypatch.delitem(system_properties, key)


async def resolve(namesrv: str | None = None, domain: str | None = None) -> list[str]:
    t = Transport(namesrv, None, namesrv_domain=domain)
    try:
        return await t.resolve_namesrv()
    finally:
        await t.close()


class NsAddrServer:
    """Answers every GET with ``body`` and records the request lines."""

    def __init__(self, body: str) -> None:
        self.body = body.encode()
        self.requests: list[bytes] = []
        self.port = free_port()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.requests.append(head.split(b"\r\n", 1)[0])
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(self.body), self.body))
        await writer.drain()
        writer.close()

    async def __aenter__(self) -> Self:
        self._srv = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._srv.close()
        await self._srv.wait_closed()


def test_parse_opts_reads_only_d_words() -> None:
    opts = parse_opts("-Xmx1g -Drocketmq.namesrv.addr=h1:9876;h2:9876 -Dflag "
                      "'-Dspaced=a b' -D -D=x -Dk=v=w")
    assert opts == {"rocketmq.namesrv.addr": "h1:9876;h2:9876", "flag": "", "spaced": "a b",
                    "k": "v=w"}
    # An unbalanced quote falls back to plain words: the quoted word is not a -D word.
    assert parse_opts("-Da=1 '-Db=2") == {"a": "1"}
    assert parse_opts("") == {}


def test_properties_are_str_to_str() -> None:
    props = SystemProperties({"a": "1"})
    props["b"] = "2"
    assert dict(props) == {"a": "1", "b": "2"}
    with pytest.raises(TypeError):
        props["port"] = 9876  # type: ignore[assignment]
    with pytest.raises(TypeError):
        SystemProperties({"x": None})  # type: ignore[dict-item]
    props["empty"] = ""
    assert props.value("empty") is None and props.value("missing") is None
    assert props.value("a") == "1"


def test_opts_env_fills_properties_at_import() -> None:
    env = dict(os.environ, RMQSTORE_CLIENT_OPTS="-Xss1m -Drocketmq.namesrv.addr=10.0.0.7:9876")
    code = "from rmqstore.client import system_properties as p; print(dict(p))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.strip() == "{'rocketmq.namesrv.addr': '10.0.0.7:9876'}"


def test_order_code_then_property_then_env(monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> None:
        monkeypatch.setenv("NAMESRV_ADDR", "env:1")
        monkeypatch.setitem(system_properties, NAMESRV_ADDR, "prop:1;prop:2")
        assert await resolve("code:1") == ["code:1"]
        assert await resolve() == ["prop:1", "prop:2"]
        monkeypatch.setitem(system_properties, NAMESRV_ADDR, "")  # empty counts as unset
        assert await resolve() == ["env:1"]
        monkeypatch.delitem(system_properties, NAMESRV_ADDR)
        assert await resolve() == ["env:1"]
    run(main())


def test_http_endpoint_last_with_property_domain_and_subgroup(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> None:
        async with NsAddrServer("10.1.1.1:9876;10.1.1.2:9876\n") as http:
            here = f"127.0.0.1:{http.port}"
            monkeypatch.setenv("ROCKETMQ_NAMESRV_DOMAIN", "127.0.0.1:1")  # property beats it
            monkeypatch.setitem(system_properties, NAMESRV_DOMAIN, here)
            monkeypatch.setitem(system_properties, NAMESRV_DOMAIN_SUBGROUP, "nsaddr-unit7")
            assert await resolve() == ["10.1.1.1:9876", "10.1.1.2:9876"]
            assert http.requests == [b"GET /rocketmq/nsaddr-unit7 HTTP/1.0"]
            # namesrv_domain= in code beats the property; default subgroup without the property
            monkeypatch.setitem(system_properties, NAMESRV_DOMAIN, "127.0.0.1:1")
            monkeypatch.delitem(system_properties, NAMESRV_DOMAIN_SUBGROUP)
            assert await resolve(domain=here) == ["10.1.1.1:9876", "10.1.1.2:9876"]
            assert http.requests[-1] == b"GET /rocketmq/nsaddr HTTP/1.0"
            # any listed address wins over HTTP: the endpoint is not asked
            monkeypatch.setenv("NAMESRV_ADDR", "env:1")
            assert await resolve(domain=here) == ["env:1"]
            assert len(http.requests) == 2
    run(main())


def test_no_source_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> None:
        dead = f"127.0.0.1:{free_port()}"  # nothing listens: the HTTP lookup fails fast
        monkeypatch.setitem(system_properties, NAMESRV_DOMAIN, dead)
        with pytest.raises(NameServerUnavailable, match="rocketmq.namesrv.addr"):
            await resolve()
    run(main())


def test_producer_finds_the_server_by_property(server, topic, monkeypatch) -> None:
    async def main() -> None:
        monkeypatch.setitem(system_properties, NAMESRV_ADDR, server.namesrv)
        async with Producer("PG_prop") as p:
            assert (await p.send(Message(topic, b"by property"))).status is SendStatus.SEND_OK
    run(main())
