"""Every resource a client can make `rmqstore serve` spend has a limit, and reaching it costs that
client, not the server: connection floods, a trickled frame (slowloris), idle connections,
partial frames, topics and queues, the long-poll hold, a full descriptor table. Real processes on
loopback; the limits are set small in the test's broker.conf so that each case takes seconds.
"""

from __future__ import annotations

import json
import re
import resource
import time
from pathlib import Path

import pytest

from rmqstore.protocol import RemotingCommand, RequestCode, ResponseCode, encode
from rmqstore.server.testing import ServeError, call, wait_until

from .conftest import Served, ServeFactory, closed_within, connect, request

C = RequestCode
READ_TIMEOUT_S = 1
IDLE_S = 3
MAX_CONNECTIONS = 30
MAX_MESSAGE = 256 * 1024
LIMITS = f"""
serverFrameReadTimeoutSeconds={READ_TIMEOUT_S}
serverChannelMaxIdleTimeSeconds={IDLE_S}
serverMaxConnections={MAX_CONNECTIONS}
maxMessageSize={MAX_MESSAGE}
brokerSuspendMaxTimeMillis=1000
"""
MAX_FRAME = 8 + MAX_MESSAGE + 256 * 1024  # frame_limit(maxMessageSize)


def max_offset_request(topic: str = "TBW102") -> RemotingCommand:
    return RemotingCommand.request(C.GET_MAX_OFFSET, {"topic": topic, "queueId": "0"})


def answers(srv: Served) -> bool:
    with connect(srv.broker_address) as sock:
        return request(sock, max_offset_request()) is not None


def send_request(topic: str, queue_id: int, body: bytes) -> RemotingCommand:
    return RemotingCommand.request(C.SEND_MESSAGE, {
        "producerGroup": "PG", "topic": topic, "defaultTopic": "TBW102",
        "defaultTopicQueueNums": "4", "queueId": str(queue_id), "sysFlag": "0",
        "bornTimestamp": str(int(time.time() * 1000)), "flag": "0", "properties": "",
        "reconsumeTimes": "0", "unitMode": "false", "batch": "false"}, body)


def test_connections_beyond_the_cap_are_refused_and_the_server_keeps_serving(
        serve: ServeFactory) -> None:
    srv = serve(LIMITS)
    socks = [connect(srv.broker_address) for _ in range(MAX_CONNECTIONS + 15)]
    try:
        answered = sum(request(s, max_offset_request()) is not None for s in socks)
        assert answered == MAX_CONNECTIONS
    finally:
        for s in socks:
            s.close()
    # once the server has seen the flood's sockets close, a new client is served
    wait_until(lambda: answers(srv), 5, what="a call after the flood")
    assert re.search(r"\d+ connection\(s\) refused.*30 connections is the limit", srv.proc.log())


def test_a_trickled_frame_is_closed_after_the_read_timeout(serve: ServeFactory) -> None:
    srv = serve(LIMITS)
    frame = encode(max_offset_request())
    with connect(srv.broker_address) as slow, connect(srv.broker_address) as other:
        started = time.monotonic()
        for i in range(len(frame)):  # one byte every 0.2 s: the frame would take ~20 s
            try:
                slow.sendall(frame[i:i + 1])
            except OSError:
                break
            if closed_within(slow, 0.2) is not None:
                break
            # bytes keep flowing, so this is not idleness; others are served meanwhile
            assert request(other, max_offset_request()) is not None
        elapsed = time.monotonic() - started
    assert READ_TIMEOUT_S * 0.9 < elapsed < READ_TIMEOUT_S + 2, elapsed
    assert "is still incomplete (frame read timeout 1 s)" in srv.proc.log()


def test_idle_connections_are_closed_busy_ones_stay(serve: ServeFactory) -> None:
    srv = serve(LIMITS)
    with connect(srv.broker_address) as idle, connect(srv.broker_address) as busy:
        started = time.monotonic()
        for _ in range(5):  # one request a second: never idle for IDLE_S
            assert request(busy, max_offset_request()) is not None
            time.sleep(1)
        closed = closed_within(idle, IDLE_S + 3 - (time.monotonic() - started))
        assert closed is not None, "the idle connection is still open"
        assert time.monotonic() - started > IDLE_S * 0.9
        assert request(busy, max_offset_request()) is not None
    assert "(serverChannelMaxIdleTimeSeconds 3)" in srv.proc.log()


def test_partial_frames_cost_at_most_the_frame_limit_each(serve: ServeFactory) -> None:
    srv = serve(LIMITS)
    base = srv.rss_bytes()
    big = 4 * 1024 * 1024  # over maxMessageSize: refused at its length word
    oversized = [connect(srv.broker_address) for _ in range(20)]
    for s in oversized:
        try:
            s.sendall(encode(send_request("T", 0, b"x" * big))[:big])
        except OSError:
            pass  # the server closed it on the length word
    for s in oversized:
        assert closed_within(s, 3) is not None
        s.close()
    assert srv.rss_bytes() - base < 8 * 1024 * 1024

    # 20 connections each holding a frame one byte short of the limit: held, then timed out
    held = [connect(srv.broker_address) for _ in range(20)]
    frame = encode(send_request("T", 0, b"y" * (MAX_FRAME - 2048)))
    assert len(frame) <= MAX_FRAME
    for s in held:
        s.sendall(frame[:-1])
    grown = srv.rss_bytes() - base
    assert grown < 20 * 2 * MAX_FRAME + 8 * 1024 * 1024, grown
    for s in held:
        assert closed_within(s, READ_TIMEOUT_S + 3) is not None
        s.close()
    assert request(connect(srv.broker_address), max_offset_request()) is not None


