"""The HA wire format (protocol/ha.py): known-answer bytes, and decoders fed at every cut."""

from __future__ import annotations

import pytest

from rmqstore.protocol.ha import (
    HAProtocolError,
    ReportDecoder,
    TransferReader,
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


def feed(reader: TransferReader, data: bytes) -> None:
    """What the transport does: receive into buffer(), as much as it has room for."""
    while data:
        room = reader.buffer()
        n = min(len(room), len(data))
        room[:n] = data[:n]
        data = data[n:]
        reader.received(n)


def test_transfer_reader_at_every_cut() -> None:
    frames = [(0, b"x" * 100), (100, b""), (100, b"y" * 37), (137, b"z")]
    stream = b"".join(encode_transfer(o, b) for o, b in frames)
    log = b"".join(b for _, b in frames)
    for cut in range(len(stream) + 1):
        r = TransferReader(None)
        feed(r, stream[:cut])
        got = bytes(r.log())
        r.consume(len(got) // 2)  # the appended part goes; what follows stays
        feed(r, stream[cut:])
        assert r.offset == len(got) // 2, cut
        assert got[:len(got) // 2] + bytes(r.log()) == log, cut


def test_transfer_reader_grows_for_a_record_larger_than_its_buffer() -> None:
    body = bytes(range(256)) * 2048  # 512 KiB in 32 KiB frames
    stream = b"".join(encode_transfer(4096 + at, body[at:at + 32768])
                      for at in range(0, len(body), 32768))
    r = TransferReader(4096, capacity=128 * 1024)
    feed(r, stream)  # nothing consumed: one record spans them all
    assert r.offset == 4096 and bytes(r.log()) == body


def test_transfer_reader_refuses_a_frame_that_is_not_next() -> None:
    r = TransferReader(1000)
    with pytest.raises(HAProtocolError, match="master sent offset 999; this replica expects 1000"):
        feed(r, encode_transfer(999, b"a"))
    r = TransferReader(None)
    feed(r, encode_transfer(50, b"abc"))
    with pytest.raises(HAProtocolError, match="expects 53"):
        feed(r, encode_transfer(54, b"d"))
    assert bytes(r.log()) == b"abc"  # what came before the bad frame still counts


def test_transfer_reader_refuses_a_body_over_its_limit_before_buffering_it() -> None:
    r = TransferReader(0, max_body=1024)
    feed(r, encode_transfer(0, b"a" * 1024))
    with pytest.raises(HAProtocolError, match="size 1025"):
        feed(r, bytes.fromhex("0000000000000400" "00000401"))  # header only: refused at once
    with pytest.raises(HAProtocolError, match="offset -1"):
        feed(TransferReader(None), bytes.fromhex("ffffffffffffffff" "00000000"))


def test_transfer_reader_refuses_more_than_max_pending_unappended_bytes() -> None:
    r = TransferReader(0, max_pending=100_000)
    feed(r, encode_transfer(0, b"a" * 60_000))
    with pytest.raises(HAProtocolError, match="without a whole record"):
        feed(r, encode_transfer(60_000, b"a" * 60_000))
