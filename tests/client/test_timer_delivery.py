"""Delivery at any time end to end: our producer's deliver_time_ms / delay_ms, the broker's
timer store, a push consumer; and pending timers across a broker restart."""

from __future__ import annotations

import asyncio
import time

import pytest

from rmqstore.client import ConsumeFromWhere, ConsumeStatus, Message, Producer, PushConsumer
from rmqstore.client.errors import BrokerError

from .conftest import run, wait_until

MESSAGE_ILLEGAL = 13
LATE_BOUND_MS = 5_000  # generous: a shared 2-core machine; the bench measures real lateness


def now_ms() -> int:
    return int(time.time() * 1000)


def consumer(srv, group: str, topic: str,
             got: dict[str, tuple[int, dict[str, str]]]) -> PushConsumer:
    c = PushConsumer(group, srv.namesrv, consume_from_where=ConsumeFromWhere.FIRST_OFFSET,
                     rebalance_interval_s=1.0, heartbeat_s=1.0)
    c.subscribe(topic)

    async def on(msgs):
        for m in msgs:
            got.setdefault(m.body.decode(), (now_ms(), m.properties))
        return ConsumeStatus.SUCCESS
    c.on_message(on)
    return c


def test_delivered_no_earlier_than_due(server, topic) -> None:
    async def main():
        got: dict[str, tuple[int, dict[str, str]]] = {}
        due: dict[str, int] = {}
        async with Producer("PG_timer", server.namesrv) as p:
            await p.create_topic(topic, 2)
            async with consumer(server, "CG_timer", topic, got):
                base = now_ms()
                for i, ahead in enumerate([1500, 300, 900, 600, 1200]):
                    name = f"at{i}"
                    due[name] = base + ahead
                    await p.send(Message(topic, name.encode(), deliver_time_ms=due[name]))
                for i, delay in enumerate([700, 400]):
                    name = f"delay{i}"
                    due[name] = now_ms() + delay  # before the broker receives it: a lower bound
                    await p.send(Message(topic, name.encode(), delay_ms=delay, tags="t"))
                await p.send(Message(topic, b"now"))
                await wait_until(lambda: len(got) == len(due) + 1, timeout_s=15)
        for name, at in due.items():
            arrived, props = got[name]
            assert arrived >= at, (name, arrived - at)
            assert arrived <= at + LATE_BOUND_MS, (name, arrived - at)
            # The broker's own record: never delivered before the time it stored.
            assert int(props["TIMER_DEQUEUE_MS"]) >= int(props["TIMER_OUT_MS"])
            assert "REAL_TOPIC" not in props and "REAL_QID" not in props
        assert got["delay0"][1].get("TAGS") == "t"
        assert got["now"][0] < got["at1"][0]  # the untimed one went straight through
    run(main(), 60)


def test_bad_times_refused(server, topic) -> None:
    async def main():
        async with Producer("PG_timer_bad", server.namesrv, retry_times_when_send_failed=0) as p:
            await p.create_topic(topic, 1)
            for msg in (Message(topic, b"x", properties={"TIMER_DELIVER_MS": "soon"}),
                        Message(topic, b"x", properties={"TIMER_DELAY_SEC": "1.5"}),
                        Message(topic, b"x", delay_ms=8 * 86_400_000)):
                with pytest.raises(BrokerError) as err:
                    await p.send(msg)
                assert err.value.code == MESSAGE_ILLEGAL
            ok = await p.send(Message(topic, b"fine", delay_ms=6 * 86_400_000))
            assert ok.msg_id
            with pytest.raises(ValueError):
                await p.send_batch([Message(topic, b"x", delay_ms=100)])
    run(main(), 30)


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_pending_across_broker_restart(split_server, topic, how) -> None:
    srv = split_server

    async def main():
        async with Producer("PG_timer_restart", srv.namesrv, route_refresh_s=1.0) as p:
            await p.create_topic(topic, 2)
            due = {}
            for i in range(10):
                due[f"m{i}"] = now_ms() + 1500 + 50 * i
                await p.send(Message(topic, f"m{i}".encode(), deliver_time_ms=due[f"m{i}"]))
        await asyncio.to_thread(srv.broker_proc.stop if how == "stop" else srv.broker_proc.kill)
        while now_ms() < max(due.values()) + 300:  # every one comes due while it is down
            await asyncio.sleep(0.1)
        restarted = now_ms()
        await asyncio.to_thread(srv.broker_proc.start)
        got: dict[str, tuple[int, dict[str, str]]] = {}
        async with consumer(srv, "CG_timer_restart", topic, got):
            await wait_until(lambda: set(got) == set(due), timeout_s=20)
        for name, (_arrived, props) in got.items():
            assert int(props["TIMER_DEQUEUE_MS"]) >= restarted  # delivered by the new process
            assert int(props["TIMER_OUT_MS"]) == due[name]
    run(main(), 60)

