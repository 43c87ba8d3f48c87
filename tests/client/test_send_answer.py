"""A send's answer read into its SendResult, against a connection whose peer answers at once
with what the test says (no server): the queue the broker names, the status, the offsets."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from rmqstore.client import Message, Producer
from rmqstore.client.errors import BrokerError
from rmqstore.client.producer import SendStatus
from rmqstore.client.routes import _Entry
from rmqstore.net.connection import RemotingConnection
from rmqstore.protocol.json_template import JsonFrameTemplate
from rmqstore.protocol.route import decode_topic_route
from tests.fake_transport import connected

ADDR = "127.0.0.1:10911"
ROUTE = (b'{"brokerDatas":[{"brokerAddrs":{"0":"127.0.0.1:10911"},"brokerName":"b",'
         b'"cluster":"c"}],"queueDatas":[{"brokerName":"b","perm":6,"readQueueNums":4,'
         b'"topicSysFlag":0,"writeQueueNums":4}]}')
OPAQUE = re.compile(rb'"opaque":(\d+)')
MSG_ID = "7F00000100002A9F0000000000000100"


def _answering(code: int, queue_id: str | None) -> RemotingConnection:
    """A connection whose every request is answered at once with code, queue_id (None: no
    queueId field), MSG_ID and queue offset 41."""
    fields = {"msgId": None, "queueOffset": None}
    if queue_id is not None:
        fields["queueId"] = queue_id
    template = JsonFrameTemplate(code, fields)
    conn = RemotingConnection(lambda c, request: None)

    def answer(frame: bytes) -> None:
        opaque = int(OPAQUE.search(frame).group(1))  # type: ignore[union-attr]
        conn.data_received(template.frame(opaque, MSG_ID, "41"))

    connected(conn, answer)
    return conn


async def _send(code: int, queue_id: str | None, sends: int = 1) -> list:
    p = Producer("g_answer", namesrv="127.0.0.1:1", retry_times_when_send_failed=0)
    p._started = True  # routes and the connection are the test's own
    p._transport.remoting._connections[ADDR] = _answering(code, queue_id)
    p.routes.routes["T"] = _Entry(decode_topic_route(ROUTE), time.monotonic())
    p._heartbeated.add(ADDR)
    return [await p.send(Message("T", b"hello")) for _ in range(sends)]


def test_the_queue_the_broker_names_is_the_results() -> None:
    results = asyncio.run(_send(0, "3", sends=4))  # sent round the four queues
    assert [r.queue.queue_id for r in results] == [3, 3, 3, 3]
    assert all(r.status is SendStatus.SEND_OK and r.queue_offset == 41
               and r.offset_msg_id == MSG_ID and r.queue.topic == "T" for r in results)


def test_without_a_queue_id_the_result_names_the_queue_sent_to() -> None:
    results = asyncio.run(_send(0, None, sends=4))
    assert sorted(r.queue.queue_id for r in results) == [0, 1, 2, 3]


def test_a_flush_timeout_is_a_status_and_a_refusal_an_error() -> None:
    (result,) = asyncio.run(_send(10, "1"))
    assert result.status is SendStatus.FLUSH_DISK_TIMEOUT
    with pytest.raises(BrokerError):
        asyncio.run(_send(13, "1"))  # MESSAGE_ILLEGAL: not retried, raised
