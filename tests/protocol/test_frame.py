"""Frame codec: known-answer bytes built by hand from the spec, round trips, malformed frames."""

from __future__ import annotations

import json
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rmqstore.protocol import (
    FrameDecoder,
    FrameTooLarge,
    HeaderDecodeError,
    LanguageCode,
    RemotingCommand,
    SerializeType,
    decode_frame,
    encode,
)
from rmqstore.protocol.frame import DEFAULT_MAX_FRAME_BYTES

# --- known answers (written byte by byte from RemotingCommand.encode, not by our encoder) -----

# ROCKETMQ binary: GET_ROUTEINFO_BY_TOPIC(105), JAVA(0), version 403, opaque 7, flag 0,
# no remark, extFields {"topic": "T1"}.
BINARY_FRAME = bytes.fromhex(
    "00000026"  # length = 4 + 34
    "01000022"  # serialize type 1, header length 34
    "0069" "00" "0193" "00000007" "00000000"  # code, language, version, opaque, flag
    "00000000"  # remark length 0 (null)
    "0000000d"  # extFields block: 13 bytes
    "0005" "746f706963" "00000002" "5431"  # "topic" -> "T1"
)

JSON_HEADER = (b'{"code":105,"extFields":{"topic":"T1"},"flag":0,"language":"JAVA","opaque":7,'
               b'"serializeTypeCurrentRPC":"JSON","version":403}')
JSON_FRAME = struct.pack(">ii", 4 + len(JSON_HEADER), len(JSON_HEADER)) + JSON_HEADER

ROUTE_REQUEST = dict(code=105, language="JAVA", version=403, opaque=7, flag=0,
                     ext_fields={"topic": "T1"})


def one(data: bytes) -> RemotingCommand:
    cmds = list(FrameDecoder().feed(data))
    assert len(cmds) == 1
    return cmds[0]


def test_binary_known_answer_decodes_and_encodes() -> None:
    cmd = one(BINARY_FRAME)
    assert cmd == RemotingCommand(**ROUTE_REQUEST, serialize_type=SerializeType.ROCKETMQ)
    assert encode(cmd) == BINARY_FRAME


def test_json_known_answer_decodes_and_encodes() -> None:
    assert len(JSON_HEADER) == 124
    assert JSON_FRAME[:8] == bytes.fromhex("000000800000007c")
    cmd = one(JSON_FRAME)
    assert cmd == RemotingCommand(**ROUTE_REQUEST, serialize_type=SerializeType.JSON)
    assert encode(cmd) == JSON_FRAME


def test_binary_known_answer_with_remark_and_body() -> None:
    frame = bytes.fromhex(
        "0000001d"  # 4 + 23 header + 2 body = 29
        "01000017"  # binary, header 13 + 4 + 2 + 4 = 23
        "0003" "01" "003f" "0000000b" "00000001"  # code 3, CPP, version 63, opaque 11, RESPONSE
        "00000002" "6f6b"  # remark "ok"
        "00000000"  # no extFields
        "6869"  # body "hi"
    )
    cmd = one(frame)
    assert (cmd.code, cmd.language, cmd.version, cmd.opaque) == (3, "CPP", 63, 11)
    assert cmd.is_response and not cmd.is_oneway
    assert (cmd.remark, cmd.ext_fields, cmd.body) == ("ok", {}, b"hi")
    assert encode(cmd) == frame


def test_cpp_request_header_with_int_values_and_trailing_newline() -> None:
    # What rocketmq-client-cpp 1.2.4 writes (RemotingCommand.cpp): jsoncpp FastWriter, "\n" counted.
    header = (b'{"code":10,"extFields":{"AccessKey":"","OnsChannel":"ALIYUN","Signature":"c2ln",'
              b'"batch":"0","bornTimestamp":"1795609945950","defaultTopic":"TBW102",'
              b'"defaultTopicQueueNums":4,"flag":0,"producerGroup":"PID-sniff",'
              b'"properties":"TAGS\\u0001TagA\\u0002","queueId":0,"reconsumeTimes":"0","sysFlag":0,'
              b'"topic":"TopicSniff","unitMode":"0"},"flag":0,"language":"CPP","opaque":3,'
              b'"remark":"","version":63}\n')
    frame = struct.pack(">ii", 4 + len(header) + 2, len(header)) + header + b"hi"
    cmd = one(frame)
    assert (cmd.code, cmd.language, cmd.version, cmd.opaque, cmd.remark) == (10, "CPP", 63, 3, "")
    assert cmd.ext_fields["defaultTopicQueueNums"] == "4"  # JSON number -> string, as Java's map
    assert cmd.ext_fields["queueId"] == "0"
    assert cmd.ext_fields["properties"] == "TAGS\x01TagA\x02"
    assert cmd.body == b"hi"


