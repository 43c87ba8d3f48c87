"""Reading from the slave with our client: a push consumer keeps consuming from the slave
after its master is SIGKILLed (committing its offsets there), and carries on with the master
when it is back, with nothing it acknowledged consumed twice."""

from __future__ import annotations

import asyncio
import time

from rmqstore.client import ConsumeStatus, Message, Producer, PushConsumer
from rmqstore.client.producer import SendStatus
from rmqstore.protocol import RequestCode
from rmqstore.server.testing import call, route
from tests.client.conftest import run, wait_until

TOPIC = "ReadT"
READABLE = "slaveReadEnable=true\n"


def committed(broker: str, group: str, queue_id: int) -> int:
    r = call(broker, RequestCode.QUERY_CONSUMER_OFFSET, {
        "consumerGroup": group, "topic": TOPIC, "queueId": str(queue_id)})
    return int(r.ext_fields["offset"]) if r.code == 0 else -1


def brokers_routed(namesrv: str) -> set[int]:
    data = route(namesrv, TOPIC)
    return {int(i) for b in data["brokerDatas"] for i in b["brokerAddrs"]} if data else set()


async def send(namesrv: str, bodies: list[bytes]) -> None:
    async with Producer("PG_read", namesrv=namesrv) as p:
        for body in bodies:
            r = await p.send(Message(TOPIC, body))
            assert r.status in (SendStatus.SEND_OK, SendStatus.SLAVE_NOT_AVAILABLE)


def test_consumers_read_from_the_slave_while_the_master_is_away(ha_pair) -> None:
    pair = ha_pair(role="SYNC_MASTER", common_conf=READABLE, topics={TOPIC: 2})
    first = [b"before %d" % i for i in range(200)]
    later = [b"after %d" % i for i in range(100)]
    consumed: list[bytes] = []
    when: list[float] = []

    async def main() -> None:
        await send(pair.namesrv, first)
        consumer = PushConsumer("CG_read", namesrv=pair.namesrv, consume_concurrency=1,
                                pull_batch_size=4, pull_threshold_for_queue=4,
                                persist_interval_s=0.5, heartbeat_s=2,
                                route_refresh_s=2)
        consumer.subscribe(TOPIC)

        async def listener(msgs):
            await asyncio.sleep(0.01)  # slow enough to be mid-way when the master dies
            consumed.extend(m.body for m in msgs)
            when.extend(time.monotonic() for _ in msgs)
            return ConsumeStatus.SUCCESS

        consumer.on_message(listener)
        async with consumer:
            await wait_until(lambda: len(consumed) >= 40)
            pair.master_proc.kill()
            killed = time.monotonic()
            left = len(consumed)
            await wait_until(lambda: len(consumed) >= len(first), 30)
            # the first message after the kill came from the slave within 5 s (H1.5)
            resumed = next(t for t in when[left:] if t > killed)
            assert resumed - killed < 5.0, resumed - killed
            # offsets went to the slave meanwhile
            await wait_until(lambda: sum(committed(pair.slave, "CG_read", q)
                                         for q in range(2)) == len(first), 10)
            await asyncio.get_running_loop().run_in_executor(None, pair.restart_master)
            await wait_until(lambda: 0 in brokers_routed(pair.namesrv), 10)
            # back on the master, the consumer first gives it the offsets it kept meanwhile
            await wait_until(lambda: sum(committed(pair.master, "CG_read", q)
                                         for q in range(2)) == len(first), 10)
            pair.slave_proc.stop()  # from now on only the master can serve anything
            await send(pair.namesrv, later)
            await wait_until(lambda: len(consumed) >= len(first) + len(later), 30)
            await wait_until(lambda: sum(committed(pair.master, "CG_read", q)
                                         for q in range(2)) == len(first) + len(later), 10)
            await asyncio.sleep(0.5)  # anything consumed twice would show up by now

    run(main(), timeout_s=150)
    assert len(consumed) == len(set(consumed)) == len(first) + len(later)
    assert set(consumed) == set(first) | set(later)
