"""RocketMQ 5's HA handshake and transfer frames: known-answer bytes, any split of the stream."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rmqstore.protocol.ha import HAProtocolError
from rmqstore.protocol.ha_epoch import (
    EpochTransferReader,
    MasterHandshake,
    SlaveHandshake,
    SlaveMessages,
    decode_master_handshake,
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


def test_the_masters_handshake_is_decoded_once_whole() -> None:
    for n in range(len(MASTER_HELLO)):
        assert decode_master_handshake(MASTER_HELLO[:n]) == (None, 0)
    hello = MasterHandshake(9000, 2, ((1, 0), (2, 5000)))
    assert decode_master_handshake(MASTER_HELLO + b"more") == (hello, len(MASTER_HELLO))


def feed(reader: EpochTransferReader, data: bytes) -> None:
    """What a BufferedProtocol does: copy into buffer(), then received()."""
    while data:
        into = reader.buffer()
        n = min(len(into), len(data))
        into[:n] = data[:n]
        reader.received(n)
        data = data[n:]


@given(st.lists(st.integers(1, 50), max_size=30))
def test_any_split_of_the_masters_transfers(cuts: list[int]) -> None:
    """The headers go, the data lies back to back; each epoch a frame begins is kept once, in
    order, and the last header's confirm offset."""
    stream = encode_transfer(0, b"x" * 50, 2, 0, 10) + encode_transfer(50, b"", 2, 0, 50) + \
        encode_transfer(50, b"y" * 30, 3, 50, 60) + encode_transfer(80, b"z", 3, 50, 70)
    reader = EpochTransferReader(0)
    epochs: list[tuple[int, int]] = []
    pos = 0
    for n in [*cuts, len(stream)]:
        feed(reader, stream[pos:pos + n])
        epochs += reader.take_epochs()
        pos += n
        if pos >= len(stream):
            break
    assert bytes(reader.log()) == b"x" * 50 + b"y" * 30 + b"z"
    assert epochs == [(2, 0), (3, 50)] and reader.confirm == 70


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
    bytes.fromhex("00000002" "00000000" "0000000000000000" "00000001"),  # not a handshake
])
def test_bad_master_handshakes(frame: bytes) -> None:
    with pytest.raises(HAProtocolError):
        decode_master_handshake(frame)


@pytest.mark.parametrize("frame", [
    bytes.fromhex("00000002" "7fffffff" "0000000000000000" "00000001") + bytes(16),  # too big
    bytes.fromhex("00000001") + bytes(32),  # a handshake where a transfer is due
    bytes.fromhex("00000000") + bytes(32),  # READY
    encode_transfer(8, b"", 1, 0, 0),  # not where the log ends
])
def test_bad_master_transfers(frame: bytes) -> None:
    with pytest.raises(HAProtocolError):
        feed(EpochTransferReader(0), frame)
