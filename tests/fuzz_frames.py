"""Frame fuzzing against a running `rmqstore serve`: frames made at random and mutated from valid
SEND, PULL, admin and NameServer requests (JSON and binary headers), thrown at its ports, then
checks that the server still answers and that every send it acknowledged reads back byte for
byte. Used by tests/server/test_fuzz.py (a few tens of thousands of frames) and by
benches/fuzz_soak.py (a million).

Reproducible: a FrameFuzzer draws everything from random.Random(seed).
"""

from __future__ import annotations

import json
import random
import re
import socket
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from rmqstore.protocol import FrameDecoder, RemotingCommand, RequestCode, SerializeType, encode
from rmqstore.protocol.frame import decode_frame, frame_limit
from rmqstore.protocol.header_codec import decode_header
from rmqstore.protocol.headers import (
    CreateTopicRequestHeader,
    SendMessageRequestHeader,
    SendMessageRequestHeaderV2,
)
from rmqstore.protocol.message import (
    SYSFLAG_COMPRESSED,
    decode_messages,
    decode_properties,
    encode_batch,
)

C = RequestCode
SEND_TOPICS = ("FuzzT0", "FuzzT1", "FuzzT2", "FuzzT3")  # created before the run, 4 queues each
CHECK_TOPIC = "FuzzCheck"  # only well-formed sends of the checker go there
CHECK_GROUP = "FuzzChecker"  # no fuzzed frame names it
# Codes whose purpose is to change the server under test (its config, its topics' existence,
# its routes' write permission): a fuzzed code never becomes one of them.
UNSAFE_CODES = frozenset({C.UPDATE_BROKER_CONFIG, 318, C.DELETE_TOPIC_IN_BROKER, 216, 205, 327,
                          C.UNREGISTER_BROKER})
TOPIC_CHANGING = frozenset({C.UPDATE_AND_CREATE_TOPIC})
# Properties that send a message somewhere else than its topic and queue (delay, timer,
# transaction): such a send is acknowledged but not read back where it was sent.
REDIRECTING = ("DELAY", "TIMER_DELIVER_MS", "TIMER_DELAY_SEC", "TIMER_DELAY_MS", "TRAN_MSG",
               "__STARTDELIVERTIME")
INTERESTING = ["", "0", "-1", "1", "2147483647", "-2147483648", "9223372036854775807",
               "-9223372036854775809", "1" * 40, "1e5", "0x10", " 7", "NaN", "true", "null",
               "TBW102", "SCHEDULE_TOPIC_XXXX", "rmq_sys_wheel_timer", "RMQ_SYS_TRANS_HALF_TOPIC",
               "%RETRY%FuzzG", "%DLQ%FuzzG", "../../../tmp/x", "a" * 300, "\u00e9\u4e2d",
               "\x00", "\x01\x02", "*", "TagA || TagB", "a=b\x01", "DefaultCluster"]


@dataclass
class Frame:
    data: bytes
    port: str  # "broker" or "namesrv"
    command: RemotingCommand | None  # what it decodes to, when it decodes on its own


@dataclass
class Acked:
    """A fuzzed send the server acknowledged: where it says it stored what."""

    topic: str
    queue_id: int
    queue_offset: int
    body: bytes  # as sent and stored: a compressed body is compared compressed
    compressed: bool = False  # flagged compressed (and so checked at the door)


_EXCEPTION_TEXT = re.compile(r"\w+(Error|Exception|error): ")  # "ValueError: ...", zlib's "error: "


@dataclass
class BatchResult:
    frames: int = 0
    connections: int = 0
    replies: int = 0
    acked: list[Acked] = field(default_factory=list)
    bad_remarks: list[str] = field(default_factory=list)
    compressed: int = 0  # acknowledged sends flagged compressed, read back like the others
    # Topics a fuzzed UPDATE_AND_CREATE_TOPIC may have reconfigured (fewer queues, no read
    # permission): their acknowledged messages may rightly become unreadable.
    reconfigured: set[str] = field(default_factory=set)

    def merge(self, other: BatchResult) -> None:
        self.frames += other.frames
        self.connections += other.connections
        self.replies += other.replies
        self.acked += other.acked
        self.bad_remarks += other.bad_remarks
        self.compressed += other.compressed
        self.reconfigured |= other.reconfigured