def test_json_response_values_are_all_strings() -> None:
    # The C++ client ignores non-string response fields.
    resp = RemotingCommand.response(0, ext_fields={"queueId": 3, "ok": True, "msgId": "AB"})  # type: ignore[dict-item]
    header = json.loads(encode(resp)[8:])
    assert header["extFields"] == {"queueId": "3", "ok": "true", "msgId": "AB"}
    assert header["flag"] == 1 and header["language"] == "JAVA"
    assert "remark" not in header


def test_json_always_carries_ext_fields() -> None:
    header = json.loads(encode(RemotingCommand.response(1, "boom"))[8:])
    assert header["extFields"] == {} and header["remark"] == "boom"


# --- round trips ---------------------------------------------------------------------------

int32 = st.integers(-(2**31), 2**31 - 1)
int16 = st.integers(-(2**15), 2**15 - 1)
languages = st.sampled_from([m.name for m in LanguageCode])
text = st.text(max_size=40)
nonempty = st.text(min_size=1, max_size=40)


@st.composite
def commands(draw: st.DrawFn, kind: SerializeType) -> RemotingCommand:
    binary = kind == SerializeType.ROCKETMQ
    # Binary: a zero-length string decodes as null (RocketMQSerializable.readStr), so keep
    # remark and every key/value non-empty there.
    return RemotingCommand(
        code=draw(int16 if binary else int32),
        language=draw(languages),
        version=draw(int16 if binary else int32),
        opaque=draw(int32),
        flag=draw(int32),
        remark=draw(st.none() | (nonempty if binary else text)),
        ext_fields=draw(st.dictionaries(nonempty if binary else text, nonempty if binary else text,
                                        max_size=6)),
        body=draw(st.binary(max_size=64)),
        serialize_type=kind,
    )


@settings(max_examples=200, deadline=None)
@given(commands(SerializeType.JSON))
def test_json_round_trip(cmd: RemotingCommand) -> None:
    assert one(encode(cmd)) == cmd


@settings(max_examples=200, deadline=None)
@given(commands(SerializeType.ROCKETMQ))
def test_binary_round_trip(cmd: RemotingCommand) -> None:
    assert one(encode(cmd)) == cmd


@settings(max_examples=50, deadline=None)
@given(st.lists(commands(SerializeType.JSON) | commands(SerializeType.ROCKETMQ), min_size=1,
                max_size=5), st.integers(1, 17))
def test_stream_split_anywhere(cmds: list[RemotingCommand], step: int) -> None:
    stream = b"".join(encode(c) for c in cmds)
    decoder, got = FrameDecoder(), []
    for i in range(0, len(stream), step):
        got.extend(decoder.feed(stream[i:i + step]))
    assert got == cmds and decoder.buffered_bytes == 0


def test_a_read_after_a_partial_frame_is_never_taken_as_a_frame_of_its_own() -> None:
    # A command without a body: what follows its length word, the header word (= the header's
    # length) and the header, reads like a whole frame by itself.
    frame = encode(RemotingCommand(code=10, opaque=7))
    decoder = FrameDecoder()
    assert list(decoder.feed(frame[:4])) == []
    assert [c.opaque for c in decoder.feed(frame[4:])] == [7]
    assert decoder.buffered_bytes == 0


def test_a_whole_frame_after_frames_a_reader_left_comes_after_them() -> None:
    stream = b"".join(encode(RemotingCommand(code=10, opaque=i)) for i in (1, 2, 3))
    decoder = FrameDecoder()
    first = decoder.feed_frames(stream)
    assert decode_frame(next(first)).opaque == 1  # the reader stops here (paused)
    later = [decode_frame(f).opaque
             for f in decoder.feed_frames(encode(RemotingCommand(code=10, opaque=4)))]
    assert later == [2, 3, 4] and decoder.buffered_bytes == 0


