"""The C++ client (PyPI `rocketmq` 0.4.4) with delay levels and consume retries, against a
broker with a short ladder (broker.conf messageDelayLevel in ms): a message sent with
set_delay_time_level arrives after its delay; a PushConsumer answering RECONSUME_LATER sees the
message again (C++ 1.2.4 sends back with delayLevel 0 and no maxReconsumeTimes, so the group's
retryMaxTimes, set here to 2, applies) and then it is in %DLQ%<group>."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from rmqstore.protocol import RequestCode

from .conftest import (
    ServeProcess,
    call,
    create_topic,
    free_broker_port,
    free_port,
    max_offset,
    route,
    wait_until,
)

pytestmark = pytest.mark.timeout(120)

# Level 2 = 500 ms; levels 3+ (retries) 100 ms.
LADDER = "100ms 500ms 100ms 100ms 100ms"


class Broker:
    def __init__(self, namesrv: str, addr: str) -> None:
        self.namesrv = namesrv
        self.addr = addr

    def topic(self, name: str, queues: int = 1) -> str:
        create_topic(self.addr, name, queues)
        wait_until(lambda: route(self.namesrv, name), 10, what=f"route of {name}")
        return name


@pytest.fixture(scope="module")
def ladder_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    tmp = tmp_path_factory.mktemp("ladder")
    conf = tmp / "broker.conf"
    conf.write_text(f"messageDelayLevel={LADDER}\n")
    ns_port, broker_port = free_port(), free_broker_port()
    serve = ServeProcess(["-c", str(conf), "--data", str(tmp / "data"), "--namesrv-port",
                          str(ns_port), "--broker-port", str(broker_port), "--http-port", "0"],
                         tmp / "serve.log")
    try:
        serve.start()
        yield Broker(f"127.0.0.1:{ns_port}", f"127.0.0.1:{broker_port}")
        assert serve.terminate() == 0, serve.log()[-4000:]
    finally:
        serve.kill()


def test_cpp_delayed_message_arrives_after_its_delay(ladder_broker, cpp) -> None:
    b = ladder_broker
    topic = b.topic(f"CppDelay_{int(time.time() * 1000)}")
    consumer = cpp(cmd="push", namesrv=b.namesrv, group="CG_cpp_delay", topic=topic,
                   props=["DELAY", "REAL_TOPIC"], max_seconds=60)
    consumer.wait_event("started", 20)
    sent_at = time.time()
    events = cpp(cmd="produce", namesrv=b.namesrv, group="PG_cpp_delay", topic=topic,
                 mode="sync", messages=[{"body": b"later".hex(), "tags": "T", "delay": 2}]).wait(60)
    assert [e.get("status") for e in events if "i" in e] == [0], events
    wait_until(lambda: consumer.messages(), 20, what="the delayed message")
    arrived_at = time.time()
    consumer.stop()
    got = consumer.messages()
    assert len(got) == 1
    assert got[0]["topic"] == topic and bytes.fromhex(got[0]["body"]) == b"later"
    assert got[0]["props"]["DELAY"] == ""  # delivered without the delay property
    assert got[0]["props"]["REAL_TOPIC"] == topic
    assert arrived_at - sent_at >= 0.5


def test_cpp_reconsume_later_then_dlq(ladder_broker, cpp) -> None:
    b = ladder_broker
    group = f"CG_cpp_retry_{int(time.time() * 1000)}"
    topic = b.topic(f"CppRetry_{int(time.time() * 1000)}")
    r = call(b.addr, RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, body=json.dumps(
        {"groupName": group, "retryMaxTimes": 2, "retryQueueNums": 1}).encode())
    assert r.code == 0, r.remark
    # A C++ consumer only sees a route that exists when it starts (30 s refresh otherwise).
    b.topic(f"%RETRY%{group}")
    consumer = cpp(cmd="push", namesrv=b.namesrv, group=group, topic=topic,
                   props=["RETRY_TOPIC"], max_seconds=60, reconsume_later=True)
    consumer.wait_event("started", 20)
    events = cpp(cmd="produce", namesrv=b.namesrv, group="PG_cpp_retry", topic=topic,
                 mode="sync", messages=[{"body": b"poison".hex(), "keys": "kp"}]).wait(60)
    assert [e.get("status") for e in events if "i" in e] == [0], events
    dlq = f"%DLQ%{group}"
    wait_until(lambda: route(b.namesrv, dlq) and max_offset(b.addr, dlq, 0) == 1, 30,
               what="the message in the DLQ")
    time.sleep(0.5)  # nothing more should come
    consumer.stop()
    got = consumer.messages()
    assert [m["reconsume_times"] for m in got] == [0, 1, 2], got
    assert all(m["topic"] == topic for m in got)  # the client restores RETRY_TOPIC
    assert len({m["id"] for m in got}) == 1
    assert all(bytes.fromhex(m["body"]) == b"poison" for m in got)
    assert got[1]["props"]["RETRY_TOPIC"] == topic
    assert max_offset(b.addr, dlq, 0) == 1
