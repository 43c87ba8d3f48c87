"""The broker's native send path (handlers/send_native.py, _native/send_parse.c): what it takes
it stores and answers byte for byte as SendProcessor does, and what it must not take it leaves
to SendProcessor. Two brokers, one with the path turned off (RMQSTORE_NATIVE_SEND=0), get the
same requests over raw sockets; their answers and commit-log records are compared."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rmqstore._native import new_send_path
from rmqstore.filenames import offset_name
from rmqstore.protocol import FrameDecoder, RemotingCommand, encode
from rmqstore.protocol.frame import decode_frame
from rmqstore.protocol.header_codec import decode_header, encode_header
from rmqstore.protocol.headers import SendMessageRequestHeader, SendMessageRequestHeaderV2
from rmqstore.protocol.json_template import JsonFrameTemplate
from rmqstore.server.broker.handlers.send import _stored_properties
from rmqstore.server.broker.handlers.send_native import ENV_SWITCH
from rmqstore.server.testing import create_topic

from .conftest import ServeFactory, connect, request
from .test_send_properties import _text

FAST, HEADER, ONEWAY, FIELDS, PROPERTIES = 0, 2, 3, 4, 5
SKIP = frozenset({"DELAY", "TRAN_MSG"})


def _ext(topic: str = "T", queue_id: int = 0, props: str = "", **fields: object) -> dict:
    header = SendMessageRequestHeaderV2(
        producer_group="g", topic=topic, default_topic="TBW102", default_topic_queue_nums=4,
        queue_id=queue_id, sys_flag=0, born_timestamp=1_700_000_000_000, flag=0,
        properties=props, reconsume_times=0, unit_mode=False, batch=False)
    ext = encode_header(header)
    ext.update({k: str(v) for k, v in fields.items()})
    return ext


def _frame(ext: dict, code: int = 310, flag: int = 0, opaque: int = 1) -> bytes:
    return encode(RemotingCommand(code=code, ext_fields=ext, body=b"b" * 20, opaque=opaque,
                                  flag=flag))[4:]


@given(region=st.text(max_size=20), trace=st.booleans(), opaque=st.integers(0, 2**31 - 1),
       host=st.binary(min_size=8, max_size=8) | st.binary(min_size=20, max_size=20),
       phys=st.integers(0, 2**63 - 1), queue_id=st.integers(0, 2**31 - 1),
       queue_offset=st.integers(0, 2**63 - 1))
@example(region='%s of 100%d "q" \\ é', trace=True, opaque=7, host=b"\x7f\0\0\1\0\0\x27\x11",
         phys=2**40, queue_id=3, queue_offset=12)
def test_the_native_answer_is_the_template_s_frame(region, trace, opaque, host, phys,
                                                   queue_id, queue_offset) -> None:
    """SendPath.answer fills SendProcessor's SUCCESS template (any region text: quotes, '%',
    non-ASCII) to the bytes JsonFrameTemplate.frame makes, msgId the offset message id."""
    template = JsonFrameTemplate(0, {
        "msgId": None, "queueId": None, "queueOffset": None, "MSG_REGION": region,
        "TRACE_ON": "true" if trace else "false"})
    path = new_send_path("C1", SKIP, 1 << 16, template.pieces())
    assert path.answer(opaque, host, phys, queue_id, queue_offset) == template.frame(
        opaque, f"{host.hex().upper()}{phys:016X}", str(queue_id), str(queue_offset))


@given(_text)
def test_native_stored_properties_are_the_python_path_s(text: str) -> None:
    parsed = new_send_path("C1", SKIP, 1 << 16).parse(_frame(_ext(props=text)))
    _, encoded, wait = _stored_properties(text, "C1")
    if type(parsed) is int:
        assert parsed == (PROPERTIES if text.isascii() else HEADER)
        return
    assert encoded is not None and not SKIP & set(_stored_properties(text, "C1")[0])
    assert (parsed[8], parsed[7]) == (encoded, wait)


def test_a_common_send_is_read_whole() -> None:
    props = "UNIQ_KEY\x01U1\x02KEYS\x01k1 k2\x02TAGS\x01tg\x02WAIT\x01false\x02"
    parsed = new_send_path("C1", SKIP, 1 << 16).parse(_frame(_ext("T2", 3, props), opaque=9))
    assert parsed == (310, 9, "T2", 3, 0, 1_700_000_000_000, 0, False,
                      b"UNIQ_KEY\x01U1\x02KEYS\x01k1 k2\x02TAGS\x01tg\x02CLUSTER\x01C1\x02",
                      "U1", "k1 k2", 3699, b"b" * 20)  # "tg".hashCode()


# What rocketmq-client-cpp 1.2.x (PyPI rocketmq 0.4.4) sends: code 10, some fields as JSON
# numbers, bools as "0", a signature even without ACL, a newline after the header.
CPP_HEADER = (
    b'{"code":10,"extFields":{"AccessKey":"","OnsChannel":"ALIYUN","Signature":"AV1ikbu0/k'
    b'BHraJ/UImerybGhmk=","batch":"0","bornTimestamp":"1796580987579","defaultTopic":"TBW102"'
    b',"defaultTopicQueueNums":4,"flag":0,"producerGroup":"gcpp","properties":"KEYS\\u0001k0'
    b'\\u0002TAGS\\u0001tg\\u0002UNIQ_KEY\\u00010100007F0000166500003BED08230100\\u0002WAIT'
    b'\\u0001true\\u0002","queueId":%d,"reconsumeTimes":"0","sysFlag":0,"topic":"T","unitMode"'
    b':"0"},"flag":0,"language":"CPP","opaque":%d,"remark":"","version":63}\n')


def _cpp_frame(queue_id: int, opaque: int, body: bytes = b"c" * 20) -> bytes:
    header = CPP_HEADER % (queue_id, opaque)
    return struct.pack(">iI", 4 + len(header) + len(body), len(header)) + header + body


def test_the_cpp_client_s_send_is_read_whole() -> None:
    assert new_send_path("C1", SKIP, 1 << 16).parse(_cpp_frame(1, 5)[4:]) == (
        10, 5, "T", 1, 0, 1796580987579, 0, True,
        b"KEYS\x01k0\x02TAGS\x01tg\x02UNIQ_KEY\x010100007F0000166500003BED08230100\x02"
        b"CLUSTER\x01C1\x02", "0100007F0000166500003BED08230100", "k0", 3699, b"c" * 20)


@pytest.mark.parametrize("frame,why", [
    (_frame(_ext(props="DELAY\x013\x02")), PROPERTIES),  # a delay level: rewritten
    (_frame(_ext(props="TAGS\x01\u00e9\x02")), HEADER),  # not ASCII
    (_frame(_ext(props="a\x01x\x02a\x01y\x02")), PROPERTIES),  # a name twice
    (_frame(_ext(props="CLUSTER\x01x\x02")), PROPERTIES),
    (_frame(_ext(), flag=2), ONEWAY),
    (_frame(_ext(queue_id=-1)), FIELDS),  # the broker picks the queue
    (_frame(_ext(f=8)), FIELDS),  # a transaction type in sysFlag
    (_frame(_ext(m="true")), FIELDS),  # C++'s batch
    (_frame(_ext(bname="b")), HEADER),  # a field of another version
    (_frame(_ext(e="01")), FIELDS),  # not as JSON writes a number
    (_frame(_ext(), code=320), 1),  # SEND_BATCH_MESSAGE
    (_frame(_ext(), code=11), 1),
    (_frame(_ext())[:30], 1),  # cut short
])
def test_what_the_native_path_leaves_to_python(frame: bytes, why: int) -> None:
    assert new_send_path("C1", SKIP, 1 << 16).parse(frame) == why


# -- two brokers, the same requests ---------------------------------------------------------

def _v1(ext: dict) -> dict:
    v2 = SendMessageRequestHeaderV2(
        producer_group=ext["a"], topic=ext["b"], default_topic=ext["c"],
        default_topic_queue_nums=int(ext["d"]), queue_id=int(ext["e"]), sys_flag=0,
        born_timestamp=int(ext["g"]), flag=int(ext["h"]), properties=ext.get("i"),
        reconsume_times=0, unit_mode=False, batch=False)
    return encode_header(SendMessageRequestHeader(**{
        f: getattr(v2.to_v1(), f) for f in SendMessageRequestHeader.__dataclass_fields__}))


def _requests() -> list[RemotingCommand]:
    """Common sends (native) mixed with each fallback trigger the broker checks in Python."""
    common = "UNIQ_KEY\x01{}\x02KEYS\x01k{} x\x02TAGS\x01t\x02WAIT\x01true\x02"
    exts = []
    for i in range(6):
        exts.append((310, _ext("T", i % 2, common.format(i, i), h=i)))
    exts += [
        (10, _v1(_ext("T", 1, common.format(10, 10)))),
        (310, _ext("T", 0, "WAIT\x01false\x02TAGS\x01t2\x02")),
        (310, _ext("T", 0, "DELAY\x012\x02")),  # delay level: SCHEDULE_TOPIC_XXXX
        (310, _ext("%RETRY%g", 0, "")),  # retry topic
        (310, _ext("T", 9, "")),  # queue id out of range
        (310, _ext("RO", 0, "")),  # not writable
        (310, _ext("T", 1, "a\x01x\x02a\x01y\x02")),  # decoded field by field
        (310, _ext("T", 1, "TAGS\x01\u00e9\x02")),  # not ASCII
        (310, _ext("T", 1, "", j=2)),  # reconsume times
        (310, _ext("T", 0, "", l=3)),  # maxReconsumeTimes
    ]
    return [RemotingCommand(code=code, ext_fields=ext, body=f"body-{n}".encode() * 5,
                            opaque=100 + n) for n, (code, ext) in enumerate(exts)]


def _records(data: Path) -> list[bytes]:
    """Every commit-log record, its born and store hosts and store time zeroed (they differ
    by port and clock); layout in record.py."""
    log = (data / "commitlog" / offset_name(0)).read_bytes()
    out, pos = [], 0
    while pos + 8 <= len(log):
        size, magic = struct.unpack_from(">iI", log, pos)
        if size <= 0 or magic != 0xDAA320A7:
            break
        rec = bytearray(log[pos:pos + size])
        rec[48:72] = bytes(24)  # BORNHOST, STORETIMESTAMP, STOREHOST (IPv4)
        out.append(bytes(rec))
        pos += size
    return out


def _units(data: Path) -> dict[str, bytes]:
    """Every consume-queue file of topic T, by queue (units hold no host or time)."""
    return {q.name: b"".join(f.read_bytes() for f in sorted(q.iterdir()))
            for q in sorted((data / "consumequeue" / "T").iterdir())}


def _found(sock, key: str) -> tuple[int, int]:
    """QUERY_MESSAGE's answer for key in T: its code and how many records it holds."""
    r = request(sock, RemotingCommand(code=12, opaque=1000, ext_fields={
        "topic": "T", "key": key, "maxNum": "32", "beginTimestamp": "0",
        "endTimestamp": str((1 << 63) - 1)}))
    assert r is not None
    n, pos = 0, 0
    while pos + 4 <= len(r.body):
        pos += struct.unpack_from(">i", r.body, pos)[0]
        n += 1
    return r.code, n


