"""Byte-layout conformance: the files the engine writes, decoded by tests/layout.py (an
independent, spec-derived decoder that does not import rmqstore internals) and compared field by
field with what the API reported. Spec: ../shared/spec/store-format.md (beside the repository)."""

from __future__ import annotations

import datetime
import os
import random
import re
import socket
import struct
import zlib

import pytest

import rmqstore
from tests import layout as L
from tests.conftest import SMALL

SEG = SMALL["commitlog_segment_bytes"]
CQ_UNITS = SMALL["consumequeue_units"]
SLOTS = SMALL["index_slots"]
ENTRIES = SMALL["index_entries"]
STORE_HOST = socket.inet_aton("127.0.0.1") + struct.pack(">i", 10911)


def open_small(path, **over):
    return rmqstore.open(path, **{**SMALL, **over})


def record_size(body_len: int, topic: str, props: bytes) -> int:
    return L.FIXED_OVERHEAD + body_len + len(topic.encode()) + len(props)


# -- the decoder's own primitives -------------------------------------------------------------
def test_java_string_hash_matches_known_java_values():
    assert L.java_string_hash("") == 0
    assert L.java_string_hash("hello") == 99162322
    assert L.java_string_hash("Aa") == L.java_string_hash("BB") == 2112
    assert L.java_string_hash("polygenelubricants") == -(1 << 31)
    # non-BMP: two UTF-16 surrogate units, 0xD83D then 0xDE00
    assert L.java_string_hash("\U0001F600") == 0xD83D * 31 + 0xDE00 == 1772899
    assert L.java_string_hash("ä") == 228
    assert L.IndexFile.key_hash("polygenelubricants") == 0  # abs(MIN_VALUE) -> 0


def test_fastjson_reader_accepts_bare_and_quoted_keys():
    doc = L.fastjson_loads('{"offsetTable":{"a@g":{0:1, 12 :3},"b@g":{"0":4}},"s":"{1:2}"}')
    assert doc == {"offsetTable": {"a@g": {"0": 1, "12": 3}, "b@g": {"0": 4}}, "s": "{1:2}"}


# -- (1) commit-log records, field by field ---------------------------------------------------
def test_record_fields_match_put_results(tmp_path):
    store = open_small(tmp_path)
    cases = []
    try:
        store.create_topic("Fields", 3)
        cases.append((store.put("Fields", b"hello", queue_id=1, tags="A", keys=["k1", "k2"]),
                      "Fields", b"hello", dict(tags="A", keys=["k1", "k2"])))
        cases.append((store.put("Fields", b"", queue_id=1), "Fields", b"", {}))
        cases.append((store.put("Fields", "ünïcødé 🎉".encode(), queue_id=2, tags="標籤",
                                flag=-5, born_timestamp=1_600_000_000_123, reconsume_times=3),
                      "Fields", "ünïcødé 🎉".encode(),
                      dict(tags="標籤", flag=-5, born=1_600_000_000_123, reconsume=3)))
        cases.append((store.put("Fields", b"p", queue_id=0, tags="B", keys=["only"],
                                properties={"color": "red", "WAIT": "true"}),
                      "Fields", b"p", dict(tags="B", keys=["only"],
                                           props={"color": "red", "WAIT": "true"})))
        long_topic = "T" * 127  # TOPICLEN is a signed byte: 127 is the maximum
        cases.append((store.put(long_topic, b"x" * 10), long_topic, b"x" * 10, {}))
        cases.append((store.put("Fields", b"2nd", queue_id=1, flag=0x7FFFFFFF), "Fields",
                      b"2nd", dict(flag=0x7FFFFFFF)))
    finally:
        store.close()

    by_pos = {r.physical_offset: r for r in L.all_records(tmp_path, SEG)}
    assert len(by_pos) == len(cases)
    for res, topic, body, o in cases:
        rec = by_pos[res.commitlog_offset]
        assert rec.magic == L.MAGIC_V1 == 0xDAA320A7
        assert rec.total_size == record_size(len(body), topic, rec.properties_raw)
        assert rec.topic == topic
        assert rec.body == body
        assert rec.body_crc == zlib.crc32(body) & 0x7FFFFFFF
        assert rec.queue_id == res.queue_id
        assert rec.queue_offset == res.queue_offset
        assert rec.physical_offset == res.commitlog_offset
        assert rec.sysflag == 0
        assert rec.flag == o.get("flag", 0)
        assert rec.reconsume_times == o.get("reconsume", 0)
        assert rec.prepared_tx_offset == 0
        assert rec.store_timestamp == res.store_timestamp
        assert rec.born_timestamp == o.get("born", res.store_timestamp)
        assert rec.store_host == STORE_HOST
        assert rec.born_host[:4] == socket.inet_aton("127.0.0.1")
        assert res.msg_id == rec.msg_id == (STORE_HOST + struct.pack(">q", res.commitlog_offset)
                                            ).hex().upper()
        assert len(res.msg_id) == 32
        expect_props = dict(o.get("props", {}))
        if "tags" in o:
            expect_props["TAGS"] = o["tags"]
        if "keys" in o:
            expect_props["KEYS"] = " ".join(o["keys"])
        assert rec.properties == expect_props  # also checks every pair ends with \x02
    # With only tags and keys the string is exactly this.
    assert by_pos[cases[0][0].commitlog_offset].properties_raw == b"TAGS\x01A\x02KEYS\x01k1 k2\x02"
    assert by_pos[cases[1][0].commitlog_offset].properties_raw == b""
    assert by_pos[cases[2][0].commitlog_offset].properties_raw == \
        "TAGS\x01標籤\x02".encode()
    # queue offsets are per (topic, queue)
    assert [c[0].queue_offset for c in cases] == [0, 1, 0, 0, 0, 2]


