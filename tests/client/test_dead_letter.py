"""Where a message the listener keeps failing on ends up, through a real ``rmqstore serve``:

* orderly: after max_reconsume_times suspensions the consumer sends it back with delay level -1,
  the broker stores it in %DLQ%<group>, and the queue's later messages are consumed; if the
  broker refuses that send-back, the queue keeps suspending (ConsumeMessageOrderlyService);
* concurrent, broker refusing send-back (REQUEST_CODE_NOT_SUPPORTED from an old broker): local
  redelivery stops at max_reconsume_times, on_dead_letter gets the message and the offset
  moves past it (Java would redeliver forever).
"""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from rmqstore.client import (
    Admin,
    BrokerError,
    ConsumeFromWhere,
    ConsumeStatus,
    LitePullConsumer,
    Message,
    MessageExt,
    OrderlyStatus,
    Producer,
    PushConsumer,
    RouteNotFound,
)

from .conftest import run, wait_until

FAST = {"rebalance_interval_s": 0.5, "heartbeat_s": 0.5, "route_refresh_s": 0.5,
        "broker_suspend_ms": 1000, "persist_interval_s": 0.5, "lock_interval_s": 0.5,
        "consume_from_where": ConsumeFromWhere.FIRST_OFFSET,
        "reconsume_delay_s": 0.05, "suspend_current_queue_s": 0.05}
REQUEST_CODE_NOT_SUPPORTED = 3
_groups = itertools.count()


def _group(name: str) -> str:
    return f"CG_{name}_{next(_groups)}_{int(time.time())}"


async def _read_all(namesrv: str, topic: str, n: int, timeout_s: float = 10.0) -> list[MessageExt]:
    """Up to n messages of every queue of topic, read from the start by a lite pull consumer."""
    c = LitePullConsumer(_group("read"), namesrv, auto_commit=False, broker_suspend_ms=500,
                         consume_from_where=ConsumeFromWhere.FIRST_OFFSET)
    async with c:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:  # a %DLQ% topic is routed a moment after the broker creates it
            try:
                await c.assign(await c.fetch_message_queues(topic))
                break
            except RouteNotFound:
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.1)
        got: list[MessageExt] = []
        while len(got) < n and loop.time() < deadline:
            got += await c.poll(0.5)
        return got


async def _committed(namesrv: str, group: str, topic: str) -> list[int]:
    async with Admin(namesrv) as admin:
        stats = await admin.consume_stats(group, topic)
    return [q.consumer_offset for q in stats.queues]


