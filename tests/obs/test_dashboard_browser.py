"""Every page of the dashboard in headless Chromium against a real `rmqstore serve`: it loads
with no console error, shows what the server holds, and its actions take effect on the
server (a topic created and deleted, a DLQ message resent); a screenshot of each page is
written to build/dashboard-screenshots/ (browser.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from rmqstore.client import ConsumeFromWhere, ConsumeStatus, Message, Producer, PushConsumer
from rmqstore.server.testing import max_offset, route, wait_until

from .browser import chromium, console_errors, open_page, screenshot, text_of, wait_ready
from .conftest import ObsServer, get, get_json
from .live import LoopThread

TOPIC, GROUP, DLQ_TOPIC, DLQ_GROUP = "DashT", "DashG", "DashDlqT", "DashDlqG"
FAST = {"consume_from_where": ConsumeFromWhere.FIRST_OFFSET, "rebalance_interval_s": 0.5,
        "heartbeat_s": 0.5, "persist_interval_s": 0.2, "broker_suspend_ms": 1000}


@pytest.fixture(scope="module")
def world(obs_server: ObsServer) -> Iterator[dict]:
    """The server holds DashT (13 messages, traced; DashG consumed 10 of them), a message of
    DashDlqG in its DLQ, and a producer that stays connected."""
    live = LoopThread()
    ns = obs_server.namesrv
    facts: dict = {}

    async def setup() -> Producer:
        producer = Producer("DashP", ns, trace=True)
        await producer.start()
        await producer.create_topic(TOPIC, 4)
        await producer.create_topic(DLQ_TOPIC, 1)
        sent = [await producer.send(Message(TOPIC, f"body-{i}".encode(), keys=f"dash-key-{i}",
                                            tags="TagA")) for i in range(10)]
        facts["sent"] = sent
        got: list = []
        consumer = PushConsumer(GROUP, ns, trace=True, **FAST)
        consumer.subscribe(TOPIC)

        async def on(msgs):
            got.extend(msgs)
            return ConsumeStatus.SUCCESS
        consumer.on_message(on)
        async with consumer:
            await _until(lambda: len(got) >= 10, 20)
            await asyncio.sleep(0.5)  # the last commit
        for i in range(10, 13):
            await producer.send(Message(TOPIC, f"body-{i}".encode(), keys=f"dash-key-{i}"))
        failing = PushConsumer(DLQ_GROUP, ns, max_reconsume_times=0, **FAST)
        failing.subscribe(DLQ_TOPIC)
        seen: list = []

        async def fail(msgs):
            seen.extend(msgs)
            return ConsumeStatus.RECONSUME_LATER
        failing.on_message(fail)
        async with failing:
            await producer.send(Message(DLQ_TOPIC, b"poison", keys="poison-key"))
            await _until(lambda: seen, 20)
            await asyncio.sleep(0.5)  # its send-back
        await producer.heartbeat()  # now, not in 30 s: the producers page lists it
        await producer.tracer.flush()
        return producer

    producer = live.run(setup())
    facts["producer"] = producer
    wait_until(lambda: get_json(f"{obs_server.url}/api/dlq?group={DLQ_GROUP}")["messages"], 20,
               what="a message in the DLQ")
    try:
        yield facts
    finally:
        live.run(producer.close())
        live.close()


async def _until(predicate, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with chromium() as driver:
        yield driver


def _visit(driver, srv: ObsServer, path: str, page: str, shot: str) -> str:
    open_page(driver, srv.url, path, page)
    screenshot(driver, shot)
    assert console_errors(driver) == []
    return driver.find_element("id", "page").text


def test_cluster_page(browser, obs_server, world) -> None:
    text = _visit(browser, obs_server, "cluster", "cluster", "cluster")
    assert "broker-a" in text and obs_server.broker in text
    assert "Disk alarm" in text


def test_topics_page_lists_and_creates(browser, obs_server, world) -> None:
    text = _visit(browser, obs_server, "topics", "topics", "topics")
    assert TOPIC in text and DLQ_TOPIC in text and "%DLQ%" + DLQ_GROUP in text
    row = browser.find_element("xpath", f"//table[@id='topics']//tr[td[1]/a[text()='{TOPIC}']]")
    assert row.find_elements("tag name", "td")[5].text == "13"  # messages
    form = browser.find_element("id", "create-topic")
    form.find_element("name", "topic").send_keys("DashCreated")
    form.find_element("name", "queues").clear()
    form.find_element("name", "queues").send_keys("3")
    form.find_element("css selector", "button").click()
    wait_until(lambda: "created DashCreated" in text_of(browser, "create-result"), 10,
               what="the created notice")
    assert console_errors(browser) == []
    created = route(obs_server.namesrv, "DashCreated")  # registered with the NameServer
    assert created and created["queueDatas"][0]["readQueueNums"] == 3
    screenshot(browser, "topics-created")


def test_topic_page_shows_route_and_status_and_deletes(browser, obs_server, world) -> None:
    text = _visit(browser, obs_server, f"topic/{TOPIC}", "topic", "topic")
    rows = browser.find_elements("css selector", "#topic-queues tbody tr")
    assert len(rows) == 4
    assert sum(int(r.find_elements("tag name", "td")[2].text) for r in rows) == 13
    assert GROUP in text and obs_server.broker in text
    open_page(browser, obs_server.url, "topic/DashCreated", "topic")
    browser.find_element("id", "delete-topic").click()
    browser.switch_to.alert.accept()
    wait_ready(browser, "topics")
    assert "DashCreated" not in browser.find_element("id", "topics").text
    assert get(f"{obs_server.url}/api/topics/DashCreated")[0] == 404
    assert console_errors(browser) == []


def test_groups_page_shows_lag(browser, obs_server, world) -> None:
    _visit(browser, obs_server, "groups", "groups", "groups")
    row = browser.find_element("xpath", f"//table[@id='groups']//tr[td[1]/a[text()='{GROUP}']]")
    cells = [td.text for td in row.find_elements("tag name", "td")]
    assert TOPIC in cells[4] and cells[5] == "3"  # 13 stored, 10 consumed


def test_group_page_lag_per_queue_and_plot(browser, obs_server, world) -> None:
    wait_until(lambda: len(get_json(f"{obs_server.url}/api/groups/{GROUP}")["history"]) >= 2,
               15, what="two history samples")
    _visit(browser, obs_server, f"group/{GROUP}", "group", "group")
    rows = [[td.text for td in r.find_elements("tag name", "td")]
            for r in browser.find_elements("css selector", "#group-queues tbody tr")]
    assert {r[0] for r in rows} == {TOPIC, "%RETRY%" + GROUP}  # its retry topic too
    assert [r[1] for r in rows if r[0] == TOPIC] == ["0", "1", "2", "3"]
    assert sum(int(r[4]) for r in rows) == 3
    lines = browser.find_elements("css selector", "svg#plot polyline")
    assert {line.get_attribute("class") for line in lines} == {"lag", "tps"}
    points = lines[0].get_attribute("points").split()
    assert len(points) >= 2


def test_producers_page(browser, obs_server, world) -> None:
    text = _visit(browser, obs_server, "producers", "producers", "producers")
    assert "DashP" in text and world["producer"].client_id in text


def test_message_search_by_key_id_and_time_with_trace(browser, obs_server, world) -> None:
    _visit(browser, obs_server, "messages", "messages", "messages")
    form = browser.find_element("id", "search")
    form.find_element("name", "topic").send_keys(TOPIC)
    form.find_element("name", "key").send_keys("dash-key-3")
    form.find_element("css selector", "button").click()
    wait_until(lambda: browser.find_elements("css selector", "#messages tbody tr"), 10,
               what="search results")
    rows = browser.find_elements("css selector", "#messages tbody tr")
    assert len(rows) == 1 and "dash-key-3" in rows[0].text
    screenshot(browser, "messages-by-key")
    form.find_element("name", "key").clear()  # by time: the default window, the last hour
    form.find_element("css selector", "button").click()
    wait_until(lambda: len(browser.find_elements("css selector", "#messages tbody tr")) == 13,
               10, what="13 messages by time")
    sent = world["sent"][3]
    rows_by_id = get_json(f"{obs_server.url}/api/messages?id={sent.offset_msg_id}")["messages"]
    assert [m["keys"] for m in rows_by_id] == ["dash-key-3"]
    assert console_errors(browser) == []
    text = _visit(browser, obs_server, f"message/{sent.msg_id}?topic={TOPIC}", "message",
                  "message")
    assert "body-3" in text and "dash-key-3" in text
    trace = [r.find_elements("tag name", "td")[0].text
             for r in browser.find_elements("css selector", "#trace tbody tr")]
    assert "Pub" in trace and "SubBefore" in trace and "SubAfter" in trace, trace


def test_dlq_page_resends(browser, obs_server, world) -> None:
    retry = "%RETRY%" + DLQ_GROUP
    before = max_offset(obs_server.broker, retry, 0)
    text = _visit(browser, obs_server, f"dlq?group={DLQ_GROUP}", "dlq", "dlq")
    assert "poison-key" in text
    browser.find_element("css selector", "input.pick").click()
    browser.find_element("id", "resend").click()
    wait_until(lambda: "resent 1" in text_of(browser, "resend-result"), 10,
               what="the resent notice")
    assert console_errors(browser) == []
    screenshot(browser, "dlq-resent")
    assert max_offset(obs_server.broker, retry, 0) == before + 1
    again = get_json(f"{obs_server.url}/api/messages?topic={quote(retry)}&key=poison-key")
    assert any(m["reconsumeTimes"] == 0 for m in again["messages"])
