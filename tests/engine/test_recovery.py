"""Recovery: torn tails, flipped bits, zero-filled and garbage segments, crossing segments."""

from __future__ import annotations

import logging

import pytest

import rmqstore
from tests import corrupt


def _fill(root, cfg, n, topic="T"):
    with rmqstore.open(root, **cfg) as s:
        return [s.put(topic, b"body-%04d" % i * (i % 7 + 1), tags=f"t{i % 3}") for i in range(n)]


def _bodies(root, cfg, topic="T", qid=0):
    with rmqstore.open(root, **cfg) as s:
        res = s.get(topic, qid, 0, 10_000)
        return [m.body for m in res.messages], s.max_offset(topic, qid)


def test_records_cross_segment_boundaries(tmp_path, small_config):
    puts = _fill(tmp_path, small_config, 200)
    segs = corrupt.commitlog_segments(tmp_path)
    assert len(segs) > 5
    assert all(corrupt.size(p) == 4096 for p in segs)
    bodies, max_off = _bodies(tmp_path, small_config)
    assert max_off == 200
    assert bodies == [b"body-%04d" % i * (i % 7 + 1) for i in range(200)]
    # every record lies within one segment
    for r in puts:
        start = r.commitlog_offset
        assert start // 4096 == (start + 20) // 4096


@pytest.mark.parametrize("abnormal", [False, True])
def test_truncating_last_record_at_every_byte(tmp_path, small_config, abnormal):
    """Cut the commit log inside its last record at each byte: recovery keeps exactly the
    records before it, and the store accepts new writes after."""
    base = tmp_path / "base"
    puts = _fill(base, small_config, 40)
    last = puts[-1]
    seg_path = corrupt.commitlog_segments(base)[-1]
    pos_in_seg = last.commitlog_offset % 4096
    record_len = 91 + len(b"body-0039" * (39 % 7 + 1)) + 1 + len("TAGS\x01t0\x02")
    original = corrupt.read(seg_path)
    for cut in range(0, record_len):
        root = tmp_path / f"cut{cut}"
        import shutil
        shutil.copytree(base, root)
        p = root / "commitlog" / seg_path.name
        corrupt.zero_range(p, pos_in_seg + cut, pos_in_seg + record_len)
        if abnormal:
            corrupt.mark_crashed(root)
        bodies, max_off = _bodies(root, small_config)
        assert max_off == 39, f"cut at {cut}"
        assert len(bodies) == 39
        with rmqstore.open(root, **small_config) as s:
            r = s.put("T", b"after")
            assert r.queue_offset == 39
            assert s.get("T", 0, 39).messages[0].body == b"after"
    assert corrupt.read(seg_path) == original


