"""A NameServer (a real `rmqstore serve --role namesrv` process) SIGKILLed and restarted forgets
the client's route-change subscription with the connection it was on; the client asks again
as soon as that connection is lost (client/route_push.py), so the next master change is
pushed to it within seconds, not after the 30 s subscription renewal."""

from __future__ import annotations

import asyncio
import time

from rmqstore.client.routes import RouteCache
from rmqstore.client.transport import Transport
from rmqstore.net import RemotingClient
from rmqstore.protocol import RemotingCommand, RequestCode, ResponseCode
from rmqstore.protocol.header_codec import encode_header
from rmqstore.protocol.headers import RegisterBrokerRequestHeader
from rmqstore.protocol.register_body import RegisterBrokerBody, encode_register_body
from rmqstore.protocol.topic_config import DataVersion, TopicConfig
from rmqstore.server.testing import ServeProcess, free_port

BROKER = "b"
OLD, NEW = "127.0.0.1:1", "127.0.0.1:5"  # the masters' addresses (nothing listens there)


async def register(broker: RemotingClient, namesrv: str, master: str,
                   state_version: int) -> None:
    """A master of BROKER registering, as a broker's REGISTER_BROKER does (on a connection it
    keeps: the NameServer forgets a broker whose connection closed)."""
    header = encode_header(RegisterBrokerRequestHeader(
        broker_name=BROKER, broker_addr=master, cluster_name="c", ha_server_addr=master,
        broker_id=0))
    body = encode_register_body(RegisterBrokerBody(
        DataVersion(1, state_version, state_version), {"T": TopicConfig("T", 2, 2)}, []))
    request = RemotingCommand.request(RequestCode.REGISTER_BROKER, header, body)
    answer = await broker.invoke(namesrv, request, 5.0)
    assert answer.code == ResponseCode.SUCCESS, answer.remark


async def until(predicate, timeout_s: float) -> float:  # noqa: ANN001
    """Seconds until ``predicate()`` held; AssertionError after timeout_s."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"not within {timeout_s} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


def test_a_restarted_nameserver_pushes_the_next_master_change(tmp_path) -> None:
    port = free_port()
    namesrv = f"127.0.0.1:{port}"
    ns = ServeProcess(["--role", "namesrv", "--namesrv-port", str(port), "--http-port", "0",
                       "--data", str(tmp_path / "ns")], tmp_path / "namesrv.log",
                      drop_env=("NAMESRV_ADDR",))
    ns.start()

    async def main() -> None:
        broker = RemotingClient()
        await register(broker, namesrv, OLD, 1)
        transport = Transport(namesrv, None)
        try:
            cache = RouteCache(transport)
            await cache.update("T")  # subscribes (in the background)
            assert cache.broker_addr(BROKER) == OLD
            await asyncio.sleep(0.5)
            await asyncio.to_thread(ns.kill)
            await asyncio.to_thread(ns.start)
            await register(broker, namesrv, OLD, 1)  # the broker registers again
            await asyncio.sleep(2.0)  # the subscription is back within ~0.5 s of the start
            await register(broker, namesrv, NEW, 2)  # a failover: pushed to subscribers
            took = await until(lambda: cache.broker_addr(BROKER) == NEW, 5.0)
            assert took < 1.0, took
        finally:
            await transport.close()
            await broker.close()
    try:
        asyncio.run(asyncio.wait_for(main(), 40))
    finally:
        ns.stop()