def test_long_poll_hold_is_capped(serve: ServeFactory) -> None:
    srv = serve(LIMITS)
    call(srv.broker, C.UPDATE_AND_CREATE_TOPIC, {
        "topic": "Held", "defaultTopic": "TBW102", "readQueueNums": "1", "writeQueueNums": "1",
        "perm": "6", "topicFilterType": "SINGLE_TAG", "topicSysFlag": "0", "order": "false"})
    started = time.monotonic()
    r = call(srv.broker, C.PULL_MESSAGE, {
        "consumerGroup": "G", "topic": "Held", "queueId": "0", "queueOffset": "0",
        "maxMsgNums": "32", "sysFlag": "6", "commitOffset": "0",
        "suspendTimeoutMillis": str(10 ** 12), "subscription": "*", "subVersion": "0"},
        timeout_s=10)
    assert r.code == ResponseCode.PULL_NOT_FOUND
    assert 0.9 < time.monotonic() - started < 4  # brokerSuspendMaxTimeMillis=1000, not 10^12 ms


CAPS = """
maxQueueNumsPerTopic=16
maxTopicNums=40
maxQueueNumsPerBroker=160
"""


def topic_configs(srv: Served) -> dict:
    r = call(srv.broker, C.GET_ALL_TOPIC_CONFIG)
    return json.loads(r.body)["topicConfigTable"]


def create(srv: Served, topic: str, queues: int) -> RemotingCommand:
    return call(srv.broker, C.UPDATE_AND_CREATE_TOPIC, {
        "topic": topic, "defaultTopic": "TBW102", "readQueueNums": str(queues),
        "writeQueueNums": str(queues), "perm": "6", "topicFilterType": "SINGLE_TAG",
        "topicSysFlag": "0", "order": "false"})


def test_topic_and_queue_creation_beyond_the_caps_is_refused(serve: ServeFactory) -> None:
    srv = serve(CAPS)
    r = create(srv, "TooWide", 17)
    assert (r.code, "maxQueueNumsPerTopic" in r.remark) == (ResponseCode.SYSTEM_ERROR, True)
    assert create(srv, "Wide", 16).code == 0

    # queues in all: topics of 16 until the broker-wide cap refuses one
    def queues() -> int:
        return sum(max(c["readQueueNums"], c["writeQueueNums"])
                   for c in topic_configs(srv).values())
    made = 0
    while queues() + 16 <= 160:
        assert create(srv, f"Wide{made}", 16).code == 0
        made += 1
    r = create(srv, "OneTooMany", 16)
    assert r.code == ResponseCode.SYSTEM_ERROR and "maxQueueNumsPerBroker" in r.remark
    assert "OneTooMany" not in topic_configs(srv)

    # shrinking a topic is always allowed, and frees room for topics of one queue
    for i in range(made):
        assert create(srv, f"Wide{i}", 1).code == 0
    n = len(topic_configs(srv))
    for i in range(40 - n):
        assert create(srv, f"Narrow{i}", 1).code == 0
    r = create(srv, "Topic41", 1)
    assert r.code == ResponseCode.SYSTEM_ERROR and "maxTopicNums" in r.remark

    # auto-creation from a send, and a retry topic from a heartbeat, meet the same cap
    with connect(srv.broker_address) as sock:
        r = request(sock, send_request("AutoCreated", 0, b"hello"))
        assert r is not None and r.code == ResponseCode.SYSTEM_ERROR
        assert "maxTopicNums" in r.remark
        heartbeat = {"clientID": "c1", "consumerDataSet": [{
            "groupName": "NewGroup", "consumeType": "CONSUME_PASSIVELY",
            "messageModel": "CLUSTERING", "consumeFromWhere": "CONSUME_FROM_LAST_OFFSET",
            "subscriptionDataSet": [], "unitMode": False}], "producerDataSet": []}
        r = request(sock, RemotingCommand.request(C.HEART_BEAT, {},
                                                  json.dumps(heartbeat).encode()))
        assert r is not None and "maxTopicNums" in (r.remark or "")
        # what exists goes on working
        r = request(sock, send_request("Wide", 3, b"still here"))
        assert r is not None and r.code == 0
    assert len(topic_configs(srv)) == 40


