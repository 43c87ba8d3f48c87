"""put_encoded_batch: a SEND_BATCH_MESSAGE body stored natively, checked against a model of
what each entry should become (its flag, body and properties minus WAIT, then the shared ones),
through reads, tag filters, the index and a reopen."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rmqstore
from rmqstore.options import RecordInput
from rmqstore.record import decode_properties, encode_properties

_name = st.text("abcdefgKEYSWAITUNIQ_", min_size=1, max_size=8)
_value = st.text(st.characters(blacklist_characters="\x00\x01\x02", blacklist_categories=("Cs",)),
                 max_size=12)


def entry(flag: int, body: bytes, props: dict[str, str]) -> bytes:
    """One entry as a client encodes it (MessageDecoder.encodeMessages)."""
    raw = encode_properties(props) if props else b""
    total = 20 + len(body) + 2 + len(raw)
    head = struct.pack(">iiiii", total, 0, 0, flag, len(body))
    return head + body + struct.pack(">h", len(raw)) + raw


@st.composite
def entries(draw):
    n = draw(st.integers(1, 12))
    out = []
    for i in range(n):
        props = draw(st.dictionaries(_name, _value, max_size=4))
        if draw(st.booleans()):
            props["UNIQ_KEY"] = f"U{i:04d}"
        if draw(st.booleans()):
            props["TAGS"] = draw(st.sampled_from(["A", "B", "C"]))
        if draw(st.booleans()):
            props["WAIT"] = "true"
        out.append((draw(st.integers(-2**31, 2**31 - 1)), draw(st.binary(max_size=300)), props))
    return out


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(entries(), min_size=1, max_size=4))
def test_entries_are_stored_as_the_model_says(tmp_path_factory, small_config, batches) -> None:
    root = tmp_path_factory.mktemp("enc")
    shared = {"CLUSTER": "C1"}
    model = []
    with rmqstore.open(root, **small_config) as s:
        s.create_topic("T", 2)
        for batch in batches:
            data = b"".join(entry(*e) for e in batch)
            # The broker's entry point: the producer's address and born time.
            pending = s.put_entries("T", data, 1, RecordInput(
                dict(shared), born_host=("10.1.2.3", 7), born_timestamp=123))
            assert pending.batch.first_queue_offset == len(model)
            assert len(pending.batch.msg_ids) == len(batch)
            for flag, body, props in batch:
                kept = {k: v for k, v in props.items() if k != "WAIT"}
                model.append((flag, body, {**kept, **shared}))
    with rmqstore.open(root, **small_config) as s:  # and after a reopen
        got = s.get("T", 1, 0, 1000).messages
        assert [(m.flag, m.body, m.properties) for m in got] == model
        assert all(m.born_host == ("10.1.2.3", 7) and m.born_timestamp == 123 for m in got)
        for tag in "ABC":
            want = [i for i, (_f, _b, p) in enumerate(model) if p.get("TAGS") == tag]
            assert [m.queue_offset for m in s.get("T", 1, 0, 1000, tags=[tag]).messages] == want
        for i, (_f, _b, p) in enumerate(model):
            if p.get("UNIQ_KEY"):  # an empty UNIQ_KEY is not indexed (IndexService.buildIndex)
                assert i in [m.queue_offset for m in s.query("T", p["UNIQ_KEY"])]


def test_keys_are_indexed_and_stored_properties_decode(tmp_path, small_config) -> None:
    with rmqstore.open(tmp_path, **small_config) as s:
        data = entry(0, b"a", {"KEYS": "k1 k2", "UNIQ_KEY": "U1"}) + entry(0, b"b", {})
        s.put_encoded_batch("T", data, queue_id=0)
        assert [m.body for m in s.query("T", "k2")] == [b"a"]
        assert [m.body for m in s.query("T", "U1")] == [b"a"]
        assert decode_properties(s.get("T", 0, 1, 1).messages[0].record_view[-2:]) == {}


@pytest.mark.parametrize("cut", [1, 5, 21])
def test_entries_that_do_not_add_up_store_nothing(tmp_path, small_config, cut) -> None:
    with rmqstore.open(tmp_path, **small_config) as s:
        data = entry(0, b"x" * 50, {"A": "1"}) * 3
        with pytest.raises(ValueError, match="sizes do not add up"):
            s.put_encoded_batch("T", data[:-cut], queue_id=0)
        assert s.get("T", 0, 0, 10).messages == []
        s.put_encoded_batch("T", data, queue_id=0)
        assert len(s.get("T", 0, 0, 10).messages) == 3


def test_body_over_the_limit_stores_nothing(tmp_path, small_config) -> None:
    with rmqstore.open(tmp_path, max_message_size=100, **small_config) as s:
        data = entry(0, b"x" * 10, {}) + entry(0, b"x" * 101, {})
        with pytest.raises(ValueError):
            s.put_encoded_batch("T", data, queue_id=0)
        assert s.get("T", 0, 0, 10).messages == []


def test_batches_cross_segments_whole(tmp_path, small_config) -> None:
    segment = small_config["commitlog_segment_bytes"]  # 4 KiB
    small = entry(0, b"y" * 100, {"UNIQ_KEY": "u"}) * 10  # about 2.2 KB of records
    large = entry(0, b"z" * 1000, {}) * 10  # more than a segment: written across several
    with rmqstore.open(tmp_path, **small_config) as s:
        for _ in range(12):
            offs = s.put_encoded_batch("T", small, queue_id=0).batch.commitlog_offsets
            assert offs[0] // segment == offs[-1] // segment  # a batch that fits is not split
        offs = s.put_encoded_batch("T", large, queue_id=0).batch.commitlog_offsets
        assert offs[0] // segment != offs[-1] // segment
    with rmqstore.open(tmp_path, **small_config) as s:
        got = s.get("T", 0, 0, 1000).messages
        assert [m.body for m in got] == [b"y" * 100] * 120 + [b"z" * 1000] * 10


def test_entry_properties_without_the_last_separator(tmp_path, small_config) -> None:
    """Java's encodeMessages may leave out the last \\x02; the shared properties still
    follow as their own pairs."""
    raw = b"UNIQ_KEY\x01U9\x02TAGS\x01A"
    data = (struct.pack(">iiiii", 20 + 1 + 2 + len(raw), 0, 0, 0, 1) + b"b"
            + struct.pack(">h", len(raw)) + raw)
    with rmqstore.open(tmp_path, **small_config) as s:
        s.put_encoded_batch("T", data, queue_id=0, properties={"CLUSTER": "C1"})
        m = s.get("T", 0, 0, 1).messages[0]
        assert m.properties == {"UNIQ_KEY": "U9", "TAGS": "A", "CLUSTER": "C1"}
        assert [x.queue_offset for x in s.get("T", 0, 0, 9, tags=["A"]).messages] == [0]


@pytest.mark.parametrize("buffer_bytes", [0, 1024, 8 << 20])
def test_staged_and_mapped_batches_store_the_same_records(tmp_path, small_config, buffer_bytes):
    """Batches are pwritten from a buffer when they fit it, else written through the mapping
    (0: always): the records read back are the same either way, across segments and reopen."""
    data = b"".join(entry(i, b"b%d" % i * (i + 1), {"UNIQ_KEY": f"u{i}", "TAGS": "A"})
                    for i in range(20))
    with rmqstore.open(tmp_path, batch_write_buffer_bytes=buffer_bytes, **small_config) as s:
        s.create_topic("T", 2)
        for _ in range(6):
            s.put_encoded_batch("T", data, queue_id=0)
            s.put_batch("T", [b"x" * 300] * 9, queue_id=1, tags="B")
    with rmqstore.open(tmp_path, **small_config) as s:
        got = s.get("T", 0, 0, 1000).messages
        assert [(m.flag, m.body, m.properties["UNIQ_KEY"]) for m in got] == \
            [(i, b"b%d" % i * (i + 1), f"u{i}") for _ in range(6) for i in range(20)]
        assert [m.body for m in s.get("T", 1, 0, 1000, tags=["B"]).messages] == [b"x" * 300] * 54
        assert [m.body for m in s.query("T", "u7")] == [b"b7" * 8] * 6
