"""Typed custom headers <-> extFields."""

from __future__ import annotations

import struct

import pytest

from rmqstore.protocol import FrameDecoder, HeaderFieldError
from rmqstore.protocol.header_codec import decode_header, encode_header
from rmqstore.protocol.headers import (
    OffsetResponseHeader,
    PullMessageResponseHeader,
    SendMessageRequestHeader,
    SendMessageRequestHeaderV2,
    UnregisterClientRequestHeader,
)

CPP_SEND_HEADER = (b'{"code":10,"extFields":{"AccessKey":"","OnsChannel":"ALIYUN","Signature":"s",'
                   b'"batch":"0","bornTimestamp":"1795609945950","defaultTopic":"TBW102",'
                   b'"defaultTopicQueueNums":4,"flag":0,"producerGroup":"PID-sniff",'
                   b'"properties":"KEYS\\u0001k1\\u0002","queueId":2,"reconsumeTimes":"0",'
                   b'"sysFlag":0,"topic":"TopicSniff","unitMode":"0"},"flag":0,"language":"CPP",'
                   b'"opaque":3,"remark":"","version":63}\n')


def test_cpp_send_message_header() -> None:
    frame = struct.pack(">ii", 4 + len(CPP_SEND_HEADER), len(CPP_SEND_HEADER)) + CPP_SEND_HEADER
    (cmd,) = FrameDecoder().feed(frame)
    h = decode_header(SendMessageRequestHeader, cmd.ext_fields)
    assert h.producer_group == "PID-sniff" and h.topic == "TopicSniff"
    assert (h.queue_id, h.default_topic_queue_nums, h.sys_flag, h.flag) == (2, 4, 0, 0)
    assert h.born_timestamp == 1795609945950
    assert h.properties == "KEYS\x01k1\x02"
    assert (h.batch, h.unit_mode, h.reconsume_times, h.max_reconsume_times) == \
        (False, False, 0, None)


@pytest.mark.parametrize("text,value", [("1", True), ("true", True), ("TRUE", True),
                                        ("0", False), ("false", False), ("yes", False)])
def test_booleans_accept_cpp_digits(text: str, value: bool) -> None:
    fields = {"a": "g", "b": "t", "c": "TBW102", "d": "4", "e": "0", "f": "0", "g": "1", "h": "0",
              "m": text}
    assert decode_header(SendMessageRequestHeaderV2, fields).batch is value


def test_v2_converts_to_v1() -> None:
    fields = {"a": "g", "b": "t", "c": "TBW102", "d": "4", "e": "1", "f": "0", "g": "17", "h": "0",
              "i": "TAGS\x01x\x02", "l": "16", "m": "true", "n": "broker-a"}
    v1 = decode_header(SendMessageRequestHeaderV2, fields).to_v1()
    assert v1 == SendMessageRequestHeader(
        producer_group="g", topic="t", default_topic="TBW102", default_topic_queue_nums=4,
        queue_id=1, sys_flag=0, born_timestamp=17, flag=0, properties="TAGS\x01x\x02",
        max_reconsume_times=16, batch=True)


def test_missing_required_field_names_it() -> None:
    with pytest.raises(HeaderFieldError, match=r"the custom field <topic> is null"):
        decode_header(SendMessageRequestHeader, {"producerGroup": "g"})


def test_unparsable_integer() -> None:
    fields = {"offset": "12x"}
    with pytest.raises(HeaderFieldError, match="offset"):
        decode_header(OffsetResponseHeader, fields)


def test_unknown_keys_ignored_and_optionals_default() -> None:
    h = decode_header(UnregisterClientRequestHeader, {"clientID": "c1", "bname": "b", "lo": "x"})
    assert h == UnregisterClientRequestHeader(client_id="c1")


def test_encode_writes_strings_with_java_names() -> None:
    ext = encode_header(PullMessageResponseHeader(suggest_which_broker_id=0, next_begin_offset=5,
                                                  min_offset=0, max_offset=9))
    assert ext == {"suggestWhichBrokerId": "0", "nextBeginOffset": "5", "minOffset": "0",
                   "maxOffset": "9"}
    assert encode_header(UnregisterClientRequestHeader(client_id="c")) == {"clientID": "c"}


def _header_classes() -> list[type]:
    import dataclasses

    import rmqstore.protocol.controller as controller
    import rmqstore.protocol.headers as headers
    found = {c for m in (headers, controller) for c in vars(m).values()
             if isinstance(c, type) and dataclasses.is_dataclass(c)
             and all("wire" in f.metadata for f in dataclasses.fields(c))}
    return sorted(found, key=lambda c: c.__name__)


@pytest.mark.parametrize("cls", _header_classes(), ids=lambda c: c.__name__)
def test_direct_decoder_matches_the_checked_one(cls: type) -> None:
    """Headers decode into slots directly: the same object as through __init__, whether
    every field is sent, only the required ones (defaults kept), or an integer is bad."""
    from rmqstore.protocol.header_codec import _checked_decoder, _layout
    sample = {str: "s", int: "-7", bool: "1"}
    every = {f.metadata["wire"]: sample[kind] for f, kind in _layout(cls)}
    required = {f.metadata["wire"]: sample[kind] for f, kind in _layout(cls)
                if f.metadata["required"]}
    checked = _checked_decoder(cls)
    for ext in (every, required):
        assert decode_header(cls, ext) == checked(ext)
    assert decode_header(cls, required) == cls(**{
        f.name: int(sample[kind]) if kind is int else
        (True if kind is bool else sample[kind]) for f, kind in _layout(cls)
        if f.metadata["required"]})
    ints = [f for f, kind in _layout(cls) if kind is int]
    if ints:
        with pytest.raises(HeaderFieldError, match=ints[-1].metadata["wire"]):
            decode_header(cls, {**every, ints[-1].metadata["wire"]: "12x"})