def test_compressed_body_round_trip(tmp_path):
    """With compression="zlib", bodies >= 4096 bytes are zlib-compressed (SYSFLAG bit 0,
    BODYCRC over the stored bytes) unless compressing would not make them smaller."""
    big = (b"RocketMQ compressible body " * 400)[:6000]
    at_threshold = bytes(range(256)) * 16  # exactly 4096 bytes
    below = b"z" * 4095
    noise = os.urandom(5000)
    store = open_small(tmp_path, commitlog_segment_bytes=16384, compression="zlib")
    try:
        r_big = store.put("Zip", big, tags="Z")
        r_at = store.put("Zip", at_threshold)
        r_below = store.put("Zip", below)
        r_noise = store.put("Zip", noise)
    finally:
        store.close()
    recs = {r.physical_offset: r for r in L.all_records(tmp_path, 16384)}
    for res, body in ((r_big, big), (r_at, at_threshold)):
        rec = recs[res.commitlog_offset]
        assert rec.sysflag == L.SYSFLAG_COMPRESSED
        assert rec.body != body
        assert zlib.decompress(rec.body) == body
        assert rec.body_crc == zlib.crc32(rec.body) & 0x7FFFFFFF
        assert rec.total_size == record_size(len(rec.body), "Zip", rec.properties_raw)
    rec = recs[r_below.commitlog_offset]
    assert rec.sysflag == 0 and rec.body == below
    rec = recs[r_noise.commitlog_offset]
    assert rec.sysflag == 0 and rec.body == noise


def test_lz4_compression_type_bits(tmp_path):
    """Optional 5.x form: SYSFLAG bit 0 plus compression type 1 (LZ4) in bits 8-10."""
    lz4_frame = pytest.importorskip("lz4.frame")
    body = b"lz4 body " * 600
    store = open_small(tmp_path, commitlog_segment_bytes=16384, compression="lz4")
    try:
        res = store.put("Lz", body)
    finally:
        store.close()
    (rec,) = L.all_records(tmp_path, 16384)
    assert rec.physical_offset == res.commitlog_offset
    assert rec.sysflag == L.SYSFLAG_COMPRESSED | (1 << 8)
    assert lz4_frame.decompress(rec.body) == body
    assert rec.body_crc == zlib.crc32(rec.body) & 0x7FFFFFFF


