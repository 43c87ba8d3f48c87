"""A connection's ReadFront (send_front.c): once a read of sends was answered whole, the
connection's next reads are served in C without the Python reader, until something that
reader would have seen changes. Each test arms a real connection over loopback, changes one
such thing and checks the next send is treated as the Python reader treats it: a listener on
a topic that entered the fast table through another connection hears it, an observer or a
request filter set later sees it, a pull held on its queue is woken by it, a connection whose
sends go through the front is not idle."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from rmqstore.net import RemotingClient
from rmqstore.net.connection import RemotingConnection
from rmqstore.protocol import RemotingCommand, ResponseCode
from rmqstore.server.broker.app import Broker
from rmqstore.server.broker.config import BrokerConfig
from rmqstore.server.broker.metrics.rpc import RpcLatency
from rmqstore.server.remoting_settings import parse_remoting

from .test_broker import pull_ext
from .test_send_read import _send
from .test_send_read_listeners import _create

Sender = Callable[[str, int], Awaitable[None]]


def _armed(broker: Broker) -> list[RemotingConnection]:
    return [c for c in broker._server._connections  # noqa: SLF001 - the test looks in
            if c.front is not None and c.front.armed]


async def _with_broker(root: Path, body: Callable[[Broker, Sender, Sender], Awaitable[None]],
                       **config: object) -> None:
    """body(broker, send_a, send_b): two producers, each on a connection of its own."""
    broker = Broker(BrokerConfig(listen_port=0, metrics_port=0, store_root=root / "store",
                                 broker_name="front", **config))  # type: ignore[arg-type]
    await broker.start()
    a, b = RemotingClient(), RemotingClient()
    n = 0

    def sender(client: RemotingClient) -> Sender:
        async def send(topic: str, queue_id: int) -> None:
            nonlocal n
            n += 1
            r = await client.invoke(broker.address, _send(n, topic, queue_id, props=""), 5)
            assert r.code == 0, r.remark
        return send

    try:
        for topic in ("T", "U"):
            await _create(a, broker.address, topic)
        send_a = sender(a)
        for queue_id in (0, 1, 0, 1):  # the queues opened, T admitted, a's front armed
            await send_a("T", queue_id)
        assert len(_armed(broker)) == 1
        await body(broker, send_a, sender(b))
    finally:
        await a.close()
        await b.close()
        await broker.stop()


def _run(root: Path, body: Callable[[Broker, Sender, Sender], Awaitable[None]],
         **config: object) -> None:
    asyncio.run(asyncio.wait_for(_with_broker(root, body, **config), 30))


async def _listener_on_a_topic_made_fast_elsewhere(broker: Broker, send_a: Sender,
                                                   send_b: Sender) -> None:
    told: list[str] = []
    broker.arrivals.listen("U", 0, lambda: told.append("U"))
    await send_a("T", 0)  # a new listener: a's reader looks again, and arms the front again
    assert len(_armed(broker)) == 1
    for queue_id in (0, 1, 0, 1):  # U enters the fast table through b's connection
        await send_b("U", queue_id)
    told.clear()
    await send_a("U", 0)  # a's front was armed before U was fast
    assert told == ["U"]


def test_a_listener_on_a_topic_another_connection_made_fast_hears_it(tmp_path: Path) -> None:
    _run(tmp_path, _listener_on_a_topic_made_fast_elsewhere)


async def _observer_set_later(broker: Broker, send_a: Sender, send_b: Sender) -> None:
    seen: list[int] = []
    broker.dispatcher.observer = lambda request, code, elapsed: seen.append(request.code)
    for queue_id in (0, 1, 0):
        await send_a("T", queue_id)
    assert seen == [310] * 3


def test_an_observer_set_later_is_told_of_each_send(tmp_path: Path) -> None:
    _run(tmp_path, _observer_set_later)


async def _filter_set_later(broker: Broker, send_a: Sender, send_b: Sender) -> None:
    filtered: list[int] = []

    def request_filter(request, peer):  # type: ignore[no-untyped-def]
        filtered.append(request.code)
        return None  # let it through

    broker.dispatcher.request_filter = request_filter
    for queue_id in (0, 1):
        await send_a("T", queue_id)
    assert filtered == [310, 310]
    assert not _armed(broker)


def test_a_request_filter_set_later_sees_each_send(tmp_path: Path) -> None:
    _run(tmp_path, _filter_set_later)


async def _pull_woken(broker: Broker, send_a: Sender, send_b: Sender) -> None:
    puller = RemotingClient()
    try:  # held up to 10 s on T's queue 1, which holds the two sends that armed a's front
        pull = asyncio.ensure_future(puller.invoke(broker.address, RemotingCommand.request(
            11, pull_ext("T", 1, 2, sys_flag=6, suspend_ms=10_000)), 15))
        await asyncio.sleep(0.3)
        assert not pull.done()
        started = asyncio.get_running_loop().time()
        await send_a("T", 1)
        woken = await asyncio.wait_for(pull, 3)  # not the hold's 10 s
        assert woken.code == 0 and asyncio.get_running_loop().time() - started < 3
    finally:
        await puller.close()


def test_a_pull_held_on_the_queue_is_woken_by_a_send_the_front_took(tmp_path: Path) -> None:
    _run(tmp_path, _pull_woken)


async def _busy_not_idle(broker: Broker, send_a: Sender, send_b: Sender) -> None:
    (conn,) = _armed(broker)
    for _ in range(12):  # 2.4 s of sends, the idle limit is 1 s
        await send_a("T", 0)
        await asyncio.sleep(0.2)
    assert _armed(broker) == [conn] and not conn.is_closed


def test_a_connection_whose_sends_the_front_serves_is_not_idle(tmp_path: Path) -> None:
    _run(tmp_path, _busy_not_idle,
         remoting=parse_remoting({"serverChannelMaxIdleTimeSeconds": "1"}))


async def _sync_master_front(root: Path) -> None:
    broker = Broker(BrokerConfig(listen_port=0, metrics_port=0, ha_listen_port=0,
                                 store_root=root / "store", broker_name="front",
                                 broker_role="SYNC_MASTER"))
    await broker.start()
    client = RemotingClient()

    async def send(n: int, queue_id: int) -> int:
        r = await client.invoke(broker.address, _send(n, "T", queue_id, props=""), 5)
        return r.code

    try:
        await _create(client, broker.address, "T")
        # the queues opened, T admitted (SendProcessor's answers), then serve's: the front armed
        codes = [await send(n, queue_id) for n, queue_id in enumerate((0, 1, 0, 1))]
        assert len(_armed(broker)) == 1
        rpc = RpcLatency()  # a broker's observer: the front counts its latencies at answer
        broker.dispatcher.observer = rpc
        codes += [await send(n, n % 2) for n in range(4, 10)]  # on_read's, then the front's
        assert len(_armed(broker)) == 1, "a held read disarmed the front"
        assert codes == [ResponseCode.SLAVE_NOT_AVAILABLE] * 10  # no slave: as SendProcessor
        # each within a second of its read's start (the front's clock is perf_counter's)
        counted = {labels[:2]: sum(b.counts[:b.bounds.index(1000.0) + 1])
                   for labels, b in rpc.series.items()}
        assert counted == {("send_message_v2", "slave_not_available"): 6}
    finally:
        await client.close()
        await broker.stop()


def test_a_sync_masters_front_hands_each_held_read_to_the_wait_for_a_slave(
        tmp_path: Path) -> None:
    """A SYNC_MASTER's connection is armed too: each read the front serves waits for a slave
    (none is linked here, so each send is answered SLAVE_NOT_AVAILABLE) and stays armed."""
    asyncio.run(asyncio.wait_for(_sync_master_front(tmp_path), 30))