class FrameFuzzer:
    """Frames drawn from ``random.Random(seed)``; ``frames(n)`` yields n of them."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self._opaque = 1000

    def frames(self, n: int) -> Iterator[Frame]:
        for _ in range(n):
            yield self.frame()

    def frame(self) -> Frame:
        r = self.rng.random()
        if r < 0.08:
            return Frame(self._garbage(), self.rng.choice(("broker", "namesrv")), None)
        port, cmd = self._template()
        if r < 0.25:  # valid: the server must also be fed things it accepts
            return self._encoded(port, cmd)
        if r < 0.7:
            self._mutate_command(cmd)
            return self._encoded(port, cmd)
        frame = self._encoded(port, cmd)
        data = self._mutate_bytes(frame.data)
        return Frame(data, port, _decode(data))

    # -- templates ------------------------------------------------------------------------
    def _template(self) -> tuple[str, RemotingCommand]:
        rng = self.rng
        topic = rng.choice(SEND_TOPICS)
        body = rng.randbytes(rng.choice((0, 1, 16, 200, 3000)))
        props = "UNIQ_KEY\x01%032X\x02TAGS\x01Tag%d\x02" % (rng.getrandbits(128), rng.randrange(4))
        choice = rng.randrange(22)
        if choice < 5:
            return "broker", RemotingCommand.request(C.SEND_MESSAGE, {
                "producerGroup": "FuzzPG", "topic": topic, "defaultTopic": "TBW102",
                "defaultTopicQueueNums": "4", "queueId": str(rng.randrange(4)), "sysFlag": "0",
                "bornTimestamp": str(int(time.time() * 1000)), "flag": "0",
                "properties": props, "reconsumeTimes": "0", "unitMode": "false",
                "batch": "false"}, body)
        if choice < 8:  # the last of them flagged compressed, with a body that inflates
            flag = SYSFLAG_COMPRESSED if choice == 7 else 0
            return "broker", RemotingCommand.request(C.SEND_MESSAGE_V2, {
                "a": "FuzzPG", "b": topic, "c": "TBW102", "d": "4", "e": str(rng.randrange(4)),
                "f": str(flag), "g": str(int(time.time() * 1000)), "h": "0", "i": props,
                "j": "0", "k": "false", "m": "false"}, zlib.compress(body) if flag else body)
        if choice < 9:
            batch = encode_batch([(rng.randbytes(20), 0, props) for _ in range(3)])
            return "broker", RemotingCommand.request(C.SEND_BATCH_MESSAGE, {
                "a": "FuzzPG", "b": topic, "c": "TBW102", "d": "4", "e": str(rng.randrange(4)),
                "f": "0", "g": "0", "h": "0", "i": "", "j": "0", "k": "false", "m": "true"},
                batch)
        if choice < 12:
            return "broker", RemotingCommand.request(C.PULL_MESSAGE, {
                "consumerGroup": "FuzzG", "topic": topic, "queueId": str(rng.randrange(4)),
                "queueOffset": str(rng.randrange(50)), "maxMsgNums": "32",
                "sysFlag": str(rng.choice((0, 1, 4, 5))), "commitOffset": "0",
                "suspendTimeoutMillis": "0", "subscription": "*", "subVersion": "0"})
        if choice < 17:
            return "broker", self._admin(topic)
        return "namesrv", self._namesrv(topic)

    def _admin(self, topic: str) -> RemotingCommand:
        rng = self.rng
        admin_topic = "FuzzAdmin%d" % rng.randrange(4)
        group = "FuzzG%d" % rng.randrange(3)
        return rng.choice([
            lambda: RemotingCommand.request(C.UPDATE_AND_CREATE_TOPIC, {
                "topic": admin_topic, "defaultTopic": "TBW102", "readQueueNums": "2",
                "writeQueueNums": "2", "perm": "6", "topicFilterType": "SINGLE_TAG",
                "topicSysFlag": "0", "order": "false"}),
            lambda: RemotingCommand.request(C.GET_ALL_TOPIC_CONFIG),
            lambda: RemotingCommand.request(C.GET_MAX_OFFSET, {"topic": topic, "queueId": "0"}),
            lambda: RemotingCommand.request(C.UPDATE_CONSUMER_OFFSET, {
                "consumerGroup": group, "topic": topic, "queueId": "1", "commitOffset": "3"}),
            lambda: RemotingCommand.request(C.QUERY_CONSUMER_OFFSET, {
                "consumerGroup": group, "topic": topic, "queueId": "1"}),
            lambda: RemotingCommand.request(C.HEART_BEAT, {}, json.dumps({
                "clientID": "fuzz@1", "producerDataSet": [{"groupName": "FuzzPG"}],
                "consumerDataSet": [{"groupName": group, "consumeType": "CONSUME_PASSIVELY",
                                     "messageModel": "CLUSTERING",
                                     "consumeFromWhere": "CONSUME_FROM_LAST_OFFSET",
                                     "subscriptionDataSet": [{"topic": topic,
                                                              "subString": "*"}],
                                     "unitMode": False}]}).encode()),
            lambda: RemotingCommand.request(C.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, {},
                                            json.dumps({"groupName": group}).encode()),
            lambda: RemotingCommand.request(C.SEARCH_OFFSET_BY_TIMESTAMP, {
                "topic": topic, "queueId": "0", "timestamp": str(int(time.time() * 1000))}),
            lambda: RemotingCommand.request(C.GET_CONSUMER_LIST_BY_GROUP,
                                            {"consumerGroup": group}),
            lambda: RemotingCommand.request(C.CONSUMER_SEND_MSG_BACK, {
                "offset": "0", "group": group, "delayLevel": "0", "originMsgId": "00",
                "originTopic": topic, "unitMode": "false", "maxReconsumeTimes": "2"}),
            lambda: RemotingCommand.request(C.END_TRANSACTION, {
                "producerGroup": "FuzzPG", "tranStateTableOffset": "0", "commitLogOffset": "0",
                "commitOrRollback": "8", "fromTransactionCheck": "false", "msgId": "00"}),
            lambda: RemotingCommand.request(C.LOCK_BATCH_MQ, {}, json.dumps({
                "consumerGroup": group, "clientId": "fuzz@1", "mqSet": [
                    {"topic": topic, "brokerName": "b", "queueId": 0}]}).encode()),
            lambda: RemotingCommand.request(C.QUERY_MESSAGE, {
                "topic": topic, "key": "k", "maxNum": "32", "beginTimestamp": "0",
                "endTimestamp": str(int(time.time() * 1000))}),
            lambda: RemotingCommand.request(C.VIEW_MESSAGE_BY_ID, {"offset": "0"}),
        ])()

    def _namesrv(self, topic: str) -> RemotingCommand:
        rng = self.rng
        return rng.choice([
            lambda: RemotingCommand.request(C.GET_ROUTEINFO_BY_TOPIC, {"topic": topic}),
            lambda: RemotingCommand.request(C.GET_BROKER_CLUSTER_INFO),
            lambda: RemotingCommand.request(C.GET_ALL_TOPIC_LIST_FROM_NAMESERVER),
            lambda: RemotingCommand.request(C.PUT_KV_CONFIG, {
                "namespace": "FuzzNS", "key": "k%d" % rng.randrange(5), "value": "v"}),
            lambda: RemotingCommand.request(C.GET_KV_CONFIG, {"namespace": "FuzzNS",
                                                              "key": "k1"}),
            lambda: RemotingCommand.request(C.REGISTER_BROKER, {
                "brokerName": "fuzz-broker", "brokerAddr": "127.0.0.1:1",
                "clusterName": "FuzzCluster", "haServerAddr": "127.0.0.1:2", "brokerId": "0",
                "compressed": "false"}, json.dumps({
                    "filterServerList": [], "topicConfigSerializeWrapper": {
                        "dataVersion": {"counter": 1, "timestamp": 1},
                        "topicConfigTable": {"FuzzRouted": {
                            "topicName": "FuzzRouted", "readQueueNums": 1,
                            "writeQueueNums": 1, "perm": 6}}}}).encode()),
        ])()

    # -- mutations ------------------------------------------------------------------------
    def _mutate_command(self, cmd: RemotingCommand) -> None:
        rng = self.rng
        for _ in range(rng.randint(1, 3)):
            op = rng.randrange(9)
            keys = list(cmd.ext_fields)
            if op == 0:
                code = rng.choice((rng.randrange(-40000, 40000), rng.randrange(0, 400)))
                if code not in UNSAFE_CODES:
                    cmd.code = code
            elif op == 1 and keys:
                del cmd.ext_fields[rng.choice(keys)]
            elif op in (2, 3) and keys:
                cmd.ext_fields[rng.choice(keys)] = self._value()
            elif op == 4:
                cmd.ext_fields[self._value()[:20]] = self._value()
            elif op == 5:
                cmd.body = rng.randbytes(rng.choice((0, 3, 100, 5000)))
            elif op == 6 and cmd.body:
                cut = rng.randrange(len(cmd.body))
                cmd.body = cmd.body[:cut] + rng.randbytes(rng.randrange(8)) + cmd.body[cut + 1:]
            elif op == 7:
                cmd.flag = rng.choice((1, 2, 3, rng.getrandbits(31)))
            else:
                cmd.remark = self._value()

    def _value(self) -> str:
        rng = self.rng
        if rng.random() < 0.7:
            return rng.choice(INTERESTING)
        return "".join(chr(rng.randrange(1, 0x2FF)) for _ in range(rng.randrange(12)))

    def _encoded(self, port: str, cmd: RemotingCommand) -> Frame:
        self._opaque += 1
        cmd.opaque = self._opaque
        cmd.serialize_type = self.rng.choice((SerializeType.JSON, SerializeType.ROCKETMQ))
        if cmd.serialize_type == SerializeType.JSON and self.rng.random() < 0.3:
            data = self._json_numbers(cmd)  # C++ writes some fields as JSON numbers
        else:
            try:
                data = encode(cmd)
            except Exception:  # noqa: BLE001 - a value our encoder refuses: send raw JSON
                data = self._json_numbers(cmd)
        return Frame(data, port, _decode(data))

    def _json_numbers(self, cmd: RemotingCommand) -> bytes:
        ext: dict[str, object] = {}
        for k, v in cmd.ext_fields.items():
            ext[k] = int(v) if re.fullmatch(r"-?[0-9]{1,29}", v) else v
        header = json.dumps({"code": cmd.code, "extFields": ext, "flag": cmd.flag,
                             "language": "CPP", "opaque": cmd.opaque,
                             "serializeTypeCurrentRPC": "JSON", "version": 403}).encode()
        return struct.pack(">iI", 4 + len(header) + len(cmd.body), len(header)) + header \
            + cmd.body

    def _mutate_bytes(self, data: bytes) -> bytes:
        rng = self.rng
        buf = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            op = rng.randrange(6)
            if op == 0 and buf:
                buf[rng.randrange(len(buf))] = rng.randrange(256)
            elif op == 1:
                pos = rng.randrange(len(buf) + 1)
                buf[pos:pos] = rng.randbytes(rng.randrange(1, 9))
            elif op == 2 and len(buf) > 8:
                start = rng.randrange(8, len(buf))
                del buf[start:start + rng.randrange(1, 16)]
            elif op == 3 and len(buf) >= 4:
                struct.pack_into(">i", buf, 0, rng.choice(
                    (0, 3, 4, len(buf) - 3, len(buf) - 5, 2**31 - 1, -1, 16 << 20)))
            elif op == 4 and len(buf) >= 8:
                struct.pack_into(">I", buf, 4, (rng.randrange(256) << 24)
                                 | rng.choice((0, 0xFFFFFF, rng.randrange(1 << 24))))
            else:
                del buf[rng.randrange(len(buf) + 1):]
        return bytes(buf)

    def _garbage(self) -> bytes:
        rng = self.rng
        body = rng.randbytes(rng.randrange(64))
        length = rng.choice((len(body) + 4, rng.randrange(-10, 100), 2**31 - 1))
        return struct.pack(">iI", length, rng.getrandbits(32)) + body


def _decode(data: bytes) -> RemotingCommand | None:
    """The command a frame stands for, if it is exactly one well-formed frame."""
    if len(data) < 8 or struct.unpack_from(">i", data)[0] != len(data) - 4:
        return None
    try:
        return decode_frame(data[4:])
    except Exception:  # noqa: BLE001 - anything our decoder refuses is simply not tracked
        return None


# -- throwing frames at a server --------------------------------------------------------------
# An impossible length word: the server closes the connection on it. The server closing first
# leaves the TIME_WAIT on its own port rather than on one of the client's ephemeral ports: tens
# of thousands of connections would otherwise exhaust those for a minute, for every process on
# the machine. Where we close first, we reset (_reset) for the same reason.
END = struct.pack(">i", -1)
_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST, no TIME_WAIT
SENTINEL_CODE = C.GET_MAX_OFFSET  # served by a task, so answered after the tasks before it ran


def throw(address: tuple[str, int], frames: list[Frame], result: BatchResult,
          timeout_s: float = 5.0) -> None:
    """Send the frames on one new connection and read every reply until the server closes;
    note the sends it acknowledged and any remark that looks like an exception's text.

    The frames the server routes (the longest prefix it decodes) go first, with a sentinel
    request whose answer says the handlers they started have run; then the rest, which ends
    the connection (a frame the server refuses, or END), so that no handler is cancelled by a
    close that arrived in the same read."""
    sent = {f.command.opaque: f.command for f in frames if f.command is not None}
    result.reconfigured.update(filter(None, map(_reconfigures, sent.values())))
    head, tail = _routed_prefix(frames)
    sentinel = RemotingCommand.request(SENTINEL_CODE, {"topic": SEND_TOPICS[0], "queueId": "0"})
    sentinel.opaque = 1  # fuzzed opaques start at 1001
    with socket.create_connection(address, timeout=timeout_s) as sock:
        result.connections += 1
        result.frames += len(frames)
        reader = _Replies(sock, sent, result)
        try:
            sock.sendall(head + encode(sentinel))
            reader.until(sentinel.opaque)
            ending = _ending(tail)
            sock.sendall(tail + END if ending == "clean" else tail)
            if ending == "partial":  # the server would wait for the rest, and nothing after
                _reset(sock)  # it can be routed: end it here
                return
        except OSError:
            pass  # closed early: the replies before are still readable
        reader.until(None)


def _reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)


class _Replies:
    """Reads a connection's replies, noting each in the BatchResult."""

    def __init__(self, sock: socket.socket, sent: dict[int, RemotingCommand],
                 result: BatchResult) -> None:
        self._sock = sock
        self._sent = sent
        self._result = result
        self._decoder = FrameDecoder()

    def until(self, opaque: int | None) -> None:
        """Read until the reply with ``opaque`` (None: until the server closes)."""
        while True:
            data = self._sock.recv(65536)  # OSError (reset, timeout) ends the connection
            if not data:
                if opaque is not None:
                    raise ConnectionError("closed before the sentinel's answer")
                return
            for reply in self._decoder.feed(data):  # FrameError: the server wrote a bad frame
                if not reply.is_response:  # NOTIFY_CONSUMER_IDS_CHANGED after a heartbeat
                    continue
                if opaque is not None and reply.opaque == opaque:
                    return
                self._result.replies += 1
                _note(reply, self._sent, self._result)