def test_a_read_of_one_whole_frame_is_held_to_the_limit() -> None:
    frame = encode(RemotingCommand(code=10, body=b"x" * 900))
    assert [c.body for c in FrameDecoder(max_frame_bytes=len(frame)).feed(frame)] == [b"x" * 900]
    with pytest.raises(FrameTooLarge):
        list(FrameDecoder(max_frame_bytes=len(frame) - 1).feed(frame))


# --- malformed frames --------------------------------------------------------------------------


def test_length_below_header_word_is_rejected() -> None:
    with pytest.raises(FrameTooLarge):
        list(FrameDecoder().feed(struct.pack(">i", 3) + b"abc"))
    with pytest.raises(FrameTooLarge):  # by the decoder itself, before any frame reader
        list(FrameDecoder().feed_frames(struct.pack(">i", 3) + b"abc"))


def test_negative_length_is_rejected() -> None:
    with pytest.raises(FrameTooLarge):
        list(FrameDecoder().feed(struct.pack(">i", -1)))


def test_oversized_length_fails_before_the_body_arrives() -> None:
    decoder = FrameDecoder(max_frame_bytes=1024)
    with pytest.raises(FrameTooLarge):
        list(decoder.feed(struct.pack(">i", 1021)))  # 1021 + 4 > 1024
    assert list(FrameDecoder(max_frame_bytes=1024).feed(struct.pack(">i", 1020))) == []


def test_default_max_is_16_mib_including_the_length_word() -> None:
    assert DEFAULT_MAX_FRAME_BYTES == 16 * 1024 * 1024
    with pytest.raises(FrameTooLarge):
        list(FrameDecoder().feed(struct.pack(">i", DEFAULT_MAX_FRAME_BYTES - 3)))


def test_encode_refuses_an_oversized_frame() -> None:
    with pytest.raises(FrameTooLarge):
        encode(RemotingCommand(code=10, body=b"x" * 1000), max_frame_bytes=512)


def test_header_length_beyond_frame() -> None:
    with pytest.raises(HeaderDecodeError):
        decode_frame(struct.pack(">I", 10) + b"{}")


def test_unknown_serialize_type() -> None:
    with pytest.raises(HeaderDecodeError, match="serialize type 2"):
        decode_frame(struct.pack(">I", (2 << 24) | 2) + b"{}")


@pytest.mark.parametrize("header", [
    b"", b"{", b"[1,2]", b'"code"', b"\xff\xfe", b'{"code":NaN}', b'{"code":"x"}',
    b'{"code":1.5}', b'{"code":true}', b'{"code":4294967296}', b'{"extFields":[1]}',
    b'{"remark":{}}', b'{"language":[]}', b"[" * 100000,
])
def test_bad_json_header(header: bytes) -> None:
    with pytest.raises(HeaderDecodeError):
        decode_frame(struct.pack(">I", len(header)) + header)


def test_json_defaults_like_fastjson() -> None:
    cmd = decode_frame(struct.pack(">I", 2) + b"{}")
    assert (cmd.code, cmd.opaque, cmd.flag, cmd.ext_fields, cmd.remark) == (0, 0, 0, {}, None)


@pytest.mark.parametrize("header", [
    bytes(20),  # shorter than the 21-byte minimum
    bytes(13) + struct.pack(">i", 5) + b"ab",  # remark longer than the header
    bytes(13) + struct.pack(">ii", 0, 100),  # extFields longer than the header
    bytes(13) + struct.pack(">ii", 0, 3) + struct.pack(">h", 1) + b"k",  # entry cut short
    bytes(13) + struct.pack(">ii", -1, 0),  # negative remark length
    bytes(13) + struct.pack(">i", 6) + b"abcdef" + b"\0\0",  # remark leaves no room for extLen
    (bytes(13) + struct.pack(">ii", 0, 8) + struct.pack(">h", 1) + b"k"
     + struct.pack(">i", 9) + b"v"),
])
def test_bad_binary_header(header: bytes) -> None:
    with pytest.raises(HeaderDecodeError):
        decode_frame(struct.pack(">I", (1 << 24) | len(header)) + header)


def test_binary_encode_checks_int16() -> None:
    with pytest.raises(ValueError):
        encode(RemotingCommand(code=40000, serialize_type=SerializeType.ROCKETMQ))
