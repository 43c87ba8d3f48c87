"""A broker SIGKILLed and restarted while a producer sends and a push consumer consumes:
every message the broker acknowledged is consumed (duplicates allowed)."""

from __future__ import annotations

import asyncio

from rmqstore.client import ConsumeFromWhere, ConsumeStatus, Message, Producer, PushConsumer
from rmqstore.client.errors import ClientError

from .conftest import run, wait_until


def test_broker_killed_and_restarted(split_server, topic) -> None:
    srv = split_server

    async def main():
        acked: set[str] = set()
        got: set[str] = set()
        c = PushConsumer("CG_kill", srv.namesrv, consume_from_where=ConsumeFromWhere.FIRST_OFFSET,
                         rebalance_interval_s=1.0, persist_interval_s=0.5, broker_suspend_ms=2000,
                         route_refresh_s=1.0, heartbeat_s=1.0)
        c.subscribe(topic)

        async def on(msgs):
            got.update(m.msg_id for m in msgs)
            return ConsumeStatus.SUCCESS
        c.on_message(on)
        async with Producer("PG_kill", srv.namesrv, send_timeout_s=1.0, route_refresh_s=1.0) as p:
            await p.create_topic(topic, 4)
            async with c:
                async def produce(n: int) -> None:
                    for i in range(n):
                        for _attempt in range(60):
                            try:
                                acked.add((await p.send(Message(topic, b"%d" % i))).msg_id)
                                break
                            except (ClientError, OSError, TimeoutError):
                                await asyncio.sleep(0.1)
                        await asyncio.sleep(0.002)
                producing = asyncio.ensure_future(produce(300))
                await wait_until(lambda: len(acked) >= 100, timeout_s=20)
                await asyncio.to_thread(srv.broker_proc.kill)
                await asyncio.sleep(0.5)
                await asyncio.to_thread(srv.broker_proc.start)
                await producing
                await wait_until(lambda: acked <= got, timeout_s=30)
        assert len(acked) >= 250  # a few sends may be lost with the broker down, never acked ones
    run(main(), 90)