def _refuse_send_back(consumer: PushConsumer, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make the broker look old: every CONSUMER_SEND_MSG_BACK answers code 3. Returns the
    delay levels asked for."""
    levels: list[int] = []

    async def refuse(group: str, msg: MessageExt, delay_level: int, max_times: int) -> None:
        levels.append(delay_level)
        raise BrokerError(REQUEST_CODE_NOT_SUPPORTED, "not supported", "test")
    monkeypatch.setattr(consumer.api, "send_back", refuse)
    return levels


async def _send(namesrv: str, topic: str, bodies: list[bytes]) -> None:
    async with Producer(_group("P"), namesrv) as p:
        await p.create_topic(topic, 1)  # one queue: the order of the bodies is the queue order
        for body in bodies:
            await p.send(Message(topic, body))


def test_orderly_past_the_limit_goes_to_dlq_and_the_queue_moves_on(server, topic) -> None:
    group = _group("ord_dlq")

    async def main() -> None:
        seen: list[tuple[bytes, int]] = []
        c = PushConsumer(group, server.namesrv, max_reconsume_times=2, **FAST)
        c.subscribe(topic)

        async def on(msgs: list[MessageExt]) -> OrderlyStatus:
            seen.extend((m.body, m.reconsume_times) for m in msgs)
            if any(m.body == b"poison" for m in msgs):
                return OrderlyStatus.SUSPEND_CURRENT_QUEUE_A_MOMENT
            return OrderlyStatus.SUCCESS
        c.on_message_orderly(on)
        await _send(server.namesrv, topic, [b"before", b"poison", b"after1", b"after2"])
        async with c:
            await wait_until(lambda: (b"after2", 0) in seen, timeout_s=20)
        assert seen == [(b"before", 0), (b"poison", 0), (b"poison", 1), (b"poison", 2),
                        (b"after1", 0), (b"after2", 0)]
        dlq = await _read_all(server.namesrv, f"%DLQ%{group}", 1)
        assert [m.body for m in dlq] == [b"poison"]
        assert dlq[0].properties["RETRY_TOPIC"] == topic
        assert await _committed(server.namesrv, group, topic) == [4]
    run(main(), 40)


def test_orderly_keeps_suspending_when_dlq_send_back_is_refused(server, topic, monkeypatch) -> None:
    group = _group("ord_refused")

    async def main() -> None:
        seen: list[tuple[bytes, int]] = []
        c = PushConsumer(group, server.namesrv, max_reconsume_times=1, **FAST)
        levels = _refuse_send_back(c, monkeypatch)
        c.subscribe(topic)

        async def on(msgs: list[MessageExt]) -> OrderlyStatus:
            seen.extend((m.body, m.reconsume_times) for m in msgs)
            if any(m.body == b"poison" for m in msgs):
                return OrderlyStatus.SUSPEND_CURRENT_QUEUE_A_MOMENT
            return OrderlyStatus.SUCCESS
        c.on_message_orderly(on)
        await _send(server.namesrv, topic, [b"poison", b"after"])
        async with c:
            await wait_until(lambda: len(seen) >= 5, timeout_s=20)
        # Still the poison message, retried past the limit; the one behind it waits.
        assert [body for body, _ in seen] == [b"poison"] * len(seen)
        assert [n for _, n in seen[:5]] == [0, 1, 2, 3, 4]
        assert levels and set(levels) == {-1}  # every attempt past the limit asked for the DLQ
        assert await _committed(server.namesrv, group, topic) == [0]
    run(main(), 40)


@pytest.mark.parametrize("async_callback", [False, True])
def test_concurrent_local_redelivery_stops_at_the_limit(server, topic, monkeypatch,
                                                        async_callback: bool) -> None:
    group = _group("conc_cap")

    async def main() -> None:
        seen: list[tuple[bytes, int]] = []
        dead: list[MessageExt] = []
        c = PushConsumer(group, server.namesrv, max_reconsume_times=2, **FAST)
        levels = _refuse_send_back(c, monkeypatch)
        c.subscribe(topic)

        async def on(msgs: list[MessageExt]) -> ConsumeStatus:
            seen.extend((m.body, m.reconsume_times) for m in msgs)
            if any(m.body == b"poison" for m in msgs):
                return ConsumeStatus.RECONSUME_LATER
            return ConsumeStatus.SUCCESS
        c.on_message(on)

        async def on_dead_async(msg: MessageExt) -> None:
            dead.append(msg)
        c.on_dead_letter(on_dead_async if async_callback else dead.append)
        await _send(server.namesrv, topic, [b"poison", b"fine"])
        async with c:
            await wait_until(lambda: len(dead) == 1 and (b"fine", 0) in seen, timeout_s=20)
            mq = next(q for q in c.process_queues if q.topic == topic)
            await wait_until(lambda: c.offset_store.cached(mq) == 2)
        assert sorted(n for body, n in seen if body == b"poison") == [0, 1, 2]
        assert dead[0].body == b"poison" and dead[0].reconsume_times == 2
        assert levels == [0, 0, 0]  # an ordinary send-back each time, refused
        assert await _committed(server.namesrv, group, topic) == [2]
    run(main(), 40)


def test_concurrent_callback_failure_does_not_stop_consumption(server, topic, monkeypatch) -> None:
    group = _group("conc_cb_fail")

    async def main() -> None:
        seen: list[bytes] = []
        calls: list[bytes] = []

        def on_dead(msg: MessageExt) -> None:
            calls.append(msg.body)
            raise RuntimeError("the dead-letter sink is down")
        c = PushConsumer(group, server.namesrv, max_reconsume_times=0, on_dead_letter=on_dead,
                         **FAST)
        _refuse_send_back(c, monkeypatch)
        c.subscribe(topic)

        async def on(msgs: list[MessageExt]) -> ConsumeStatus:
            seen.extend(m.body for m in msgs)
            poison = any(m.body == b"poison" for m in msgs)
            return ConsumeStatus.RECONSUME_LATER if poison else ConsumeStatus.SUCCESS
        c.on_message(on)
        await _send(server.namesrv, topic, [b"poison", b"fine"])
        async with c:
            await wait_until(lambda: calls == [b"poison"] and b"fine" in seen, timeout_s=20)
        assert seen.count(b"poison") == 1  # limit 0: no local redelivery at all
        assert await _committed(server.namesrv, group, topic) == [2]
    run(main(), 40)
