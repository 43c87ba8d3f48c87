"""What a send stores as properties (server/broker/send.py): the producer's text kept as sent
when it can be, minus WAIT, plus CLUSTER, and always what decoding it to a dict and encoding
that would give (the end-to-end path is test_broker.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rmqstore.errors import InvalidPropertyError
from rmqstore.record import decode_properties, encode_properties
from rmqstore.server.broker.handlers.send import _stored_properties

# Names and values from a small alphabet, separators included, so that malformed pairs,
# empty names, repeated names and WAIT / CLUSTER turn up often.
_atom = st.sampled_from(["WAIT", "CLUSTER", "TAGS", "KEYS", "UNIQ_KEY", "XWAIT", "a", "",
                         "true", "false", "é", "\x01", "\x02", "\x01\x02"])
_text = st.lists(st.tuples(_atom, _atom, st.sampled_from(["\x01", "", "\x01\x01"]),
                           st.sampled_from(["\x02", ""])), max_size=6).map(
    lambda pairs: "".join(f"{n}{sep}{v}{end}" for n, v, sep, end in pairs))


def _as_before(text: str, cluster: str) -> tuple[dict[str, str], bool]:
    """Decoded to a dict, WAIT popped, CLUSTER set: what the broker stored before."""
    props = decode_properties(text.encode("utf-8"))
    wait = props.pop("WAIT", None) != "false"
    props["CLUSTER"] = cluster
    return props, wait


@given(_text)
def test_stored_properties_are_the_dict_path_s(text: str) -> None:
    props, encoded, wait = _stored_properties(text, "C1")
    assert (props, wait) == _as_before(text, "C1")
    if encoded is not None:  # the text kept: byte for byte what encoding the dict gives
        assert encoded == encode_properties(props)
    else:  # left to the store, which encodes the dict or refuses it as before
        try:
            encode_properties(props)
        except InvalidPropertyError:
            pass


@pytest.mark.parametrize("text,kept", [
    ("UNIQ_KEY\x01U1\x02WAIT\x01true\x02TAGS\x01A\x02", "UNIQ_KEY\x01U1\x02TAGS\x01A\x02"),
    ("WAIT\x01false\x02KEYS\x01k1 k2", "KEYS\x01k1 k2\x02"),  # Java: no final separator
    ("XWAIT\x01x\x02WAIT\x01true\x02", "XWAIT\x01x\x02"),
    ("", ""),
])
def test_a_well_formed_text_is_kept_as_sent(text: str, kept: str) -> None:
    _, encoded, _ = _stored_properties(text, "C1")
    assert encoded == (kept + "CLUSTER\x01C1\x02").encode()


@pytest.mark.parametrize("text", [
    "a\x01b\x01c\x02",  # a value holding a separator: the store refuses it
    "\x01v\x02",  # an empty name: likewise
    "a\x01x\x02a\x01y\x02",  # a name twice: the dict keeps the last value
    "junk\x02a\x01b\x02",  # a pair without a value: dropped
    "CLUSTER\x01theirs\x02",  # the producer's CLUSTER: replaced by the broker's
])
def test_other_texts_go_through_the_dict(text: str) -> None:
    assert _stored_properties(text, "C1")[1] is None