def _raw_request(sock, frame: bytes, opaque: int) -> RemotingCommand | None:
    """A frame made by hand (the C++ client's) sent, and its answer read."""
    sock.sendall(frame)
    decoder = FrameDecoder()
    while data := sock.recv(65536):
        for got in decoder.feed(data):
            if got.opaque == opaque:
                return got
    return None


def _answer(r: RemotingCommand | None) -> tuple:
    assert r is not None
    ext = dict(r.ext_fields)
    if "msgId" in ext:
        # RocketMQ's offset id: upper-case hex of the store host (127.0.0.1, the broker's
        # port) and the commit-log offset; the port differs between the two brokers
        assert re.fullmatch("7F000001[0-9A-F]{24}", ext["msgId"]), ext["msgId"]
        ext["msgId"] = ext["msgId"][16:]
    return r.code, r.remark, ext


@pytest.mark.parametrize("flush", ["async", "sync"])
def test_native_and_python_paths_store_and_answer_the_same(
        serve: ServeFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        flush: str) -> None:
    results = {}
    for native in ("1", "0"):
        monkeypatch.setenv(ENV_SWITCH, native)
        served = serve("", "--flush", flush)
        create_topic(served.broker, "T", 2)
        create_topic(served.broker, "RO", 2, perm=4)
        answers = []
        with connect(served.broker_address) as sock:
            for req in _requests():
                answers.append(_answer(request(sock, req)))
            for n in range(4):
                answers.append(_answer(_raw_request(sock, _cpp_frame(n % 2, 200 + n), 200 + n)))
            found = [_found(sock, key) for key in ("k0", "k5", "k10", "x", "3", "10")]
            create_topic(served.broker, "T", 2, perm=4)  # read-only now: refused
            answers.append(_answer(request(sock, _requests()[0])))
        served.proc.terminate()
        data = Path(served.proc.args[served.proc.args.index("--data") + 1])
        taken = served.proc.log_path.read_text().count("native send path: ")
        results[native] = (answers, _records(data), taken,
                           served.proc.log_path.read_text(), _units(data), found)
    on, off = results["1"], results["0"]
    assert on[0] == off[0]
    assert len(on[1]) >= 15 and on[1] == off[1]
    assert on[4] == off[4]  # consume-queue units, tags codes included
    assert on[5] == off[5] and on[5][0] == (0, 5)  # the index: k0 once, then 4 C++ sends
    # the native path answered the common sends after each queue's first (2 + 6 - 2 + ...)
    assert "native send path: 0 sends" not in on[3] and on[2] == 1 and off[2] == 0


