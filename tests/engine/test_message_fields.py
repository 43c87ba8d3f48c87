"""Every field of a read Message, as a get builds it in one native call, matches the record as
a pure-Python decoder reads it from the segment file and as it was put: bodies plain and
compressed, tags, keys, other properties, IPv4 and IPv6 hosts, records on both sides of a
commit-log file's end, reads of any size."""

from __future__ import annotations

import gc
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rmqstore
from rmqstore.options import RecordInput
from rmqstore.protocol.message import decode_messages
from tests import corrupt

SEGMENT = 4096  # the smallest file: a filler and a dozen records cross its end
ZLIB = 0x1
TOPIC = "T"

_words = st.text("abcXYZ019_-", min_size=1, max_size=12)
_message = st.fixed_dictionaries({
    "body": st.binary(max_size=600),
    "compressed": st.booleans(),
    "tags": st.none() | _words,
    "keys": st.lists(_words, max_size=3),
    "extra": st.dictionaries(st.sampled_from(["a", "bb", "color", "x_y"]), _words, max_size=3),
    "flag": st.integers(-(2**31), 2**31 - 1),
    "reconsume": st.integers(0, 16),
    "born_host": st.sampled_from([("10.1.2.3", 4567), ("::1", 9876), ("fe80::7", 1)]),
    "queue": st.integers(0, 1),
})


def _put(store, spec: dict, born_ts: int) -> None:
    props = dict(spec["extra"])
    if spec["tags"] is not None:
        props["TAGS"] = spec["tags"]
    if spec["keys"]:
        props["KEYS"] = " ".join(spec["keys"])
    body = zlib.compress(spec["body"]) if spec["compressed"] else spec["body"]
    record = RecordInput(props, flag=spec["flag"], born_timestamp=born_ts,
                         reconsume_times=spec["reconsume"], born_host=spec["born_host"],
                         sysflag=ZLIB if spec["compressed"] else 0)
    store.put_record(TOPIC, body, spec["queue"], record)


def _on_disk(root: Path, m):
    """The record behind m as the pure-Python decoder reads it from the segment file."""
    path, pos = corrupt.segment_of(root, m.commitlog_offset, SEGMENT)
    raw = corrupt.read(path)[pos:pos + m.size]
    (ext,) = decode_messages(raw)
    stored = decode_messages(raw, decompress=False)[0].body
    return raw, ext, stored


def _check(root: Path, m, spec: dict, born_ts: int, queue_offset: int) -> None:
    raw, ext, stored = _on_disk(root, m)
    assert m.body == spec["body"] == ext.body
    assert bytes(m.body_view) == stored
    assert bytes(m.record_view) == raw
    assert m.topic == ext.topic == TOPIC
    assert m.properties == ext.properties
    assert m.tags == spec["tags"]
    assert m.keys == spec["keys"]
    assert m.uniq_key is None
    assert (m.queue_id, m.queue_offset) == (ext.queue_id, ext.queue_offset) == \
        (spec["queue"], queue_offset)
    assert m.commitlog_offset == ext.commitlog_offset
    assert m.sysflag == ext.sys_flag and bool(m.sysflag & ZLIB) == spec["compressed"]
    assert m.flag == ext.flag == spec["flag"]
    assert m.born_timestamp == ext.born_timestamp == born_ts
    assert m.store_timestamp == ext.store_timestamp
    assert m.reconsume_times == ext.reconsume_times == spec["reconsume"]
    assert m.prepared_transaction_offset == ext.prepared_transaction_offset
    assert m.born_host == ext.born_host
    assert m.born_host[1] == spec["born_host"][1]
    assert m.store_host == ext.store_host
    assert m.msg_id == ext.offset_msg_id
    assert m.size == len(raw)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=st.lists(_message, min_size=10, max_size=60), per_get=st.integers(1, 70),
       filler=st.integers(0, 3800))