def _reconfigures(cmd: RemotingCommand) -> str | None:
    """The topic ``cmd`` would create or change, if it is a topic change the server accepts
    (decoded by the server's own header codec)."""
    if cmd.code not in TOPIC_CHANGING:
        return None
    try:
        return decode_header(CreateTopicRequestHeader, cmd.ext_fields).topic
    except Exception:  # noqa: BLE001 - refused by the server as well
        return None


def _routed_prefix(frames: list[Frame]) -> tuple[bytes, bytes]:
    """(the frames the server decodes and routes, the rest): the prefix ends before the first
    frame that the server would refuse or wait on."""
    decoder, cut = FrameDecoder(frame_limit()), 0
    while cut < len(frames):
        try:
            for _ in decoder.feed(frames[cut].data):
                pass
        except Exception:  # noqa: BLE001 - FrameError and the header decoders' errors
            break
        if decoder.buffered_bytes:
            break
        cut += 1
    return b"".join(f.data for f in frames[:cut]), b"".join(f.data for f in frames[cut:])


def _ending(data: bytes) -> str:
    """How the server's decoder ends on ``data``: "closes" (a frame it refuses), "partial" (an
    incomplete frame it would wait for) or "clean"."""
    decoder = FrameDecoder(frame_limit())
    try:
        for _ in decoder.feed(data):
            pass
    except Exception:  # noqa: BLE001 - FrameError and the header decoders' errors
        return "closes"
    return "partial" if decoder.buffered_bytes else "clean"


