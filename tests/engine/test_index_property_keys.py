"""Keys that arrive only inside the properties (KEYS=..., as the broker stores a producer's
message) are indexed like keys given apart, so QUERY_MESSAGE finds broker-stored messages."""

from __future__ import annotations

from rmqstore import open_store

SMALL = {"index_slots": 1000, "index_entries": 4000, "commitlog_segment_bytes": 1 << 20}


def test_keys_in_properties_are_indexed(tmp_path) -> None:
    with open_store(tmp_path, **SMALL) as store:
        store.put("T", b"one", properties={"KEYS": "k1 k2", "UNIQ_KEY": "U1"})
        store.put("T", b"two", keys=["k2"], properties={"KEYS": "ignored"})
        store.put_batch("T", [b"b1", b"b2"], properties={"KEYS": "kb"})
        assert [m.body for m in store.query("T", "k1")] == [b"one"]
        assert [m.body for m in store.query("T", "k2")] == [b"one", b"two"]
        assert [m.body for m in store.query("T", "U1")] == [b"one"]
        assert store.query("T", "ignored") == []  # keys given apart replace the property
        assert [m.body for m in store.query("T", "kb")] == [b"b1", b"b2"]