def test_every_field_of_a_read_message_matches_the_stored_record(tmp_path_factory, small_config,
                                                                 specs, per_get, filler):
    root = tmp_path_factory.mktemp("fields")
    cfg = dict(small_config, commitlog_segment_bytes=SEGMENT)
    with rmqstore.open(root, **cfg) as store:
        store.create_topic(TOPIC, 2)
        store.put("F", bytes(filler))  # where the first file ends among the records
        for i, spec in enumerate(specs):
            _put(store, spec, 1_700_000_000_000 + i)
        for q in (0, 1):
            sent = [(i, s) for i, s in enumerate(specs) if s["queue"] == q]
            got, off = [], 0
            while True:
                res = store.get(TOPIC, q, off, per_get)
                if not res.messages:
                    break
                got.extend(res.messages)
                off = res.next_offset
            assert len(got) == len(sent)
            for queue_offset, (m, (i, spec)) in enumerate(zip(got, sent, strict=True)):
                _check(root, m, spec, 1_700_000_000_000 + i, queue_offset)
                again = store.get_by_commitlog_offset(m.commitlog_offset)
                _check(root, again, spec, 1_700_000_000_000 + i, queue_offset)


def test_a_read_spans_commit_log_files(tmp_path, small_config):
    """One get whose messages lie in three segment files: each has its own file's bytes."""
    cfg = dict(small_config, commitlog_segment_bytes=SEGMENT, consumequeue_units=1024)
    bodies = [bytes([i]) * 200 for i in range(50)]  # ~290-byte records: 14 a file
    with rmqstore.open(tmp_path, **cfg) as store:
        for body in bodies:
            store.put(TOPIC, body, queue_id=0)
        msgs = store.get(TOPIC, 0, 0, 64).messages
        assert len({m.commitlog_offset // SEGMENT for m in msgs}) >= 3
        assert [m.body for m in msgs] == bodies
        assert [bytes(m.body_view) for m in msgs] == bodies
        assert [m.queue_offset for m in msgs] == list(range(50))


def test_read_messages_stay_whole_after_the_store_moves_on(tmp_path, small_config):
    """Bodies are copies: later puts, a file roll and the store's close change none of them."""
    cfg = dict(small_config, commitlog_segment_bytes=SEGMENT)
    with rmqstore.open(tmp_path, **cfg) as store:
        for i in range(20):
            store.put(TOPIC, b"%03d" % i * 30, queue_id=0)
        msgs = store.get(TOPIC, 0, 0, 32).messages
        for _ in range(200):
            store.put(TOPIC, b"later", queue_id=0)
    assert [m.body for m in msgs] == [b"%03d" % i * 30 for i in range(20)]
    assert [m.queue_offset for m in msgs] == list(range(20))


def test_read_messages_cost_the_cycle_collector_nothing(tmp_path, small_config):
    """A message holds bytes, a view and ints only: it is not tracked, so a read's thousand new
    objects trigger no collection work (one tracked each cost ~30 ns a message)."""
    with rmqstore.open(tmp_path, **small_config) as store:
        store.put(TOPIC, b"x", queue_id=0)
        (m,) = store.get(TOPIC, 0, 0, 1).messages
        assert not gc.is_tracked(m)
        assert not gc.is_tracked(store.get_by_commitlog_offset(m.commitlog_offset))


def test_a_message_is_no_native_object_and_refuses_new_attributes(tmp_path, small_config):
    with rmqstore.open(tmp_path, **small_config) as store:
        store.put(TOPIC, b"x", queue_id=0, tags="A")
        (m,) = store.get(TOPIC, 0, 0, 1).messages
    assert isinstance(m, rmqstore.Message)
    assert "cdata" not in type(m.body).__name__ and type(m.queue_offset) is int
    with pytest.raises(AttributeError):
        m.queue_offset = 5
    assert m.queue_offset == 0 and m.tags == "A"