@given(st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255), st.booleans()),
                min_size=1, max_size=4), _text)
@settings(max_examples=400)
def test_a_mangled_frame_is_left_alone_or_read_as_python_reads_it(
        edits: list[tuple[int, int, bool]], text: str) -> None:
    """Bytes changed or removed anywhere in a send's frame: the parser never reads past it,
    and what it takes the Python decoder reads the same."""
    frame = bytearray(_frame(_ext(props=text)))
    for at, byte, remove in edits:
        at %= len(frame)
        if remove:
            del frame[at]
        else:
            frame[at] = byte
    parsed = new_send_path("C1", SKIP, 1 << 16).parse(bytes(frame))
    if type(parsed) is int:
        return
    cmd = decode_frame(bytes(frame))
    cls = SendMessageRequestHeaderV2 if cmd.code == 310 else SendMessageRequestHeader
    h = decode_header(cls, cmd.ext_fields)
    _, encoded, wait = _stored_properties(h.properties or "", "C1")
    assert parsed == (cmd.code, cmd.opaque, h.topic, h.queue_id, h.flag, h.born_timestamp,
                      h.reconsume_times or 0, wait, encoded, parsed[9], parsed[10],
                      parsed[11], cmd.body)
    assert cmd.flag == 0 and h.sys_flag == 0 and not h.batch


def test_a_broker_made_read_only_refuses_what_the_native_path_took_before(
        serve: ServeFactory) -> None:
    served = serve("")
    create_topic(served.broker, "T", 1)
    common = _ext("T", 0, "UNIQ_KEY\x01A\x02WAIT\x01true\x02")
    with connect(served.broker_address) as sock:
        for n in range(3):  # the first opens the queue, the others take the native path
            r = request(sock, RemotingCommand(code=310, ext_fields=common, body=b"b", opaque=n))
            assert r is not None and r.code == 0, r
        update = RemotingCommand(code=25, body=b"brokerPermission=4\n", opaque=10)  # read-only
        r = request(sock, update)
        assert r is not None and r.code == 0, r
        r = request(sock, RemotingCommand(code=310, ext_fields=common, body=b"b", opaque=11))
        assert r is not None and r.code == 16 and "forbidden" in (r.remark or ""), r
