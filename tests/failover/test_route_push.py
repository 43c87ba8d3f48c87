"""The NameServer in controller mode: a newer master epoch (stateVersion) keeps a broker id, and
our client hears of a master change at once (NOTIFY_ROUTE_CHANGED on its own connection)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from rmqstore.client.routes import RouteCache
from rmqstore.client.transport import Transport
from rmqstore.protocol.register_body import RegisterBrokerBody
from rmqstore.protocol.topic_config import DataVersion, TopicConfig
from rmqstore.server.namesrv import NameServer, NamesrvConfig, RouteInfoManager


def body(state_version: int) -> RegisterBrokerBody:
    return RegisterBrokerBody(DataVersion(1, state_version, state_version),
                              {"T": TopicConfig("T", 2, 2)}, [])


def test_a_newer_epoch_keeps_broker_id_zero() -> None:
    routes = RouteInfoManager()
    changed: list[str] = []
    routes.on_master_changed = changed.append
    routes.register_broker("c", "h:1", "b", 0, "h:2", body(3))
    assert changed == ["b"]
    # the deposed master (epoch 2) registers as master again: refused
    routes.register_broker("c", "h:9", "b", 0, "h:10", body(2))
    assert routes.broker_addr_table["b"].broker_addrs == {0: "h:1"}
    assert "h:9" not in routes.broker_live_table
    # the rightful next master (epoch 4) takes it; the old one registers as a slave
    routes.register_broker("c", "h:9", "b", 0, "h:10", body(4))
    routes.register_broker("c", "h:1", "b", 1, "h:2", body(4))
    assert routes.broker_addr_table["b"].broker_addrs == {0: "h:9", 1: "h:1"}
    assert changed == ["b", "b"]


def run(test: Callable[[], Awaitable[None]], timeout_s: float = 20) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(timeout_s):
            await test()
    asyncio.run(bounded())


def test_our_client_is_told_at_once_and_moves() -> None:
    async def main() -> None:
        async with NameServer(NamesrvConfig(port=0, http_port=None)) as ns:
            ns.routes.register_broker("c", "h:1", "b", 0, "h:2", body(1))
            transport = Transport("%s:%d" % ns.address, None)
            try:
                cache = RouteCache(transport)
                await cache.update("T")
                assert cache.broker_addr("b") == "h:1"
                ns.routes.register_broker("c", "h:5", "b", 0, "h:6", body(2))  # failover
                async with asyncio.timeout(3):
                    while cache.broker_addr("b") != "h:5":
                        await asyncio.sleep(0.01)
            finally:
                await transport.close()
    run(main)


def test_the_route_is_fetched_from_the_nameserver_that_pushed() -> None:
    """The NameServer the client sticks to went silent (cut off with the deposed master): the
    new route comes from the one that pushed, not after a 3 s timeout on the silent one."""
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # reads every request, answers none
        writer.close()

    async def main() -> None:
        cut_off = await asyncio.start_server(silent, "127.0.0.1", 0)
        cut_off_addr = "127.0.0.1:%d" % cut_off.sockets[0].getsockname()[1]
        async with cut_off, NameServer(NamesrvConfig(port=0, http_port=None)) as ns:
            ns.routes.register_broker("c", "h:1", "b", 0, "h:2", body(1))
            pushing = "%s:%d" % ns.address
            transport = Transport(f"{pushing};{cut_off_addr}", None)
            try:
                cache = RouteCache(transport)
                transport.prefer_namesrv(pushing)
                await cache.update("T")  # from the pushing one, which subscribes us
                transport.prefer_namesrv(cut_off_addr)  # then stuck to the silent one
                loop = asyncio.get_running_loop()
                started = loop.time()
                ns.routes.register_broker("c", "h:5", "b", 0, "h:6", body(2))  # failover
                async with asyncio.timeout(5):
                    while cache.broker_addr("b") != "h:5":
                        await asyncio.sleep(0.01)
                assert loop.time() - started < 1.5  # a route fetch times out after 3 s
            finally:
                await transport.close()
    run(main)


def test_a_pinned_send_that_timed_out_fetches_the_route_again() -> None:
    """The master went silent (cut off) and no push came (the NameServers that have the
    client's subscription are restarted or cut off too): the send's timeout leaves no time to
    send again, but the route is fetched again for the next send, not at the 30 s refresh."""
    from rmqstore.client import Message, MessageQueue, Producer

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    async def main() -> None:
        cut_off = await asyncio.start_server(silent, "127.0.0.1", 0)
        deposed = "127.0.0.1:%d" % cut_off.sockets[0].getsockname()[1]
        async with cut_off, NameServer(NamesrvConfig(port=0, http_port=None)) as ns:
            ns.routes.register_broker("c", deposed, "b", 0, "h:2", body(1))
            producer = Producer("pg", namesrv="%s:%d" % ns.address, send_timeout_s=0.5)
            await producer.start()
            try:
                sending = asyncio.ensure_future(producer.send(
                    Message("T", b"x"), queue=MessageQueue("T", "b", 0)))
                await asyncio.sleep(0.2)
                ns.routes.on_master_changed = lambda name: None  # no push
                ns.routes.register_broker("c", "h:5", "b", 0, "h:6", body(2))  # failover
                try:
                    await sending
                except Exception:  # noqa: BLE001 - timed out, as it must
                    pass
                else:
                    raise AssertionError("a send to a silent broker succeeded")
                async with asyncio.timeout(2):
                    while producer.routes.broker_addr("b") != "h:5":
                        await asyncio.sleep(0.02)
            finally:
                await producer.close()
    run(main)
