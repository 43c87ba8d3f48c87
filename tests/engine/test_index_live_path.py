"""A put indexes its keys without reading the index file's header: the writer's record is new,
so the idempotence check that re-dispatch needs (put_keys) is skipped on the send path; the
keys are still found, across a roll to a new index file."""

from __future__ import annotations

from rmqstore import open_store
from rmqstore.index import IndexFile

SMALL = {"index_slots": 16, "index_entries": 8, "commitlog_segment_bytes": 1 << 20}


def test_puts_index_without_reading_the_header(tmp_path, monkeypatch) -> None:
    with open_store(tmp_path, **SMALL) as store:
        reads = []
        real = IndexFile.header
        monkeypatch.setattr(IndexFile, "header", lambda f: reads.append(1) or real(f))
        for i in range(10):  # 8 entries a file: the keys roll into a second file
            store.put("T", b"%d" % i, keys=[f"k{i}"])
        store.put_batch("T", [b"b1", b"b2"], keys=["kb"])
        roll_reads = len(reads)  # a roll reads the full file's header once
        monkeypatch.undo()
        assert roll_reads <= 2, f"{roll_reads} header reads for 12 puts"
        assert len(store.index.files) >= 2
        assert [m.body for m in store.query("T", "k0")] == [b"0"]
        assert [m.body for m in store.query("T", "k9")] == [b"9"]
        assert [m.body for m in store.query("T", "kb")] == [b"b1", b"b2"]
