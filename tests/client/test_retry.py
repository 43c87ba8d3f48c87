"""Delay levels, consume retries and the dead-letter queue through a real broker with a short
ladder (broker.conf messageDelayLevel in ms): a delayed message arrives no earlier than its
delay, one due while the broker was down arrives after it restarts, and a push consumer that
keeps answering RECONSUME_LATER sees the message again until maxReconsumeTimes, after which it
is in %DLQ%<group>."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from rmqstore.client import (
    ConsumeFromWhere,
    ConsumeStatus,
    LitePullConsumer,
    Message,
    Producer,
    PushConsumer,
)

from .conftest import Server, run, wait_until

# Level 1 100 ms, 2 300 ms, 3 (a first retry) 100 ms, 4 and 5 200 ms, 6 2 s.
LADDER = "100ms 300ms 100ms 200ms 200ms 2s"
FAST = {"rebalance_interval_s": 0.5, "heartbeat_s": 0.5, "route_refresh_s": 0.5,
        "broker_suspend_ms": 1000, "persist_interval_s": 0.5,
        "consume_from_where": ConsumeFromWhere.FIRST_OFFSET}


def _with_ladder(tmp: Path, split: bool) -> Server:
    conf = tmp / "broker.conf"
    conf.write_text(f"messageDelayLevel={LADDER}\n")
    srv = Server(tmp, split=split)
    srv.broker_proc.args += ["-c", str(conf)]
    return srv


@pytest.fixture(scope="module")
def delay_server(tmp_path_factory: pytest.TempPathFactory):
    srv = _with_ladder(tmp_path_factory.mktemp("delay"), split=False)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


async def _read_all(namesrv: str, topic: str, n: int, timeout_s: float = 10.0):
    """The first n messages of every queue of topic, read with a lite pull consumer."""
    c = LitePullConsumer(f"CG_read_{int(time.time() * 1000)}", namesrv, auto_commit=False,
                         consume_from_where=ConsumeFromWhere.FIRST_OFFSET, broker_suspend_ms=500)
    async with c:
        await c.assign(await c.fetch_message_queues(topic))
        got = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while len(got) < n and loop.time() < deadline:
            got += await c.poll(0.5)
        return got


def test_delayed_message_arrives_after_its_delay(delay_server, topic) -> None:
    srv = delay_server

    async def main():
        got = []
        c = PushConsumer("CG_delay", srv.namesrv, **FAST)
        c.subscribe(topic)

        async def on(msgs):
            got.extend(msgs)
            return ConsumeStatus.SUCCESS
        c.on_message(on)
        async with Producer("PG_delay", srv.namesrv) as p:
            await p.create_topic(topic, 2)
            async with c:
                sent = await p.send(Message(topic, b"later", tags="T", delay_level=2))
                await p.send(Message(topic, b"past-the-ladder", delay_level=40))  # clamped to 6
                await wait_until(lambda: any(x.body == b"later" for x in got), timeout_s=10)
        [m] = [x for x in got if x.body == b"later"]
        assert m.topic == topic and m.tags == "T"
        assert m.msg_id == sent.msg_id  # UNIQ_KEY kept through SCHEDULE_TOPIC_XXXX
        assert m.queue_id == sent.queue.queue_id  # REAL_QID: the queue the producer chose
        assert "DELAY" not in m.properties
        assert m.store_timestamp - m.born_timestamp >= 300
        # The clamped one waits level 6's 2 s: on a loaded machine the first may come as late.
        for x in got:
            assert x.body in (b"later", b"past-the-ladder")
            if x.body == b"past-the-ladder":
                assert x.store_timestamp - x.born_timestamp >= 2000
    run(main(), 30)


def test_batch_with_delay_is_refused(delay_server, topic) -> None:
    """The client refuses this itself; a raw SEND_BATCH_MESSAGE with DELAY gets
    MESSAGE_ILLEGAL from the broker (CommitLog.putMessages) and stores nothing."""
    from rmqstore.client.message import encode_batch
    from rmqstore.protocol import RemotingCommand, RequestCode, ResponseCode

    async def main():
        async with Producer("PG_delay_batch", delay_server.namesrv) as p:
            await p.create_topic(topic, 1)
        header = {"a": "PG_delay_batch", "b": topic, "c": "TBW102", "d": "4", "e": "0",
                  "f": "0", "g": str(int(time.time() * 1000)), "h": "0",
                  "i": "DELAY\x011\x02", "m": "true"}
        body = encode_batch([(b"a", 0, ""), (b"b", 0, "")])
        resp = await _invoke(delay_server, RemotingCommand.request(
            RequestCode.SEND_BATCH_MESSAGE, header, body))
        assert resp.code == ResponseCode.MESSAGE_ILLEGAL, resp.remark
        assert await _max_offset(delay_server, topic) == 0
    run(main(), 30)


def test_reconsume_later_retries_then_dead_letter_queue(delay_server, topic) -> None:
    srv = delay_server
    group = "CG_retry"

    async def main():
        seen = []
        c = PushConsumer(group, srv.namesrv, max_reconsume_times=2, **FAST)
        c.subscribe(topic)

        async def on(msgs):
            seen.extend(msgs)
            return ConsumeStatus.RECONSUME_LATER
        c.on_message(on)
        async with Producer("PG_retry", srv.namesrv) as p:
            await p.create_topic(topic, 1)
            async with c:
                sent = await p.send(Message(topic, b"poison", keys="k-poison"))
                await wait_until(lambda: len(seen) >= 3, timeout_s=20)
                await asyncio.sleep(0.5)  # a fourth delivery would come within this
        assert [m.reconsume_times for m in seen] == [0, 1, 2]
        assert all(m.topic == topic and m.body == b"poison" for m in seen)
        assert {m.msg_id for m in seen} == {sent.msg_id}
        assert seen[1].properties["RETRY_TOPIC"] == topic
        dlq = await _read_all(srv.namesrv, f"%DLQ%{group}", 1)
        assert len(dlq) == 1
        d = dlq[0]
        assert d.body == b"poison" and d.reconsume_times == 3
        assert d.properties["RETRY_TOPIC"] == topic
        assert d.properties["ORIGIN_MESSAGE_ID"] == sent.offset_msg_id
        assert "DELAY" not in d.properties
    run(main(), 40)


def test_delayed_message_due_while_broker_down(tmp_path, topic) -> None:
    srv = _with_ladder(tmp_path, split=True)
    srv.start()

    async def main():
        async with Producer("PG_down", srv.namesrv, route_refresh_s=0.5) as p:
            await p.create_topic(topic, 1)
            await p.send(Message(topic, b"before", delay_level=1))
            # Delivered before the restart, so it must not come again after it.
            await _wait_max_offset(srv, topic, 1)
            sent_at = time.time()
            await p.send(Message(topic, b"across", delay_level=6))  # 2 s
        await asyncio.to_thread(srv.broker_proc.stop)
        assert time.time() - sent_at < 2, "the broker took the whole delay to stop"
        await asyncio.sleep(max(0.0, sent_at + 2.5 - time.time()))
        restarted_ms = int(time.time() * 1000)
        await asyncio.to_thread(srv.broker_proc.start)
        await asyncio.to_thread(srv.wait_registered)
        got = await _read_all(srv.namesrv, topic, 2)
        assert [m.body for m in got] == [b"before", b"across"]
        assert got[1].store_timestamp >= restarted_ms  # delivered by the restarted broker
        await asyncio.sleep(0.3)
        assert await _max_offset(srv, topic) == 2
    try:
        run(main(), 60)
    finally:
        srv.stop()


async def _invoke(srv: Server, request):
    from rmqstore.net import RemotingClient

    client = RemotingClient()
    try:
        return await client.invoke(srv.broker_addr, request, 5.0)
    finally:
        await client.close()


async def _max_offset(srv: Server, topic: str) -> int:
    """GET_MAX_OFFSET of queue 0 of topic: how many messages the broker stored there."""
    from rmqstore.protocol import RemotingCommand, RequestCode

    resp = await _invoke(srv, RemotingCommand.request(RequestCode.GET_MAX_OFFSET,
                                                      {"topic": topic, "queueId": "0"}))
    return int(resp.ext_fields.get("offset", -1))


async def _wait_max_offset(srv: Server, topic: str, n: int, timeout_s: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while await _max_offset(srv, topic) < n:
        assert loop.time() < deadline, f"{topic} did not reach {n} messages"
        await asyncio.sleep(0.05)


def test_send_back_edge_cases(delay_server, topic) -> None:
    """Raw CONSUMER_SEND_MSG_BACK: a bad offset is refused; delayLevel -1 goes straight to the
    DLQ; an explicit level is used as given; GET_ALL_DELAY_OFFSET shows the progress."""
    from rmqstore.protocol import RemotingCommand, RequestCode, ResponseCode
    from rmqstore.protocol.fastjson import loads as loads_fastjson
    from rmqstore.record import parse_msg_id

    srv = delay_server

    def back(offset: int, group: str, level: int) -> RemotingCommand:
        return RemotingCommand.request(RequestCode.CONSUMER_SEND_MSG_BACK, {
            "offset": str(offset), "group": group, "delayLevel": str(level)})

    async def main():
        async with Producer("PG_back", srv.namesrv) as p:
            await p.create_topic(topic, 1)
            sent = await p.send(Message(topic, b"x"))
        _, offset = parse_msg_id(sent.offset_msg_id)
        resp = await _invoke(srv, back(offset + 1, "CG_back", 0))
        assert resp.code == ResponseCode.SYSTEM_ERROR
        assert "look message by offset failed" in resp.remark
        resp = await _invoke(srv, back(offset, "CG_back_dlq", -1))
        assert resp.code == ResponseCode.SUCCESS, resp.remark
        assert await _max_offset(srv, "%DLQ%CG_back_dlq") == 1
        assert await _max_offset(srv, "%RETRY%CG_back_dlq") == 0
        resp = await _invoke(srv, back(offset, "CG_back_lvl", 1))  # 100 ms, not 3 + 0
        assert resp.code == ResponseCode.SUCCESS, resp.remark
        await _wait_max_offset(srv, "%RETRY%CG_back_lvl", 1)
        resp = await _invoke(srv, RemotingCommand.request(RequestCode.GET_ALL_DELAY_OFFSET))
        assert resp.code == ResponseCode.SUCCESS
        table = {int(k): v for k, v in loads_fastjson(resp.body.decode())["offsetTable"].items()}
        assert table.get(1, 0) >= 1
        bad = {"a": "PG_back", "b": topic, "c": "TBW102", "d": "4", "e": "0", "f": "0",
               "g": "0", "h": "0", "i": "DELAY\x01soon\x02"}
        resp = await _invoke(srv, RemotingCommand.request(RequestCode.SEND_MESSAGE_V2, bad, b"y"))
        assert resp.code == ResponseCode.MESSAGE_ILLEGAL
        assert await _max_offset(srv, topic) == 1
    run(main(), 30)


def test_retry_send_with_delay_scheduled_or_dead_lettered(delay_server) -> None:
    """What a Java client does when send-back fails: SEND_MESSAGE_V2 to %RETRY%<group> with
    DELAY and reconsumeTimes. Under the limit it goes through the schedule; at the limit it is
    stored in the DLQ at once (handleRetryAndDLQ sets level 0)."""
    from rmqstore.protocol import RemotingCommand, RequestCode, ResponseCode

    srv = delay_server
    group = f"CG_direct_{int(time.time() * 1000)}"

    def send(reconsume: int) -> RemotingCommand:
        return RemotingCommand.request(RequestCode.SEND_MESSAGE_V2, {
            "a": "PG_direct", "b": f"%RETRY%{group}", "c": "TBW102", "d": "1", "e": "0",
            "f": "0", "g": "0", "h": "0", "i": "DELAY\x012\x02RETRY_TOPIC\x01T\x02",
            "j": str(reconsume), "l": "3"}, b"z")

    async def main():
        resp = await _invoke(srv, send(3))
        assert resp.code == ResponseCode.SUCCESS, resp.remark
        assert await _max_offset(srv, f"%DLQ%{group}") == 1
        resp = await _invoke(srv, send(1))
        assert resp.code == ResponseCode.SUCCESS, resp.remark
        assert await _max_offset(srv, f"%RETRY%{group}") == 0  # level 2: 300 ms away
        await _wait_max_offset(srv, f"%RETRY%{group}", 1)
    run(main(), 30)


def test_bad_ladder_in_broker_conf_is_refused() -> None:
    from rmqstore.server.broker import BrokerConfig
    from rmqstore.server.config_error import ConfigError

    assert BrokerConfig.from_properties("messageDelayLevel=1s 250ms 2h\n").message_delay_level \
        == "1s 250ms 2h"
    with pytest.raises(ConfigError, match="broker.conf: messageDelayLevel=.*1x"):
        BrokerConfig.from_properties("messageDelayLevel=1s 1x\n")