# -- (2) segments, BLANK fillers, full walk ---------------------------------------------------
def _check_segment_chain(segs, batch_at_start=0):
    """batch_at_start: records at the head of the next segment that were put as one batch,
    which moves whole (the blank must then be too small for all of them together)."""
    assert segs, "no commit-log segments"
    for i, seg in enumerate(segs):
        assert seg.path.name == L.file_name(seg.start) and len(seg.path.name) == 20
        assert seg.path.stat().st_size == SEG
        assert seg.start == i * SEG + segs[0].start
        for rec in seg.records:  # never spans a segment
            assert seg.start <= rec.physical_offset
            assert rec.physical_offset + rec.total_size <= seg.start + SEG - 8
        if i + 1 < len(segs):
            nxt = segs[i + 1]
            assert seg.blank is not None, f"segment {seg.path.name} has no BLANK tail"
            assert seg.blank.total_size >= L.END_FILE_MIN_BLANK_LENGTH
            assert seg.blank.position + seg.blank.total_size == seg.start + SEG
            # The blank is there only because the next record (or the whole next batch) did not
            # fit: msgLen + 8 > left.
            head = nxt.records[:max(1, batch_at_start)]
            assert sum(r.total_size for r in head) + 8 > seg.blank.total_size
            raw = seg.path.read_bytes()
            off = seg.blank.position - seg.start
            assert struct.unpack_from(">iI", raw, off) == (SEG - off, 0xCBD43194)
            assert not any(raw[off + 8:]), "bytes after the 8-byte BLANK header"
        else:
            assert seg.blank is None


def test_segments_blanks_and_full_walk(tmp_path):
    rng = random.Random(7)
    puts = []
    store = open_small(tmp_path)
    try:
        store.create_topic("Walk", 4)
        for i in range(220):
            topic = "Walk" if i % 5 else "Other-topic"
            body = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 17, 90, 300, 700])))
            kw = {}
            if i % 3 == 0:
                kw["tags"] = "t%d" % (i % 7)
            if i % 4 == 0:
                kw["keys"] = ["key-%d" % i]
            res = store.put(topic, body, **kw)
            puts.append((topic, body, res))
    finally:
        store.close()

    segs = L.walk_commitlog(tmp_path, SEG)
    assert len(segs) > 5
    _check_segment_chain(segs)
    recs = [r for s in segs for r in s.records]
    assert [(r.topic, r.body, r.queue_id, r.queue_offset, r.physical_offset, r.store_timestamp)
            for r in recs] == \
        [(t, b, r.queue_id, r.queue_offset, r.commitlog_offset, r.store_timestamp)
         for t, b, r in puts]
    # store timestamps are monotone with the physical offset
    ts = [r.store_timestamp for r in recs]
    assert ts == sorted(ts)
    # the tail of the last segment after the last record is zero
    last = segs[-1]
    raw = last.path.read_bytes()
    assert not any(raw[last.end - last.start:])


def test_blank_boundaries_exact_fit(tmp_path):
    """A record that leaves exactly 8 bytes is stored; the next one goes after an 8-byte BLANK.
    A record that ends exactly 8 bytes before the end fits (msgLen + 8 == left)."""
    store = open_small(tmp_path)
    try:
        r1 = store.put("B", b"a" * (SEG - 8 - record_size(0, "B", b"")))  # leaves exactly 8
        r2 = store.put("B", b"bb")  # cannot fit in 8: BLANK of 8, next segment
        r3 = store.put("B", b"c" * (SEG - 8 - 3 * record_size(0, "B", b"") - 2 - 100))
        r4 = store.put("B", b"d" * 100)  # ends exactly 8 bytes before the end of segment 1
        r5 = store.put("B", b"")
    finally:
        store.close()
    assert r1.commitlog_offset == 0
    assert r2.commitlog_offset == SEG
    assert r4.commitlog_offset + record_size(100, "B", b"") == 2 * SEG - 8
    assert r5.commitlog_offset == 2 * SEG
    segs = L.walk_commitlog(tmp_path, SEG)
    assert [s.blank.total_size if s.blank else None for s in segs] == [8, 8, None]
    assert [[r.physical_offset for r in s.records] for s in segs] == \
        [[0], [r2.commitlog_offset, r3.commitlog_offset, r4.commitlog_offset], [2 * SEG]]
    _check_segment_chain(segs)