def _note(reply: RemotingCommand, sent: dict[int, RemotingCommand], result: BatchResult) -> None:
    remark = reply.remark or ""
    if "Traceback" in remark or _EXCEPTION_TEXT.match(remark):
        result.bad_remarks.append(remark)
    request = sent.get(reply.opaque)
    if reply.code != 0 or request is None:
        return
    acked = acked_send(request, reply)
    if acked is not None:
        result.acked.append(acked)
        result.compressed += acked.compressed


def acked_send(request: RemotingCommand, reply: RemotingCommand) -> Acked | None:
    """Where an acknowledged plain send says its message is, if it stayed in its topic."""
    if request.code not in (C.SEND_MESSAGE, C.SEND_MESSAGE_V2):
        return None
    try:
        header_cls = (SendMessageRequestHeaderV2 if request.code == C.SEND_MESSAGE_V2
                      else SendMessageRequestHeader)
        h = decode_header(header_cls, request.ext_fields)
        props = decode_properties(h.properties or "")
        queue_id = int(reply.ext_fields["queueId"])
        offset = int(reply.ext_fields["queueOffset"])
    except Exception:  # noqa: BLE001 - an ack we cannot place is not checked
        return None
    if h.batch or h.topic.startswith("%") or h.sys_flag & 0xC or \
            any(k in props for k in REDIRECTING):
        return None
    return Acked(h.topic, queue_id, offset, request.body, bool(h.sys_flag & SYSFLAG_COMPRESSED))


