"""The HA wire format (protocol/ha.py): known-answer bytes, and decoders fed at every cut."""

from __future__ import annotations

import pytest

from rmqstore.protocol.ha import (
    HAProtocolError,
    ReportDecoder,
    TransferDecoder,
    encode_report,
    encode_transfer,
    pack_transfer_header,
)


def test_known_bytes() -> None:
    # the docstring's examples: a report of 1,048,576; 32,768 bytes from offset 4096
    assert encode_report(1 << 20) == bytes.fromhex("0000000000100000")
    frame = bytearray(12 + 3)
    pack_transfer_header(frame, 4096, 32768)
    assert bytes(frame[:12]) == bytes.fromhex("0000000000001000" "00008000")
    assert encode_transfer(7, b"abc") == bytes.fromhex("0000000000000007" "00000003") + b"abc"


def test_report_decoder_keeps_the_last_whole_report_and_the_rest() -> None:
    d = ReportDecoder()
    stream = encode_report(5) + encode_report(9) + encode_report(1 << 40)
    assert d.feed(stream[:11]) == 5  # bytes 8-10 wait for the rest of the second report
    assert d.feed(stream[11:20]) == 9
    assert d.feed(stream[20:]) == 1 << 40
    assert d.feed(b"") is None
    with pytest.raises(HAProtocolError):
        d.feed(encode_report(-1))


def test_transfer_decoder_at_every_cut() -> None:
    frames = [(0, b"x" * 100), (100, b""), (100, b"y" * 37), (137, b"z")]
    stream = b"".join(encode_transfer(o, b) for o, b in frames)
    for cut in range(len(stream) + 1):
        d = TransferDecoder()
        got = [(o, bytes(b)) for o, b in d.feed(stream[:cut])]
        got += [(o, bytes(b)) for o, b in d.feed(stream[cut:])]
        assert got == frames, cut
        assert d.buffered == 0


def test_transfer_decoder_refuses_a_body_over_its_limit_before_buffering_it() -> None:
    d = TransferDecoder(max_body=1024)
    assert d.feed(encode_transfer(0, b"a" * 1024)) != []
    with pytest.raises(HAProtocolError, match="size 1025"):
        d.feed(bytes.fromhex("0000000000000400" "00000401"))  # header only: refused at once
    with pytest.raises(HAProtocolError, match="offset -1"):
        TransferDecoder().feed(bytes.fromhex("ffffffffffffffff" "00000000"))