def test_batch_is_never_split_across_segments(tmp_path):
    store = open_small(tmp_path)
    try:
        first = store.put("Batch", b"f" * 3000)
        bodies = [bytes([65 + i]) * 150 for i in range(10)]  # ~2.4 KiB: does not fit the rest
        batch = store.put_batch("Batch", bodies, tags="bt", keys=["bk"])
        tail = store.put("Batch", b"after")
    finally:
        store.close()
    segs = L.walk_commitlog(tmp_path, SEG)
    _check_segment_chain(segs, batch_at_start=len(bodies))
    recs = {r.physical_offset: r for s in segs for r in s.records}
    seg_of = {r.physical_offset: s.start for s in segs for r in s.records}
    assert seg_of[first.commitlog_offset] == 0
    assert {seg_of[p] for p in batch.commitlog_offsets} == {SEG}, "batch split across segments"
    assert batch.first_queue_offset == 1
    for i, (p, body) in enumerate(zip(batch.commitlog_offsets, bodies, strict=True)):
        rec = recs[p]
        assert rec.body == body
        assert rec.body_crc == zlib.crc32(body) & 0x7FFFFFFF
        assert rec.queue_offset == 1 + i
        assert rec.store_timestamp == batch.store_timestamp
        assert rec.properties == {"TAGS": "bt", "KEYS": "bk"}
    # contiguous
    ps = batch.commitlog_offsets
    assert all(ps[i] + recs[ps[i]].total_size == ps[i + 1] for i in range(len(ps) - 1))
    assert batch.msg_ids == [recs[p].msg_id for p in ps]
    assert recs[tail.commitlog_offset].queue_offset == 11


def test_walk_survives_reopen(tmp_path):
    puts = []
    for round_ in range(3):
        store = open_small(tmp_path)
        try:
            for i in range(40):
                body = b"r%d-%d-" % (round_, i) * (i % 9)
                puts.append((body, store.put("Reopen", body, tags="x")))
        finally:
            store.close()
    segs = L.walk_commitlog(tmp_path, SEG)
    _check_segment_chain(segs)
    recs = [r for s in segs for r in s.records]
    assert [(r.body, r.queue_offset, r.physical_offset) for r in recs] == \
        [(b, r.queue_offset, r.commitlog_offset) for b, r in puts]
    assert [r.queue_offset for r in recs] == list(range(120))


# -- (3) consume queue ------------------------------------------------------------------------
TAGS = [None, "A", "標籤", "🎉🎉🎉", "日本語タグ", "négatif-🎉", "plain"]