def test_flipped_body_bit_skips_that_record_only(tmp_path, small_config, caplog):
    """RocketMQ cuts the log at the first record failing its CRC and deletes what follows; the
    consume queues know of records after it, so it is corruption in the middle: skipped and
    reported, every other record kept and readable through its queue."""
    puts = _fill(tmp_path, small_config, 30)
    victim = puts[25]
    seg = corrupt.commitlog_segments(tmp_path)[victim.commitlog_offset // 4096]
    corrupt.flip_bit(seg, victim.commitlog_offset % 4096 + 88 + 2)  # inside the body
    victim_len = puts[26].commitlog_offset - victim.commitlog_offset
    for _ in range(2):  # the range stays skipped, and reported, at every open
        with caplog.at_level(logging.WARNING):
            with rmqstore.open(tmp_path, **small_config) as s:
                assert s.recovery.skipped == ((victim.commitlog_offset, victim_len),)
                got = s.get("T", 0, 0, 100).messages
                assert [m.queue_offset for m in got] == [i for i in range(30) if i != 25]
                assert s.max_offset("T", 0) == 30
        assert f"{victim_len} corrupt bytes at offset {victim.commitlog_offset}" in caplog.text
        caplog.clear()
    with rmqstore.open(tmp_path, **small_config) as s:
        assert s.put("T", b"after").queue_offset == 30


def test_crc_check_can_be_disabled(tmp_path, small_config):
    puts = _fill(tmp_path, small_config, 30)
    victim = puts[-1]
    seg = corrupt.commitlog_segments(tmp_path)[victim.commitlog_offset // 4096]
    corrupt.flip_bit(seg, victim.commitlog_offset % 4096 + 88)
    cfg = dict(small_config, check_crc_on_recover=False)
    _, max_off = _bodies(tmp_path, cfg)
    assert max_off == 30


def test_garbage_tail_is_cut_and_never_served(tmp_path, small_config):
    puts = _fill(tmp_path, small_config, 10)
    end = puts[-1].commitlog_offset + 91 + 9 * (9 % 7 + 1) + 1 + len("TAGS\x01t0\x02")
    seg = corrupt.commitlog_segments(tmp_path)[end // 4096]
    corrupt.write_at(seg, end % 4096, b"\x00\x00\x00\x80" + b"\xde\xad\xbe\xef" * 8)
    corrupt.mark_crashed(tmp_path)
    bodies, max_off = _bodies(tmp_path, small_config)
    assert max_off == 10 and len(bodies) == 10
    with rmqstore.open(tmp_path, **small_config) as s:
        s.put("T", b"new")
    bodies, max_off = _bodies(tmp_path, small_config)
    assert bodies[-1] == b"new" and max_off == 11


def test_stale_records_after_a_cut_are_not_resurrected(tmp_path, small_config):
    """After a mid-segment cut (a corrupt record the consume queues do not know of past: a
    torn tail), a shorter new record must not let the next recovery walk into the old records
    behind it."""
    puts = _fill(tmp_path, small_config, 12)
    victim = puts[5]
    seg = corrupt.commitlog_segments(tmp_path)[victim.commitlog_offset // 4096]
    corrupt.flip_bit(seg, victim.commitlog_offset % 4096 + 90)
    cq = sorted((tmp_path / "consumequeue" / "T" / "0").iterdir())[0]
    corrupt.zero_range(cq, 5 * 20, 12 * 20)  # the units from 5 on never reached the disk
    corrupt.mark_crashed(tmp_path)
    with rmqstore.open(tmp_path, **small_config) as s:
        assert s.max_offset("T", 0) == 5 and s.recovery.skipped == ()
        s.put("T", b"x")
    corrupt.mark_crashed(tmp_path)
    bodies, max_off = _bodies(tmp_path, small_config)
    assert max_off == 6
    assert bodies[-1] == b"x"


def test_consume_queue_pointing_past_log_is_cut(tmp_path, small_config):
    _fill(tmp_path, small_config, 100)
    segs = corrupt.commitlog_segments(tmp_path)
    assert len(segs) > 2
    # drop the newest commit-log segment entirely: units pointing into it must go
    keep = segs[:-1]
    segs[-1].unlink()
    corrupt.mark_crashed(tmp_path)
    with rmqstore.open(tmp_path, **small_config) as s:
        n = s.max_offset("T", 0)
        assert 0 < n < 100
        got = s.get("T", 0, 0, 100).messages
        assert len(got) == n
        assert all(m.commitlog_offset < (int(keep[-1].name) + 4096) for m in got)


def test_lost_consume_queue_is_rebuilt_from_commit_log(tmp_path, small_config):
    _fill(tmp_path, small_config, 50)
    import shutil
    shutil.rmtree(tmp_path / "consumequeue")
    corrupt.mark_crashed(tmp_path)
    (tmp_path / "checkpoint").unlink()
    bodies, max_off = _bodies(tmp_path, small_config)
    assert max_off == 50
    assert bodies == [b"body-%04d" % i * (i % 7 + 1) for i in range(50)]
    with rmqstore.open(tmp_path, **small_config) as s:
        assert [m.body for m in s.get("T", 0, 0, 64, tags="t1").messages] == \
            [b"body-%04d" % i * (i % 7 + 1) for i in range(50) if i % 3 == 1]


def test_torn_consume_queue_unit_is_dropped(tmp_path, small_config):
    _fill(tmp_path, small_config, 10)
    cq = sorted((tmp_path / "consumequeue" / "T" / "0").iterdir())[0]
    corrupt.zero_range(cq, 9 * 20 + 8, 10 * 20)  # last unit: size and tags zeroed
    bodies, max_off = _bodies(tmp_path, small_config)
    assert max_off == 9 or max_off == 10  # dropped, or rebuilt by re-dispatch
    assert bodies == [b"body-%04d" % i * (i % 7 + 1) for i in range(max_off)]


def test_consume_queue_tail_lost_across_many_files_is_rebuilt(tmp_path, small_config):
    """A power loss can take the unsynced units of more than the last two consume-queue files
    (small files, a fast queue): recovery must not start past the last unit left."""
    _fill(tmp_path, small_config, 100)
    files = sorted((tmp_path / "consumequeue" / "T" / "0").iterdir())
    assert len(files) == 7  # 16 units each
    corrupt.zero_range(files[2], 8 * 20, 16 * 20)  # units 40.. lost: 4 files and a half
    for f in files[3:]:
        corrupt.zero_range(f, 0, 16 * 20)
    corrupt.mark_crashed(tmp_path)
    bodies, max_off = _bodies(tmp_path, small_config)
    assert max_off == 100
    assert bodies == [b"body-%04d" % i * (i % 7 + 1) for i in range(100)]


def test_wrong_sized_segment_is_refused(tmp_path, small_config):
    _fill(tmp_path, small_config, 5)
    seg = corrupt.commitlog_segments(tmp_path)[0]
    with open(seg, "ab") as f:
        f.write(b"x")
    with pytest.raises(rmqstore.CorruptSegmentError):
        rmqstore.open(tmp_path, **small_config)
    # the lock was released: fixing the file lets it open again
    with open(seg, "r+b") as f:
        f.truncate(4096)
    _, max_off = _bodies(tmp_path, small_config)
    assert max_off == 5


def test_zero_filled_segment_means_empty(tmp_path, small_config):
    _fill(tmp_path, small_config, 60)
    segs = corrupt.commitlog_segments(tmp_path)
    corrupt.zero_range(segs[-1], 0, 4096)
    corrupt.mark_crashed(tmp_path)
    with rmqstore.open(tmp_path, **small_config) as s:
        n = s.max_offset("T", 0)
        assert n < 60
        assert [m.queue_offset for m in s.get("T", 0, 0, 100).messages] == list(range(n))


def test_corrupt_record_behind_recovery_is_never_served(tmp_path, small_config, caplog):
    """Recovery scans only the newest segments; a bit flipped in an older one is caught by the
    read-time CRC: that message is skipped (and logged), its neighbours are served."""
    puts = _fill(tmp_path, small_config, 200)
    victim = puts[10]
    assert victim.commitlog_offset < 4096 * (len(corrupt.commitlog_segments(tmp_path)) - 3)
    seg = corrupt.commitlog_segments(tmp_path)[victim.commitlog_offset // 4096]
    corrupt.flip_bit(seg, victim.commitlog_offset % 4096 + 88 + 1)
    with caplog.at_level(logging.ERROR):
        with rmqstore.open(tmp_path, **small_config) as s:
            got = s.get("T", 0, 0, 300).messages
    offsets = [m.queue_offset for m in got]
    assert 10 not in offsets and len(offsets) == 199
    assert "corrupt record" in caplog.text


def test_crash_recovery_starts_at_the_checkpoint_segment(tmp_path, small_config, caplog):
    """After a crash, re-dispatch starts at the newest segment older than the checkpoint's safe
    time (minus RocketMQ's 3 s margin), and consume-queue units lost after that point (as a
    power cut could lose them) are rebuilt from the commit log."""
    import shutil
    import time

    s = rmqstore.open(tmp_path / "live", **small_config)
    early = [s.put("T", b"early-%d" % i * 20, tags="e") for i in range(150)]
    time.sleep(3.2)
    late = [s.put("T", b"late-%d" % i * 20, tags="l") for i in range(40)]
    s.flush()  # checkpoint: physic and logics = the last store time
    shutil.copytree(tmp_path / "live", tmp_path / "crashed")  # what kill -9 leaves
    s.close()
    root = tmp_path / "crashed"
    # lose the consume-queue units of the late messages
    cq_files = sorted((root / "consumequeue" / "T" / "0").iterdir())
    first_late = late[0].queue_offset
    for f in cq_files:
        start = int(f.name) // 20
        if start + 16 > first_late:
            corrupt.zero_range(f, max(0, first_late - start) * 20, 16 * 20)
    with caplog.at_level(logging.INFO):
        with rmqstore.open(root, **small_config) as s2:
            msgs = s2.get("T", 0, 0, 1000).messages
            assert [m.body for m in msgs] == [b"early-%d" % i * 20 for i in range(150)] + \
                [b"late-%d" % i * 20 for i in range(40)]
            assert [m.body for m in s2.get("T", 0, 0, 1000, tags="l").messages][0] == b"late-0" * 20
    text = caplog.text
    assert "recovering from segment" in text
    start_segment = int(text.split("recovering from segment ")[1].split()[0])
    assert start_segment > 0  # not a full re-scan
    assert early[0].commitlog_offset < 4096 * start_segment


def test_a_copied_record_at_the_wrong_offset_ends_the_log(tmp_path, small_config):
    """A record whose PHYSICALOFFSET does not match where it lies (stale bytes, a copy) is
    never taken as the next record, even with a valid CRC."""
    puts = _fill(tmp_path, small_config, 5)
    seg = corrupt.commitlog_segments(tmp_path)[0]
    raw = corrupt.read(seg)
    first_len = puts[1].commitlog_offset - puts[0].commitlog_offset
    with rmqstore.open(tmp_path, **small_config) as s:
        end = s.commitlog.max_offset
    corrupt.write_at(seg, end, raw[:first_len])  # a perfect copy of record 0 after the end
    corrupt.mark_crashed(tmp_path)
    with rmqstore.open(tmp_path, **small_config) as s:
        assert s.commitlog.max_offset == end  # the copy is not part of the log
        assert s.put("T", b"next").commitlog_offset == end
    bodies, max_off = _bodies(tmp_path, small_config)
    assert max_off == 6 and bodies[-1] == b"next"


@pytest.mark.parametrize("crash", [False, True])
@pytest.mark.parametrize("where", ["body", "size", "magic", "topic"])
def test_a_corrupt_record_in_an_old_segment_loses_nothing_else(tmp_path, small_config, crash,
                                                               where):
    """The probe that found it: 3,000 sync-acknowledged messages, one byte flipped in an old
    segment after a clean close; recovery cut the log there and deleted 2,897 of them. Now
    that record alone is skipped and counted; the other 2,999 read back byte for byte through
    their queue, after a clean close and after a crash."""
    cfg = dict(small_config, commitlog_segment_bytes=64 << 10, flush="sync")
    with rmqstore.open(tmp_path, **cfg) as s:
        puts = [s.put("T", b"m%05d" % i * 3, tags="t") for i in range(3000)]
        segments = len(s.commitlog.files.files)
    assert segments >= 4
    # A record in the third-last segment: the oldest a clean open scans.
    first_scanned = (segments - 3) * (64 << 10)
    victim = next(p for p in puts if p.commitlog_offset > first_scanned + 1000)
    seg, pos = corrupt.segment_of(tmp_path, victim.commitlog_offset, 64 << 10)
    at = {"body": 88 + 3, "size": 1, "magic": 5, "topic": 88 + 18 + 1}[where]
    corrupt.flip_bit(seg, pos + at, 3)
    if crash:  # and the units of the last 10 messages were lost: re-dispatch crosses the range
        for f in sorted((tmp_path / "consumequeue" / "T" / "0").iterdir()):
            first = int(f.name) // 20
            if first + 16 > 2990:
                corrupt.zero_range(f, max(0, 2990 - first) * 20, 16 * 20)
        corrupt.mark_crashed(tmp_path)
    with rmqstore.open(tmp_path, **cfg) as s:
        assert len(s.recovery.skipped) == 1 and s.recovery.skipped[0][0] == \
            victim.commitlog_offset
        got = s.get("T", 0, 0, 4000).messages
        got += s.get("T", 0, got[-1].queue_offset + 1, 4000).messages
        want = [i for i in range(3000) if puts[i] is not victim]
        assert [m.queue_offset for m in got] == want
        assert [m.body for m in got] == [b"m%05d" % i * 3 for i in want]
        assert s.put("T", b"next").queue_offset == 3000


def test_a_record_crafted_inside_a_body_is_never_resurrected(tmp_path, small_config):
    """A body holding the bytes of a valid record at its own offset (CRC, PHYSICALOFFSET and
    all): when the header of the record around it is corrupt, the scan must not take the
    crafted one for the next record, which would dispatch it into a queue of its choosing."""
    cfg = dict(small_config, commitlog_segment_bytes=64 << 10)
    with rmqstore.open(tmp_path / "scratch", **cfg) as s:
        r = s.put("Fake", b"resurrected")
        raw = bytearray(s.get_by_commitlog_offset(r.commitlog_offset).record_view)
    with rmqstore.open(tmp_path / "s", **cfg) as s:
        s.put("T", b"before")
        at = s.commitlog.max_offset  # where the carrier record goes
        raw[28:36] = (at + 88).to_bytes(8, "big")  # its body starts 88 bytes in
        carrier = s.put("T", bytes(raw) + b"tail")
        assert carrier.commitlog_offset == at
        after = [s.put("T", b"after-%d" % i) for i in range(3)]
    seg, pos = corrupt.segment_of(tmp_path / "s", at, 64 << 10)
    corrupt.flip_bit(seg, pos + 5)  # the carrier's MAGICCODE
    corrupt.mark_crashed(tmp_path / "s")
    with rmqstore.open(tmp_path / "s", **cfg) as s:
        assert s.recovery.skipped == ((at, after[0].commitlog_offset - at),)
        assert ("Fake", 0) not in s.topics_and_queues()
        assert [m.body for m in s.get("T", 0, 0).messages] == \
            [b"before", b"after-0", b"after-1", b"after-2"]
