"""The native wire codec (_codec.c) against the Python codec it stands in for, the reference:
field for field on decode (and never accepting what the reference refuses), byte for byte on
a template's frame, the same refusals for properties that cannot be sent."""

from __future__ import annotations

import struct

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rmqstore.protocol import FrameError, RemotingCommand, SerializeType, _codec, encode
from rmqstore.protocol.frame import decode_frame, decode_frame_reference
from rmqstore.protocol.json_template import JsonFrameTemplate, json_text
from rmqstore.protocol.message import PropertyError, properties_text

INT32 = st.integers(-(2**31), 2**31 - 1)
TEXT = st.text(max_size=20)  # any code point: quotes, backslashes, controls, non-ASCII
EXT = st.dictionaries(TEXT, TEXT, max_size=6)


def frame_of(header: bytes, body: bytes = b"") -> bytes:
    """A frame without its length word, as decode_frame takes it."""
    return struct.pack(">I", len(header)) + header + body


def reference(frame: bytes) -> RemotingCommand | Exception:
    try:
        return decode_frame_reference(frame)
    except FrameError as exc:
        return exc


@settings(max_examples=300, deadline=None)
@given(code=INT32, flag=INT32, opaque=INT32, version=INT32, language=TEXT,
       remark=st.none() | TEXT, ext=EXT, body=st.binary(max_size=40))
def test_native_decode_is_the_reference_field_for_field(code, flag, opaque, version, language,
                                                        remark, ext, body) -> None:
    cmd = RemotingCommand(code, language, version, opaque, flag, remark, ext, body)
    frame = encode(cmd)[4:]
    native = _codec.decode_json_frame(frame)
    assert decode_frame_reference(frame) == cmd
    header = frame[4:4 + struct.unpack_from(">I", frame)[0]]
    if b"\\" in header:  # an escape: left to the reference
        assert native is None or native == cmd
    else:  # the form every peer sends: decoded natively
        assert native == cmd
    assert decode_frame(frame) == cmd


# Headers the native decoder must decode as the reference does, or leave to it.
VARIANTS = [
    b'{"code":0,"extFields":{},"flag":1,"language":"JAVA","opaque":5,"version":403}',
    b' \t\n{ "code" : 0 , "extFields" : { "a" : "b" } , "flag" : 1 , "language" : "CPP" ,'
    b' "opaque" : 5 , "remark" : null , "version" : 1 } \r\n',
    b'{"code":-2147483648,"extFields":{},"flag":2147483647,"language":"J","opaque":-0,'
    b'"version":0}',
    b'{"code":2147483648,"extFields":{},"flag":0,"language":"J","opaque":1,"version":0}',
    b'{"code":01,"extFields":{},"flag":0,"language":"J","opaque":1,"version":0}',
    b'{"code":1.0,"extFields":{},"flag":0,"language":"J","opaque":1,"version":0}',
    b'{"code":1e2,"extFields":{},"flag":0,"language":"J","opaque":1,"version":0}',
    b'{"code":"7","extFields":{},"flag":0,"language":"J","opaque":1,"version":0}',
    b'{"code":1,"extFields":{"n":7,"b":true,"z":null},"flag":0,"language":"J","opaque":1,'
    b'"version":0}',
    b'{"code":1,"extFields":{"a":"1","a":"2","b":"3"},"flag":0,"language":"J","opaque":1,'
    b'"version":0,"code":9,"language":"K","remark":"x","remark":null}',
    b'{"code":1,"extFields":{},"flag":0,"language":3,"opaque":1,"version":0}',
    b'{"code":1,"extFields":{},"flag":0,"opaque":1,"version":0}',
    b'{"code":1,"flag":0,"language":"J","opaque":1,"version":0}',
    b'{"code":1,"extFields":{},"language":"J","opaque":1,"version":0}',
    b'{"code":1,"extFields":{},"flag":0,"language":"J","opaque":1,"version":0,"x":[1,{}]}',
    b'{"code":1,"extFields":{},"flag":0,"language":"J","opaque":1,"version":0,"remark":5}',
    b'{"code":1,"extFields":{},"flag":0,"language":"J","opaque":1,"version":0}x',
    b'{"code":1,"extFields":{},"flag":0,"language":"J","opaque":1,"version":0,}',
    b'{"code":1,"extFields":{"a":"\x01"},"flag":0,"language":"J","opaque":1,"version":0}',
    b'{"code":1,"extFields":{"a":"\xff"},"flag":0,"language":"J","opaque":1,"version":0}',
    b'{"code":1,"extFields":{"a":"\xc3\xa9"},"flag":0,"language":"J","opaque":1,"version":0}',
    b'{"code":1,"extFields":{"a":"b"},"flag":0,"language":"J","opaque":1,"version":0',
    b'{"code":NaN,"extFields":{},"flag":0,"language":"J","opaque":1,"version":0}',
    b'{"code":1,"extFields":{},"flag":0,"language":"J","opaque":1,"version":0,"remark":nul}',
    b'[1]', b'', b'{}', b'nul',
]


@pytest.mark.parametrize("header", VARIANTS)
def test_native_decode_of_header_variants(header: bytes) -> None:
    frame = frame_of(header, b"body")
    expected, native = reference(frame), _codec.decode_json_frame(frame)
    if isinstance(expected, Exception):
        assert native is None  # the reference's error, not a command, for malformed input
        with pytest.raises(type(expected)):
            decode_frame(frame)
    else:
        assert native is None or native == expected
        assert decode_frame(frame) == expected