def test_consume_queue_units(tmp_path):
    store = open_small(tmp_path)
    puts = []
    try:
        store.create_topic("CQ", 2)
        for i in range(50):  # 50 units in queue 0: files 0, 320, 640, 960 (16 units each)
            tag = TAGS[i % len(TAGS)]
            puts.append(store.put("CQ", b"m%d" % i * (i % 4), queue_id=0, tags=tag))
        for _ in range(3):
            puts.append(store.put("CQ", b"q1", queue_id=1, tags="A"))
    finally:
        store.close()
    recs = {r.physical_offset: r for r in L.all_records(tmp_path, SEG)}

    d0 = tmp_path / "consumequeue" / "CQ" / "0"
    names = sorted(p.name for p in d0.iterdir())
    assert names == [L.file_name(n * CQ_UNITS * 20) for n in range(4)]
    assert names[1] == "00000000000000000320"
    for p in d0.iterdir():
        assert p.stat().st_size == CQ_UNITS * 20

    for qid, expected in ((0, puts[:50]), (1, puts[50:])):
        units = L.read_consume_queue(tmp_path, "CQ", qid, CQ_UNITS)
        assert len(units) == len(expected)
        for n, (unit, res) in enumerate(zip(units, expected, strict=True)):
            assert res.queue_offset == n
            rec = recs[res.commitlog_offset]
            assert unit.phys == res.commitlog_offset
            assert unit.size == rec.total_size
            tag = rec.tags
            assert unit.tags_code == (L.java_string_hash(tag) if tag else 0)
            # Raw bytes: unit n at byte n*20 of the file holding it, tagsCode sign-extended.
            f = d0.parent / str(qid) / L.file_name((n // CQ_UNITS) * CQ_UNITS * 20)
            raw = f.read_bytes()[(n % CQ_UNITS) * 20:(n % CQ_UNITS) * 20 + 20]
            code = L.java_string_hash(tag) if tag else 0
            assert raw == struct.pack(">qiq", res.commitlog_offset, rec.total_size, code)
    # the negative hashes really are sign-extended to 8 bytes of 0xFF...
    neg = L.read_consume_queue(tmp_path, "CQ", 0, CQ_UNITS)[3]
    assert neg.tags_code == L.java_string_hash("🎉🎉🎉") < 0
    raw = (d0 / L.file_name(0)).read_bytes()[3 * 20 + 12:3 * 20 + 20]
    assert raw[:4] == b"\xff\xff\xff\xff"
    # the rest of the last file is zero (end of data)
    last = (d0 / names[-1]).read_bytes()
    assert not any(last[(50 % CQ_UNITS) * 20:])


# -- (4) index file ---------------------------------------------------------------------------
def _key_with_hash(prefix: str, target: int, n: int = 7) -> str:
    """A key k of printable ASCII such that java_string_hash(prefix + k) == target."""
    base = "A" * n
    t = (target - L.java_string_hash(prefix + base)) % (1 << 32)
    digits = []
    for _ in range(n):
        t, d = divmod(t, 31)
        digits.append(d)
    assert t == 0
    key = "".join(chr(65 + d) for d in reversed(digits))
    assert L.java_string_hash(prefix + key) & 0xFFFFFFFF == target & 0xFFFFFFFF
    return key


def test_index_file_layout_and_chains(tmp_path):
    min_key = _key_with_hash("Idx#", -(1 << 31))  # abs(MIN_VALUE) -> keyHash 0
    neg_key = "négatif-🎉"
    keys_per_put = []
    puts = []
    store = open_small(tmp_path)
    try:
        for i in range(40):
            ks = ["k%d" % i, "shared"] if i % 2 else ["k%d" % i]
            if i == 7:
                ks.append(min_key)
            if i == 9:
                ks.append(neg_key)
            puts.append(store.put("Idx", b"i%d" % i, keys=ks))
            keys_per_put.append(ks)
        other = store.put("Idx2", b"other topic", keys=["k1"])  # same key, other topic
    finally:
        store.close()

    files = L.index_files(tmp_path)
    assert len(files) == 1
    assert re.fullmatch(r"\d{17}", files[0].name)
    # yyyyMMddHHmmssSSS, local time, of the file's creation (at about the first put)
    created = datetime.datetime.strptime(files[0].name, "%Y%m%d%H%M%S%f").timestamp() * 1000
    assert abs(created - puts[0].store_timestamp) < 5000
    idx = L.IndexFile(files[0], SLOTS, ENTRIES)
    assert files[0].stat().st_size == 40 + SLOTS * 4 + ENTRIES * 20
    h = idx.header
    n_entries = sum(len(k) for k in keys_per_put) + 1
    assert h.index_count == 1 + n_entries  # numbering starts at 1
    assert h.begin_timestamp == puts[0].store_timestamp
    assert h.end_timestamp == other.store_timestamp
    assert h.begin_phy_offset == puts[0].commitlog_offset
    assert h.end_phy_offset == other.commitlog_offset
    assert h.hash_slot_count == idx.used_slots()
    assert idx.entry(0) == L.IndexEntry(0, 0, 0, 0, 0)  # entry #0 is never used

    # Every entry is reachable from its slot, in insertion order (newest first on the chain).
    expected = []  # (entry number, "topic#key", phys, store ts)
    for res, ks in zip(puts, keys_per_put, strict=True):
        for k in ks:
            expected.append(("Idx#" + k, res.commitlog_offset, res.store_timestamp))
    expected.append(("Idx2#k1", other.commitlog_offset, other.store_timestamp))
    for n, (full_key, phys, ts) in enumerate(expected, start=1):
        e = idx.entry(n)
        assert e.key_hash == L.IndexFile.key_hash(full_key) >= 0
        assert e.phy_offset == phys
        assert e.time_diff == (ts - h.begin_timestamp) // 1000
        assert e in idx.chain(idx.slot_of(full_key))
    for slot in range(SLOTS):
        for e in idx.chain(slot):
            assert e.key_hash % SLOTS == slot
            assert e.prev_index < e.number

    # Lookups by key find exactly the puts that carried it.
    for i, res in enumerate(puts):
        found = [e.phy_offset for e in idx.lookup("Idx", "k%d" % i)]
        assert res.commitlog_offset in found
    shared = [e.phy_offset for e in idx.lookup("Idx", "shared")]
    assert sorted(shared) == [p.commitlog_offset for i, p in enumerate(puts) if i % 2]
    assert [e.phy_offset for e in idx.lookup("Idx", min_key)] == [puts[7].commitlog_offset]
    assert idx.lookup("Idx", min_key)[0].key_hash == 0
    assert [e.phy_offset for e in idx.lookup("Idx", neg_key)] == [puts[9].commitlog_offset]
    assert other.commitlog_offset in [e.phy_offset for e in idx.lookup("Idx2", "k1")]
    assert other.commitlog_offset not in [e.phy_offset for e in idx.lookup("Idx", "k1")]


def test_index_indexes_uniq_key(tmp_path):
    """Spec 4.3: UNIQ_KEY (if present) is indexed as "<topic>#<uniq>", before the KEYS."""
    store = open_small(tmp_path)
    try:
        res = store.put("Uniq", b"u", keys=["plain"],
                        properties={"UNIQ_KEY": "AC11000100002A9F0000000000000001"})
    finally:
        store.close()
    idx = L.IndexFile(L.index_files(tmp_path)[0], SLOTS, ENTRIES)
    assert [e.phy_offset for e in idx.lookup("Uniq", "plain")] == [res.commitlog_offset]
    assert [e.phy_offset for e in idx.lookup("Uniq", "AC11000100002A9F0000000000000001")] == \
        [res.commitlog_offset]
    assert idx.entry(1).key_hash == L.IndexFile.key_hash("Uniq#AC11000100002A9F0000000000000001")


def test_index_rolls_over_when_full(tmp_path):
    """A file is full at indexCount == maxIndexNum (255 entries of 256); the next key goes to a
    new file, and every key stays findable."""
    store = open_small(tmp_path)
    puts = []
    try:
        for i in range(150):  # 300 entries
            puts.append(store.put("Roll", b"r", keys=["a%d" % i, "b%d" % i]))
    finally:
        store.close()
    files = L.index_files(tmp_path)
    assert len(files) == 2
    assert files[0].name < files[1].name
    first, second = (L.IndexFile(f, SLOTS, ENTRIES) for f in files)
    assert first.header.index_count == ENTRIES
    assert second.header.index_count == 1 + 300 - (ENTRIES - 1)
    # entry 255 of the first file is a127's second key "b127": 255 = 2*127 + 1
    assert first.entry(ENTRIES - 1).phy_offset == puts[127].commitlog_offset
    assert first.header.end_phy_offset == puts[127].commitlog_offset
    assert second.header.begin_phy_offset == puts[127].commitlog_offset
    assert second.header.end_phy_offset == puts[-1].commitlog_offset
    for i, res in enumerate(puts):
        for k in ("a%d" % i, "b%d" % i):
            hits = [e.phy_offset for f in (first, second) for e in f.lookup("Roll", k)]
            assert res.commitlog_offset in hits, k


# -- (5) checkpoint, abort, lock --------------------------------------------------------------
def test_checkpoint_abort_and_lock(tmp_path):
    store = open_small(tmp_path)
    try:
        assert (tmp_path / "abort").exists()
        assert (tmp_path / "lock").read_bytes() == b"lock"
        last = None
        for i in range(30):
            last = store.put("Ck", b"c%d" % i, keys=["ck%d" % i])
    finally:
        store.close()
    assert not (tmp_path / "abort").exists()
    cp = L.read_checkpoint(tmp_path)
    assert len(cp.raw) == 4096
    assert not any(cp.raw[24:])  # 4.x: three longs, the rest zero
    assert cp.physic_msg_timestamp == last.store_timestamp
    assert cp.logics_msg_timestamp == last.store_timestamp
    # big-endian: a little-endian writer would give absurd values
    for v in (cp.physic_msg_timestamp, cp.logics_msg_timestamp):
        assert 1_500_000_000_000 < v < 4_000_000_000_000
    assert cp.raw[:8] == struct.pack(">q", last.store_timestamp)
    assert 0 <= cp.index_msg_timestamp <= last.store_timestamp


def test_checkpoint_index_timestamp_is_end_of_last_full_index_file(tmp_path):
    """Spec 5.1/4.3: indexMsgTimestamp is the endTimestamp of the last *full* index file (set
    when the index rolls over), so it is 0 while no index file has filled up."""
    store = open_small(tmp_path)
    try:
        store.put("Ck", b"c", keys=["only-one"])
    finally:
        store.close()
    assert L.read_checkpoint(tmp_path).index_msg_timestamp == 0

    store = open_small(tmp_path)
    try:
        for i in range(140):
            store.put("Ck", b"c", keys=["x%d" % i, "y%d" % i])
    finally:
        store.close()
    full = [L.IndexFile(f, SLOTS, ENTRIES) for f in L.index_files(tmp_path)]
    full = [f for f in full if f.header.index_count >= ENTRIES]
    assert full
    assert L.read_checkpoint(tmp_path).index_msg_timestamp == full[-1].header.end_timestamp


# -- (6) JSON metadata ------------------------------------------------------------------------
def test_consumer_offset_and_topics_json_shape(tmp_path):
    store = open_small(tmp_path)
    try:
        store.create_topic("TopicA", 4)
        for qid, n in ((0, 5), (1, 7), (3, 120)):  # commits stay within their queues
            store.put_batch("TopicA", [b"x"] * n, queue_id=qid)
        store.commit_offset("GroupX", "TopicA", 0, 5)
        store.commit_offset("GroupX", "TopicA", 3, 120)
        store.commit_offset("GroupY", "TopicA", 1, 7)
    finally:
        store.close()
    text = (tmp_path / "config" / "consumerOffset.json").read_text("utf-8")
    doc = L.fastjson_loads(text)
    assert doc == {"offsetTable": {"TopicA@GroupX": {"0": 5, "3": 120},
                                   "TopicA@GroupY": {"1": 7}}}
    # fastjson form: integer map keys bare, as ConfigManager.persist writes them
    assert re.search(r"[{,]\s*0\s*:\s*5\b", text)
    assert not re.search(r'"0"\s*:', text)

    topics = L.read_config_json(tmp_path, "topics.json")
    assert set(topics) == {"dataVersion", "topicConfigTable"}
    assert isinstance(topics["dataVersion"]["counter"], int)
    assert isinstance(topics["dataVersion"]["timestamp"], int)
    assert topics["topicConfigTable"]["TopicA"] == {
        "order": False, "perm": 6, "readQueueNums": 4, "topicFilterType": "SINGLE_TAG",
        "topicName": "TopicA", "topicSysFlag": 0, "writeQueueNums": 4}


def test_engine_reads_fastjson_consumer_offsets(tmp_path):
    cfg = tmp_path / "config"
    cfg.mkdir(parents=True)
    (cfg / "consumerOffset.json").write_text(
        '{"offsetTable":{"TopicA@GroupX":{0:120,1:98},"%RETRY%GroupX@GroupX":{0:3},'
        '"TopicB@GroupZ":{"2":44}}}', "utf-8")
    store = open_small(tmp_path)
    try:
        assert store.committed_offset("GroupX", "TopicA", 0) == 120
        assert store.committed_offset("GroupX", "TopicA", 1) == 98
        assert store.committed_offset("GroupX", "%RETRY%GroupX", 0) == 3
        assert store.committed_offset("GroupZ", "TopicB", 2) == 44
        assert store.committed_offset("GroupX", "TopicA", 2) is None
    finally:
        store.close()


def test_engine_reads_pretty_printed_fastjson_topics(tmp_path):
    cfg = tmp_path / "config"
    cfg.mkdir(parents=True)
    (cfg / "topics.json").write_text(
        '{\n\t"dataVersion":{\n\t\t"counter":3,\n\t\t"timestamp":1700000000000\n\t},\n'
        '\t"topicConfigTable":{\n\t\t"TopicA":{\n\t\t\t"order":false,\n\t\t\t"perm":6,\n'
        '\t\t\t"readQueueNums":4,\n\t\t\t"topicFilterType":"SINGLE_TAG",\n'
        '\t\t\t"topicName":"TopicA",\n\t\t\t"topicSysFlag":0,\n\t\t\t"writeQueueNums":4\n'
        '\t\t}\n\t}\n}', "utf-8")
    store = open_small(tmp_path)
    try:
        qids = {store.put("TopicA", b"x").queue_id for _ in range(8)}
    finally:
        store.close()
    assert qids == {0, 1, 2, 3}


def test_config_json_backup_on_persist(tmp_path):
    """Spec 9: persist copies the previous content to <file>.bak; load falls back to .bak when
    the main file is empty."""
    store = open_small(tmp_path)
    try:
        store.put_batch("T", [b"x", b"y"])
        store.commit_offset("G", "T", 0, 1)
    finally:
        store.close()
    first = (tmp_path / "config" / "consumerOffset.json").read_text("utf-8")
    store = open_small(tmp_path)
    try:
        store.commit_offset("G", "T", 0, 2)
    finally:
        store.close()
    bak = tmp_path / "config" / "consumerOffset.json.bak"
    assert bak.exists()
    assert L.fastjson_loads(bak.read_text("utf-8")) == L.fastjson_loads(first)
    (tmp_path / "config" / "consumerOffset.json").write_text("", "utf-8")
    store = open_small(tmp_path)
    try:
        assert store.committed_offset("G", "T", 0) == 1
    finally:
        store.close()
