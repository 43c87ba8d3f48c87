"""Pre-made JSON response frames are the general encoder's bytes, byte for byte."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rmqstore.protocol import RemotingCommand, encode
from rmqstore.protocol.command import answer
from rmqstore.protocol.frame import FrameDecoder
from rmqstore.protocol.json_template import JsonFrameTemplate, json_text

hex_ids = st.text("0123456789ABCDEF", min_size=32, max_size=32)
numbers = st.integers(min_value=-(2**63), max_value=2**63 - 1).map(str)
opaques = st.integers(min_value=-(2**31), max_value=2**31 - 1)
# Fixed values may be anything JSON can hold: quotes, backslashes, '%', control and non-ASCII.
fixed_texts = st.text(max_size=20)


@given(fixed=fixed_texts, trace=st.booleans(), opaque=opaques, msg_id=hex_ids,
       queue_id=numbers, offset=numbers, code=st.sampled_from([0, 1, 10, 17]),
       remark=st.none() | fixed_texts)
def test_template_frame_equals_the_general_encoding(fixed, trace, opaque, msg_id, queue_id,
                                                    offset, code, remark):
    ext_fixed = {"MSG_REGION": fixed, "TRACE_ON": "true" if trace else "false"}
    template = JsonFrameTemplate(code, {"msgId": None, "queueId": None, "queueOffset": None,
                                        **ext_fixed}, remark)
    request = RemotingCommand.request(310, {"b": "T"})
    request.opaque = opaque
    expected = encode(answer(request, RemotingCommand.response(
        code, remark, {"msgId": msg_id, "queueId": queue_id, "queueOffset": offset,
                       **ext_fixed})))
    frame = template.frame(opaque, msg_id, queue_id, offset)
    assert frame == expected
    (decoded,) = list(FrameDecoder().feed(frame))
    assert decoded.is_response and decoded.opaque == opaque and decoded.code == code
    assert decoded.ext_fields["queueOffset"] == offset


def test_template_without_variable_fields() -> None:
    template = JsonFrameTemplate(0, {"a": "1"})
    request = RemotingCommand.request(10)
    request.opaque = 5
    assert template.frame(5) == encode(answer(request, RemotingCommand.response(0, None,
                                                                                {"a": "1"})))


# Properties as producers write them: \x01 and \x02 separators, and any text JSON must escape.
property_texts = st.text(max_size=40).map(lambda t: f"KEYS\x01{t}\x02UNIQ_KEY\x01AB\x02")


@given(fixed=fixed_texts, props=property_texts, opaque=opaques, born=numbers,
       body=st.binary(max_size=64))
def test_request_template_equals_the_general_encoding(fixed, props, opaque, born, body):
    """A producer's pre-made send frame: placeholders in extFields, escaped text, a body."""
    template = JsonFrameTemplate.request(310, {"a": fixed, "g": None, "i": None, "n": "b"},
                                         "PYTHON", 403)
    request = RemotingCommand.request(310, {"a": fixed, "g": born, "i": props, "n": "b"}, body)
    request.language, request.version, request.opaque = "PYTHON", 403, opaque
    frame = template.frame(opaque, born, json_text(props), body=body)
    assert frame == encode(request)
    (decoded,) = list(FrameDecoder().feed(frame))
    assert not decoded.is_response and decoded.opaque == opaque and decoded.body == body
    assert decoded.ext_fields["i"] == props