def pull_one(broker: tuple[str, int], topic: str, queue_id: int,
             offset: int) -> tuple[int, bytes | None]:
    """(response code, the stored body at ``offset``) through PULL_MESSAGE."""
    cmd = RemotingCommand.request(C.PULL_MESSAGE, {
        "consumerGroup": CHECK_GROUP, "topic": topic, "queueId": str(queue_id),
        "queueOffset": str(offset), "maxMsgNums": "1", "sysFlag": "4", "commitOffset": "0",
        "suspendTimeoutMillis": "0", "subscription": "*", "subVersion": "0"})
    reply = call(broker, cmd)
    if reply.code != 0:
        return reply.code, None
    (msg, *_rest) = decode_messages(reply.body, decompress=False)
    assert (msg.topic, msg.queue_id, msg.queue_offset) == (topic, queue_id, offset)
    return 0, msg.body


def call(address: tuple[str, int], cmd: RemotingCommand, timeout_s: float = 5.0
         ) -> RemotingCommand:
    with socket.create_connection(address, timeout=timeout_s) as sock:
        sock.sendall(encode(cmd))
        decoder = FrameDecoder()
        while True:
            data = sock.recv(65536)
            if not data:
                raise AssertionError(f"closed without answering code {cmd.code}")
            for reply in decoder.feed(data):
                if reply.opaque == cmd.opaque:
                    _reset(sock)
                    return reply