def test_native_decode_takes_the_common_forms_itself() -> None:
    """Deferring everything would pass the parity tests: these it must decode."""
    for header in VARIANTS[:3] + [VARIANTS[20]]:
        assert _codec.decode_json_frame(frame_of(header)) == reference(frame_of(header))


@settings(max_examples=400, deadline=None)
@given(cmd=st.builds(RemotingCommand, code=INT32, language=st.sampled_from(["JAVA", "CPP"]),
                     opaque=INT32, flag=INT32, remark=st.none() | TEXT, ext_fields=EXT),
       cuts=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=3),
       truncate=st.integers(0, 400))
@example(cmd=RemotingCommand(1), cuts=[], truncate=3)
def test_native_decode_never_accepts_what_the_reference_refuses(cmd, cuts, truncate) -> None:
    """Bytes flipped, header length words wrong, frames cut short: the native decoder gives
    the reference's command or leaves the frame to it (and its error)."""
    frame = bytearray(encode(cmd)[4:])
    for at, value in cuts:
        frame[at % len(frame)] = value
    frame = bytes(frame[:truncate] if truncate % 3 == 0 else frame)
    expected, native = reference(frame), _codec.decode_json_frame(frame)
    if isinstance(expected, Exception):
        assert native is None
    else:
        assert native is None or native == expected


def test_binary_and_short_frames_are_left_to_the_reference() -> None:
    cmd = RemotingCommand(105, ext_fields={"topic": "T1"}, serialize_type=SerializeType.ROCKETMQ)
    frame = encode(cmd)[4:]
    assert _codec.decode_json_frame(frame) is None
    assert decode_frame(frame) == cmd
    for short in (b"", b"\x00\x00", b"\x00\x00\x00\x09{}"):
        assert _codec.decode_json_frame(short) is None


SEND_TEMPLATE = JsonFrameTemplate.request(
    310, {"a": "G%s", "b": "T", "f": None, "g": None, "h": None, "i": None, "n": "b"},
    "PYTHON", 403)


@settings(max_examples=300, deadline=None)
@given(flag=st.integers(-(2**70), 2**70), text=TEXT, props=st.dictionaries(TEXT, TEXT,
                                                                          max_size=5),
       opaque=st.integers(0, 2**31 - 1), body=st.binary(max_size=30))
def test_native_fill_is_the_template_frame_byte_for_byte(flag, text, props, opaque,
                                                         body) -> None:
    values = (text, flag, True, props)
    try:
        expected: bytes | Exception = SEND_TEMPLATE.frame(
            opaque, json_text(text), str(flag), "True", json_text(properties_text(props)),
            body=body)
    except (PropertyError, UnicodeEncodeError) as exc:
        expected = exc
    if isinstance(expected, Exception):
        with pytest.raises(type(expected)):
            SEND_TEMPLATE.fill(opaque, values, body)
        return
    assert SEND_TEMPLATE.fill(opaque, values, body) == expected
    assert decode_frame(expected[4:]).ext_fields["i"] == properties_text(props)


def test_native_fill_writes_the_usual_send_itself() -> None:
    """Strings with every escape, ints at both ends, properties: no Python fallback."""
    props = {"UNIQ_KEY": "7F00", "KEYS": 'k "1" \\ \b\f\n\r\t\x1f\x7f é \u2028 %s'}
    for values in (("0", 1765000000123, 0, props), ("\x00", -(2**63), 2**63 - 1, {})):
        native = _codec.fill_frame(SEND_TEMPLATE._pieces, values, 42, b"body")
        texts = [json_text(properties_text(v)) if isinstance(v, dict) else
                 json_text(v) if isinstance(v, str) else str(v) for v in values]
        assert native == SEND_TEMPLATE.frame(42, *texts, body=b"body")


@pytest.mark.parametrize("props", [{"a\x01": "v"}, {"a": "v\x02"}, {"": "v"}])
def test_properties_that_cannot_be_sent_are_refused_alike(props: dict[str, str]) -> None:
    assert _codec.fill_frame(SEND_TEMPLATE._pieces, ("0", 1, 0, props), 1, b"") is None
    with pytest.raises(PropertyError):
        properties_text(props)
    with pytest.raises(PropertyError):
        SEND_TEMPLATE.fill(1, ("0", 1, 0, props), b"")


def test_fill_frame_refuses_a_template_of_the_wrong_shape() -> None:
    with pytest.raises(ValueError, match="pieces"):
        _codec.fill_frame((b"a", b"b"), ("x", "y"), 1, b"")


def test_native_decode_names_that_share_a_cache_slot_come_back_as_themselves() -> None:
    """Header names are kept by a hash of their text, a slot each: thousands of names of one
    length (far more than the slots) decoded, twice over, each as the reference decodes it."""
    names = [f"k{i:05d}" for i in range(4000)]
    for _ in range(2):
        for i in range(0, len(names), 4):
            cmd = RemotingCommand(1, f"L{i % 7:03d}", 1, i, 0, None,
                                  {name: name[::-1] for name in names[i:i + 4]})
            frame = encode(cmd)[4:]
            assert _codec.decode_json_frame(frame) == cmd == decode_frame_reference(frame)


def test_native_decode_hands_out_the_names_it_has_seen() -> None:
    """A frame's names and language are the same objects frame after frame: kept, not made
    anew per frame."""
    frame = encode(RemotingCommand(0, "JAVA", 403, 5, 1, None,
                                   {"queueOffset": "12345", "msgId": "7F000001"}))[4:]
    first, second = _codec.decode_json_frame(frame), _codec.decode_json_frame(frame)
    assert first == second
    assert first.language is second.language
    assert all(a is b for a, b in zip(first.ext_fields, second.ext_fields, strict=True))
