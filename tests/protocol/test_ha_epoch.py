"""RocketMQ 5's HA handshake and transfer frames: known-answer bytes, any split of the stream."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rmqstore.protocol.ha import HAProtocolError
from rmqstore.protocol.ha_epoch import (
    MasterHandshake,
    MasterMessages,
    SlaveHandshake,
    SlaveMessages,
    Transfer,
    encode_report,
    encode_transfer,
)

# The docstring's worked example: slave 2's handshake; the master's answer for {1@0, 2@5000}.
SLAVE_HELLO = bytes.fromhex("00000001" "0000" "0000" "0000000000000002")
MASTER_HELLO = bytes.fromhex("00000001" "00000018" "0000000000002328" "00000002"
                             "00000001" "0000000000000000" "00000002" "0000000000001388")


def test_known_answers() -> None:
    assert SlaveHandshake(2).encode() == SLAVE_HELLO
    assert MasterHandshake(9000, 2, ((1, 0), (2, 5000))).encode() == MASTER_HELLO
    assert encode_report(4096) == bytes.fromhex("00000002" "0000000000001000")
    frame = encode_transfer(4096, b"ab", 2, 1024, 2048)
    assert frame == bytes.fromhex("00000002" "00000002" "0000000000001000" "00000002"
                                  "0000000000000400" "0000000000000800") + b"ab"


def test_slave_flags_travel() -> None:
    (hello,) = SlaveMessages().feed(SlaveHandshake(7, True, True).encode())
    assert hello == SlaveHandshake(7, True, True)


@given(st.lists(st.integers(1, 40), max_size=30))
def test_any_split_of_the_masters_stream(cuts: list[int]) -> None:
    stream = MASTER_HELLO + encode_transfer(0, b"x" * 50, 2, 0, 10) + \
        encode_transfer(50, b"", 2, 0, 50)
    decoder = MasterMessages()
    got: list[object] = []
    pos = 0
    for n in [*cuts, len(stream)]:
        for m in decoder.feed(stream[pos:pos + n]):
            got.append(m if not isinstance(m, Transfer) else
                       (m.offset, m.epoch, m.epoch_start, m.confirm_offset, bytes(m.data)))
        pos += n
        if pos >= len(stream):
            break
    assert got == [MasterHandshake(9000, 2, ((1, 0), (2, 5000))), (0, 2, 0, 10, b"x" * 50),
                   (50, 2, 0, 50, b"")]
    assert decoder.buffered == 0


@given(st.lists(st.integers(1, 20), max_size=20))
def test_any_split_of_the_slaves_stream(cuts: list[int]) -> None:
    stream = SLAVE_HELLO + encode_report(0) + encode_report(77)
    decoder = SlaveMessages()
    got: list[object] = []
    pos = 0
    for n in [*cuts, len(stream)]:
        got += decoder.feed(stream[pos:pos + n])
        pos += n
        if pos >= len(stream):
            break
    assert got == [SlaveHandshake(2), 0, 77]


@pytest.mark.parametrize("frame", [
    bytes.fromhex("00000003" "0000000000000000"),  # SUSPEND: not sent by a slave
    bytes.fromhex("00000002" "ffffffffffffffff"),  # a negative offset
])
def test_bad_slave_messages(frame: bytes) -> None:
    with pytest.raises(HAProtocolError):
        SlaveMessages().feed(frame)


@pytest.mark.parametrize("frame", [
    bytes.fromhex("00000001" "0000000d" "0000000000000000" "00000001"),  # not 12 n bytes
    bytes.fromhex("00000002" "7fffffff" "0000000000000000" "00000001") + bytes(16),  # too big
    bytes.fromhex("00000000") + bytes(32),  # READY
])
def test_bad_master_messages(frame: bytes) -> None:
    with pytest.raises(HAProtocolError):
        MasterMessages().feed(frame)