# -- a session: prepare the topics, throw batches, check the server ----------------------------
class FuzzSession:
    """Fuzzing one server: ``prepare()`` once, then ``batch()`` and ``check()`` in turn."""

    def __init__(self, broker: tuple[str, int], namesrv: tuple[str, int], seed: int) -> None:
        self.broker = broker
        self.namesrv = namesrv
        self.fuzzer = FrameFuzzer(seed)
        self.rng = random.Random(seed)
        self.checks: list[Acked] = []  # the checker's own well-formed sends
        self.reconfigured: set[str] = set()  # see BatchResult.reconfigured

    def prepare(self) -> None:
        for topic in (*SEND_TOPICS, CHECK_TOPIC):
            r = call(self.broker, RemotingCommand.request(C.UPDATE_AND_CREATE_TOPIC, {
                "topic": topic, "defaultTopic": "TBW102", "readQueueNums": "4",
                "writeQueueNums": "4", "perm": "6", "topicFilterType": "SINGLE_TAG",
                "topicSysFlag": "0", "order": "false"}))
            assert r.code == 0, r.remark

    def batch(self, n: int) -> BatchResult:
        """Throw n frames, a few per connection: a bad frame ends its connection."""
        result = BatchResult()
        frames = list(self.fuzzer.frames(n))
        while frames:
            k = self.rng.choice((1, 1, 2, 3, 8))
            chunk, frames = frames[:k], frames[k:]
            throw(self.broker if chunk[0].port == "broker" else self.namesrv, chunk, result)
        return result

    def check(self, result: BatchResult) -> None:
        """The server still routes, stores and reads back: AssertionError if not. The sends
        the batch got acknowledged and every earlier check send must read back."""
        self.reconfigured |= result.reconfigured
        r = call(self.namesrv, RemotingCommand.request(C.GET_ROUTEINFO_BY_TOPIC,
                                                       {"topic": CHECK_TOPIC}))
        assert r.code == 0, f"the NameServer answered {r.code}: {r.remark}"
        n = len(self.checks)
        body = b"check %d \x00\xff" % n + self.rng.randbytes(self.rng.randrange(64))
        cmd = RemotingCommand.request(C.SEND_MESSAGE_V2, {
            "a": "CheckPG", "b": CHECK_TOPIC, "c": "TBW102", "d": "4", "e": str(n % 4),
            "f": "0", "g": "0", "h": "0", "i": "", "j": "0", "k": "false", "m": "false"}, body)
        cmd.serialize_type = SerializeType.ROCKETMQ if n % 2 else SerializeType.JSON
        r = call(self.broker, cmd)
        assert r.code == 0, f"a well-formed send refused: {r.code} {r.remark}"
        self.checks.append(Acked(CHECK_TOPIC, n % 4, int(r.ext_fields["queueOffset"]), body))
        failures = self.verify(self.checks + result.acked)
        assert not failures, failures[:5]

    def verify(self, acked: list[Acked]) -> list[str]:
        """Pull each acknowledged message; what did not read back byte for byte. A message
        in a topic that fuzzed admin requests reconfigured is not read."""
        failures = []
        for a in acked:
            if a.topic in self.reconfigured:
                continue
            code, body = pull_one(self.broker, a.topic, a.queue_id, a.queue_offset)
            if code != 0 or body != a.body:
                failures.append(f"acknowledged {a.topic}/{a.queue_id}@{a.queue_offset}: pull "
                                f"{code}, {'other bytes' if body is not None else 'nothing'}")
        return failures