def test_a_full_descriptor_table_gives_an_error_response_not_a_crash(
        serve: ServeFactory) -> None:
    srv = serve(LIMITS)
    assert create(srv, "Files", 4).code == 0
    pid = srv.proc.pid
    assert pid is not None
    with connect(srv.broker_address) as sock:
        assert request(sock, send_request("Files", 0, b"before")).code == 0
        soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        # An open takes the lowest free number and fails when that is past the limit: the
        # count of open descriptors is not it when the table has holes below its top.
        taken = {int(fd.name) for fd in Path(f"/proc/{pid}/fd").iterdir()}
        lowest_free = min(set(range(len(taken) + 1)) - taken)
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (lowest_free, hard))
        try:
            # queue 1 has no file yet: creating it fails with EMFILE
            r = request(sock, send_request("Files", 1, b"refused"))
            assert r is not None and r.code == ResponseCode.SYSTEM_ERROR
            found = re.fullmatch(r"the server is out of file descriptors "
                                 r"\(incident ([0-9a-f]{8})\)", r.remark or "")
            assert found, r.remark
            # queue 0's file is open: it goes on working
            assert request(sock, send_request("Files", 0, b"during")).code == 0
            # a new connection cannot be accepted: it is closed, the listener lives on
            with connect(srv.broker_address) as late:
                assert request(late, max_offset_request()) is None
        finally:
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
        assert request(sock, send_request("Files", 1, b"after")).code == 0
        assert answers(srv)
    log = srv.proc.log()
    assert f"(incident {found[1]})" in log and "Too many open files" in log
    # nothing half-written: queue 1 holds exactly the message sent after the limit was lifted
    assert call(srv.broker, C.GET_MAX_OFFSET, {"topic": "Files", "queueId": "1"}
                ).ext_fields["offset"] == "1"
    assert call(srv.broker, C.GET_MAX_OFFSET, {"topic": "Files", "queueId": "0"}
                ).ext_fields["offset"] == "2"
    r = call(srv.broker, C.PULL_MESSAGE, {
        "consumerGroup": "G", "topic": "Files", "queueId": "1", "queueOffset": "0",
        "maxMsgNums": "32", "sysFlag": "4", "commitOffset": "0", "suspendTimeoutMillis": "0",
        "subscription": "*", "subVersion": "0"})
    assert r.code == 0 and b"after" in r.body and b"refused" not in r.body


def test_a_full_disk_refuses_sends_with_a_reason_and_a_log_line(serve: ServeFactory) -> None:
    # every disk is "full" above this ratio; the store notices at its first disk check (10 s).
    # Given in broker.conf: the broker passes it on to the store's disk alarm.
    srv = serve(LIMITS + "diskSpaceWarningLevelRatio=0.000001\n")
    assert create(srv, "Full", 1).code == 0
    stored = 0
    with connect(srv.broker_address) as sock:
        def refused() -> bool:
            nonlocal stored
            r = request(sock, send_request("Full", 0, b"m%d" % stored))
            assert r is not None
            stored += r.code == 0
            return r.code == ResponseCode.SERVICE_NOT_AVAILABLE
        wait_until(refused, 15, interval_s=0.5, what="a send refused for a full disk")
        r = request(sock, send_request("Full", 0, b"refused"))
        assert (r.code, r.remark) == (ResponseCode.SERVICE_NOT_AVAILABLE,
                                      "disk above 0% full; writes refused")
        assert request(sock, max_offset_request("Full")).ext_fields["offset"] == str(stored)
    assert answers(srv)
    assert "full: writes refused" in srv.proc.log()


def test_the_namesrv_takes_its_limits_from_namesrv_config(serve: ServeFactory,
                                                          tmp_path: Path) -> None:
    ns_conf = tmp_path / "namesrv.conf"
    ns_conf.write_text("serverMaxConnections=3\n")
    srv = serve("", "--namesrv-config", str(ns_conf))
    # the broker's registration connection (made before the ready line) is one of the three
    socks = [connect(srv.namesrv_address) for _ in range(4)]
    try:
        answered = [request(s, RemotingCommand.request(C.GET_ROUTEINFO_BY_TOPIC,
                                                       {"topic": "TBW102"})) for s in socks]
        assert sum(a is not None for a in answered) == 2
    finally:
        for s in socks:
            s.close()


@pytest.mark.parametrize("conf, reason", [
    ("serverMaxBufferedBytesPerConnection=1000", "max_buffered_bytes 1000 is below max_frame"),
    ("serverMaxConnections=many", "serverMaxConnections='many': not a number"),
    ("defaultTopicQueueNums=300", "defaultTopicQueueNums 300 is above maxQueueNumsPerTopic 256"),
    ("maxTopicNums=0", "maxTopicNums must be at least 1, not 0"),
    ("serverChannelMaxIdleTimeSeconds=-1", "timeouts must be 0 (off) or positive"),
])
def test_a_limit_that_cannot_work_stops_serve_with_one_line(serve: ServeFactory, conf: str,
                                                            reason: str) -> None:
    with pytest.raises(ServeError) as failed:
        serve(conf)
    errors = [line for line in str(failed.value).splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and reason in errors[0], str(failed.value)
    assert "Traceback" not in str(failed.value)
