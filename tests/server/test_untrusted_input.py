"""Untrusted input on the wire, against a real `rmqstore serve` on loopback: every identifier
is checked where it enters and a refusal stores nothing.

Bodies flagged compressed must inflate within maxMessageSize (a zlib bomb is refused with the
broker's memory bounded); producers cannot write the system topics (TopicValidator); topic
configs, groups, queue ids, offsets and batch sizes are checked before anything is written.
"""

from __future__ import annotations

import itertools
import json
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from rmqstore.protocol import RequestCode, ResponseCode
from rmqstore.protocol.message import decode_messages, encode_batch
from rmqstore.server.testing import (
    ServeError,
    ServeProcess,
    call,
    create_topic,
    free_broker_port,
    free_port,
    max_offset,
)

C, R = RequestCode, ResponseCode
MAX_MESSAGE = 4 << 20  # the broker's maxMessageSize (default)
_names = itertools.count()


class Broker:
    def __init__(self, tmp: Path) -> None:
        self.port = free_broker_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.data = tmp / "data"
        self.proc = ServeProcess(["--data", str(self.data), "--namesrv-port", str(free_port()),
                                  "--broker-port", str(self.port), "--http-port", "0"],
                                 tmp / "serve.log")

    def rss_peak_kb(self) -> int:
        """VmHWM of the serve process: its resident set's high-water mark."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError("no VmHWM")

    def send(self, topic: str, body: bytes, *, sys_flag: int = 0, queue_id: int | str = 0,
             props: str = "", code: int = C.SEND_MESSAGE_V2):
        return call(self.addr, code, {
            "a": "PG", "b": topic, "c": "TBW102", "d": "4", "e": str(queue_id),
            "f": str(sys_flag), "g": str(int(time.time() * 1000)), "h": "0", "i": props,
            "j": "0", "k": "false", "m": "true" if code == C.SEND_BATCH_MESSAGE else "false"},
            body, timeout_s=20)

    def pull(self, topic: str, offset: int = 0, *, queue_id: int | str = 0, group: str = "CG",
             sys_flag: int = 4, commit: int | str = 0):
        return call(self.addr, C.PULL_MESSAGE, {
            "consumerGroup": group, "topic": topic, "queueId": str(queue_id),
            "queueOffset": str(offset), "maxMsgNums": "32", "sysFlag": str(sys_flag),
            "commitOffset": str(commit), "suspendTimeoutMillis": "0", "subscription": "*",
            "subVersion": "0"})

    def topic_configs(self) -> dict:
        r = call(self.addr, C.GET_ALL_TOPIC_CONFIG)
        assert r.code == R.SUCCESS
        return json.loads(r.body)["topicConfigTable"]


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = Broker(tmp_path_factory.mktemp("untrusted"))
    b.proc.start()
    try:
        yield b
    finally:
        b.proc.stop()


@pytest.fixture()
def topic(broker: Broker) -> str:
    name = f"U{next(_names)}"
    create_topic(broker.addr, name, queues=2)
    return name


def _bomb(inflated: int) -> bytes:
    return zlib.compress(b"\0" * inflated, 9)


# -- bodies flagged compressed --------------------------------------------------------------
@pytest.mark.parametrize("body,flag", [
    (b"plain text, flagged zlib", 0x1),
    (zlib.compress(b"x" * 5000)[:-3], 0x1),  # a stream cut short
    (b"not lz4", 0x1 | (1 << 8)),
    (zlib.compress(b"zstd?"), 0x1 | (2 << 8)),
], ids=["not-zlib", "cut-short", "not-lz4", "zstd"])
def test_a_body_flagged_compressed_that_does_not_inflate_is_refused(broker, topic, body, flag):
    r = broker.send(topic, body, sys_flag=flag)
    assert r.code == R.MESSAGE_ILLEGAL, r.remark
    assert max_offset(broker.addr, topic, 0) == 0
    assert broker.send(topic, b"next").code == R.SUCCESS  # the connection and topic go on


def test_zlib_bombs_are_refused_with_the_broker_s_memory_bounded(broker, topic):
    """A 255 KB zlib stream that inflates to 256 MiB took the process to ~510 MB; eight of
    96 MiB reached 924 MB. Each is refused now, inflated no further than maxMessageSize."""
    bombs = [_bomb(256 << 20), *[_bomb(96 << 20)] * 8]
    assert len(bombs[0]) < 300_000
    before = broker.rss_peak_kb()
    started = time.monotonic()
    for bomb in bombs:
        r = broker.send(topic, bomb, sys_flag=0x1)
        assert r.code == R.MESSAGE_ILLEGAL and "inflates past" in r.remark
    assert time.monotonic() - started < 10
    grown_mb = (broker.rss_peak_kb() - before) / 1024
    assert grown_mb < 48, f"peak RSS grew {grown_mb:.0f} MB"
    assert max_offset(broker.addr, topic, 0) == 0


def test_a_compressed_body_is_stored_and_pulled_as_sent(broker, topic):
    """The broker checks a compressed body at the door and serves it as stored: the
    consumer inflates it (as RocketMQ's broker, which never decompresses on a pull)."""
    packed = zlib.compress(b"payload " * 2000, 5)
    assert broker.send(topic, b"before").code == R.SUCCESS
    assert broker.send(topic, packed, sys_flag=0x1).code == R.SUCCESS
    r = broker.pull(topic)
    assert r.code == R.SUCCESS
    raw, plain = decode_messages(r.body, decompress=False), decode_messages(r.body)
    assert [m.body for m in raw] == [b"before", packed]
    assert plain[1].body == b"payload " * 2000 and plain[1].sys_flag & 0x1


# -- system topics, topic configs, groups ---------------------------------------------------
@pytest.mark.parametrize("name", ["SCHEDULE_TOPIC_XXXX", "RMQ_SYS_TRANS_HALF_TOPIC",
                                  "RMQ_SYS_TRANS_OP_HALF_TOPIC", "TRANS_CHECK_MAX_TIME_TOPIC",
                                  "SELF_TEST_TOPIC", "OFFSET_MOVED_EVENT", "rmq_sys_wheel_timer",
                                  "rmq_sys_set_aside"])
def test_producers_cannot_write_system_topics(broker, name):
    before = {q: max_offset(broker.addr, name, q) for q in range(2)}
    for code in (C.SEND_MESSAGE_V2, C.SEND_BATCH_MESSAGE):
        body = encode_batch([(b"x", 0, "")]) if code == C.SEND_BATCH_MESSAGE else b"x"
        r = broker.send(name, body, code=code, props="DELAY\x011\x02" if "SCHED" in name else "")
        assert r.code == R.NO_PERMISSION, r.remark
    assert {q: max_offset(broker.addr, name, q) for q in range(2)} == before


def test_the_trace_topic_stays_writable(broker):
    """RMQ_SYS_TRACE_TOPIC is a system topic clients write (not in isNotAllowedSendTopic)."""
    assert broker.send("RMQ_SYS_TRACE_TOPIC", b"trace").code == R.SUCCESS


@pytest.mark.parametrize("changes", [
    {"perm": "8"}, {"perm": "-1"}, {"perm": "64"}, {"perm": "six"},
    {"readQueueNums": "0"}, {"writeQueueNums": "100000"},
    {"topicFilterType": "ANY_TAG"},
    {"topic": "SCHEDULE_TOPIC_XXXX"}, {"topic": "TBW102"}, {"topic": "rmq_sys_mine"},
    {"topic": "BenchmarkTest"}, {"topic": "../../etc"}, {"topic": "t" * 128},
], ids=lambda c: "-".join(f"{k}={v[:12]}" for k, v in c.items()))
def test_a_topic_config_outside_the_rules_is_refused(broker, changes):
    name = f"Cfg{next(_names)}"
    ext = {"topic": name, "defaultTopic": "TBW102", "readQueueNums": "4", "writeQueueNums": "4",
           "perm": "6", "topicFilterType": "SINGLE_TAG", "topicSysFlag": "0", "order": "false",
           **changes}
    before = broker.topic_configs()
    r = call(broker.addr, C.UPDATE_AND_CREATE_TOPIC, ext)
    assert r.code == R.SYSTEM_ERROR, r.remark
    assert broker.topic_configs() == before


def test_perm_bits_of_rocketmq_are_accepted(broker):
    """PermName.isValid: 0..7, 0 being a topic neither read nor written."""
    for perm in (0, 2, 4, 6, 7):
        name = f"Perm{perm}x{next(_names)}"
        create_topic(broker.addr, name, perm=perm)
        assert broker.topic_configs()[name]["perm"] == perm


@pytest.mark.parametrize("group", ["../g", "g g", "g" * 256, "\u0433"])
def test_a_group_name_outside_the_rules_is_never_created(broker, topic, group):
    r = broker.pull(topic, group=group)
    assert r.code == R.SUBSCRIPTION_GROUP_NOT_EXIST
    r = call(broker.addr, C.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP,
             body=json.dumps({"groupName": group}).encode())
    assert r.code == R.SYSTEM_ERROR
    groups = json.loads(call(broker.addr, C.GET_ALL_SUBSCRIPTIONGROUP_CONFIG).body)
    assert group not in groups["subscriptionGroupTable"]


# -- queue ids, offsets, batches ------------------------------------------------------------
@pytest.mark.parametrize("queue_id", ["2", "9" * 40])
def test_a_send_or_pull_outside_the_topic_s_queues_is_refused(broker, topic, queue_id):
    assert broker.send(topic, b"x", queue_id=queue_id).code == R.SYSTEM_ERROR
    assert broker.pull(topic, queue_id=queue_id).code == R.SYSTEM_ERROR
    assert broker.pull(topic, queue_id="-" + queue_id).code == R.SYSTEM_ERROR
    assert [max_offset(broker.addr, topic, q) for q in range(2)] == [0, 0]


def test_a_send_to_queue_minus_one_lands_in_a_real_queue(broker, topic):
    """SendMessageProcessor picks a random write queue for a negative queue id."""
    r = broker.send(topic, b"anywhere", queue_id=-1)
    assert r.code == R.SUCCESS
    assert 0 <= int(r.ext_fields["queueId"]) < 2
    assert sum(max_offset(broker.addr, topic, q) for q in range(2)) == 1


@pytest.mark.parametrize("queue_id,offset", [
    (0, -5), (0, 10 ** 30), (0, 2), ("9" * 40, 0), (-1, 0), (2, 0)])
def test_a_consumer_offset_outside_its_queue_is_refused(broker, topic, queue_id, offset):
    assert broker.send(topic, b"one").code == R.SUCCESS
    r = call(broker.addr, C.UPDATE_CONSUMER_OFFSET, {
        "consumerGroup": "OffG", "topic": topic, "queueId": str(queue_id),
        "commitOffset": str(offset)})
    assert r.code == R.SYSTEM_ERROR, r.remark
    # The pull's own commit offset is dropped the same way; the pull itself is served.
    assert broker.pull(topic, group="OffG", sys_flag=5, commit=10 ** 30).code == R.SUCCESS
    r = call(broker.addr, C.QUERY_CONSUMER_OFFSET, {"consumerGroup": "OffG", "topic": topic,
                                                    "queueId": "0"})
    assert r.code == R.SUCCESS and int(r.ext_fields["offset"]) == 0  # nothing committed
    r = call(broker.addr, C.UPDATE_CONSUMER_OFFSET, {
        "consumerGroup": "OffG", "topic": f"{topic}-none", "queueId": "0", "commitOffset": "0"})
    assert r.code == R.TOPIC_NOT_EXIST


def test_committed_offsets_within_the_queue_reach_the_file(broker, topic):
    for _ in range(3):
        assert broker.send(topic, b"m").code == R.SUCCESS
    r = call(broker.addr, C.UPDATE_CONSUMER_OFFSET, {
        "consumerGroup": "FileG", "topic": topic, "queueId": "0", "commitOffset": "3"})
    assert r.code == R.SUCCESS
    r = call(broker.addr, C.QUERY_CONSUMER_OFFSET, {"consumerGroup": "FileG", "topic": topic,
                                                    "queueId": "0"})
    assert int(r.ext_fields["offset"]) == 3


def test_a_batch_over_the_message_limit_in_all_is_refused(broker, topic):
    """Two entries of 3 MiB each passed the 4 MiB limit: such a frame is now past the frame
    limit (maxMessageSize + 256 KiB) and closes its connection; a batch over the limit in all
    that fits a frame is refused whole."""
    data = encode_batch([(b"a" * (3 << 20), 0, ""), (b"b" * (3 << 20), 0, "")])
    with pytest.raises((ServeError, OSError)):
        broker.send(topic, data, code=C.SEND_BATCH_MESSAGE)
    data = encode_batch([(b"a" * (2 << 20) + b"a" * 65536, 0, "")] * 2)
    assert len(data) > MAX_MESSAGE
    r = broker.send(topic, data, code=C.SEND_BATCH_MESSAGE)
    assert r.code == R.MESSAGE_ILLEGAL, r.remark
    assert max_offset(broker.addr, topic, 0) == 0
    ok = broker.send(topic, encode_batch([(b"a" * (1 << 20), 0, "")] * 3),
                     code=C.SEND_BATCH_MESSAGE)
    assert ok.code == R.SUCCESS and max_offset(broker.addr, topic, 0) == 3


def test_a_compressed_batch_is_inflated_within_the_message_limit(broker, topic):
    """The C++ client compresses a whole batch body: its entries are stored uncompressed; one
    inflating past maxMessageSize (a bomb, or 5 MiB of entries) is refused and stores nothing."""
    entries = [(b"entry %d " % i * 40, 0, f"KEYS\x01k{i}\x02") for i in range(30)]
    packed = zlib.compress(encode_batch(entries))
    assert broker.send(topic, packed, sys_flag=0x1, code=C.SEND_BATCH_MESSAGE).code == R.SUCCESS
    raw = decode_messages(broker.pull(topic).body, decompress=False)
    assert [m.body for m in raw] == [e[0] for e in entries]
    assert not any(m.sys_flag & 0x1 for m in raw)
    for body in (_bomb(64 << 20), zlib.compress(encode_batch([(b"c" * (1 << 20), 0, "")] * 5))):
        r = broker.send(topic, body, sys_flag=0x1, code=C.SEND_BATCH_MESSAGE)
        assert r.code == R.MESSAGE_ILLEGAL and "compressed batch" in r.remark, r.remark
    assert max_offset(broker.addr, topic, 0) == len(entries)
