"""A listener on a queue (ArrivalWaiters.listen, as the timer and the delay levels keep on their
system topics) is told of every send that queue stores, also when the send is answered by its
read (SendPath.serve): whether the topic entered the fast table before the listener came or
after. serve notes its sends only while someone watches a queue it may put to (the broker's
own listeners watch topics no producer may send to), so this asks both orders."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rmqstore.net import RemotingClient
from rmqstore.protocol import RemotingCommand, RequestCode
from rmqstore.server.broker.app import Broker
from rmqstore.server.broker.config import BrokerConfig

from .test_send_read import _send


async def _create(client: RemotingClient, address: str, topic: str) -> None:
    r = await client.invoke(address, RemotingCommand.request(
        RequestCode.UPDATE_AND_CREATE_TOPIC, {
            "topic": topic, "defaultTopic": "TBW102", "readQueueNums": "2",
            "writeQueueNums": "2", "perm": "6", "topicFilterType": "SINGLE_TAG"}), 5)
    assert r.code == 0, r.remark


async def _listeners_told(root: Path) -> None:
    broker = Broker(BrokerConfig(listen_port=0, metrics_port=0, store_root=root / "store",
                                 broker_name="listeners"))
    await broker.start()
    client = RemotingClient()
    told: list[tuple[str, int]] = []
    n = 0

    async def send(topic: str, queue_id: int) -> None:
        nonlocal n
        n += 1
        r = await client.invoke(broker.address, _send(n, topic, queue_id, props=""), 5)
        assert r.code == 0, r.remark

    try:
        native = broker.dispatcher.read_handler.__self__  # NativeSend.on_read's
        # "U" is listened to before it enters the fast table
        broker.arrivals.listen("U", 1, lambda: told.append(("U", 1)))
        for topic in ("T", "U"):  # (a topic created or updated empties the fast table)
            await _create(client, broker.address, topic)
        served = native.served
        for topic in ("T", "U"):
            for queue_id in (0, 1, 0, 1):  # each queue opened, the topic admitted
                await send(topic, queue_id)
        assert native.served - served == 2  # U's second send to queue 1 among them
        assert told == [("U", 1)] * 2
        # "T" alone is fast again (U updated), then a listener comes for one of its queues
        await _create(client, broker.address, "U")
        for _ in range(2):
            await send("T", 0)
        broker.arrivals.listen("T", 0, lambda: told.append(("T", 0)))
        told.clear()
        served = native.served
        for queue_id in (0, 1, 0):
            await send("T", queue_id)
        assert native.served - served == 3  # each answered by its read
        assert told == [("T", 0)] * 2
    finally:
        await client.close()
        await broker.stop()


def test_a_listener_hears_every_send_a_read_answers(tmp_path: Path) -> None:
    asyncio.run(asyncio.wait_for(_listeners_told(tmp_path), 30))
