"""Retention by age and by disk usage; queue minimums and index follow."""

from __future__ import annotations

import os
import time

import rmqstore
from rmqstore.message import GetStatus
from tests import corrupt


def _age(path, hours):
    t = time.time() - hours * 3600
    os.utime(path, (t, t))


def test_segments_older_than_retention_are_deleted(tmp_path, small_config):
    cfg = dict(small_config, retention_hours=1)
    with rmqstore.open(tmp_path, **cfg) as s:
        puts = [s.put("T", b"m%04d" % i * 10, keys=[f"k{i}"]) for i in range(300)]
        segs = corrupt.commitlog_segments(tmp_path)
        assert len(segs) > 10
        for p in segs[:4]:
            _age(p, 2)
        assert s.retention.clean_once() == 4
        new_min = int(segs[4].name)
        assert s.commitlog.min_offset == new_min
        lo = s.min_offset("T", 0)
        assert lo == min(r.queue_offset for r in puts if r.commitlog_offset >= new_min)
        # below the minimum: RocketMQ's OFFSET_TOO_SMALL and where to go next
        res = s.get("T", 0, 0)
        assert res.status is GetStatus.OFFSET_TOO_SMALL and res.next_offset == lo
        assert s.get("T", 0, lo).messages[0].body == b"m%04d" % lo * 10
        # the active segment is never deleted, whatever its age
        for p in corrupt.commitlog_segments(tmp_path):
            _age(p, 5)
        s.retention.clean_once()
        assert len(corrupt.commitlog_segments(tmp_path)) >= 1
        assert s.put("T", b"after").queue_offset == 300
    with rmqstore.open(tmp_path, **cfg) as s:
        assert s.min_offset("T", 0) > lo
        assert s.get("T", 0, 300).messages[0].body == b"after"


def test_consume_queue_files_below_minimum_go_too(tmp_path, small_config):
    with rmqstore.open(tmp_path, **small_config) as s:
        for _ in range(400):
            s.put("T", b"x" * 40)
        cq_dir = tmp_path / "consumequeue" / "T" / "0"
        before = len(list(cq_dir.iterdir()))
        s.retention.used_ratio = lambda: 0.99  # the disk is "full": delete regardless of age
        deleted = s.retention.clean_once()
        assert deleted == 10  # DELETE_FILES_BATCH_MAX per run
        after = len(list(cq_dir.iterdir()))
        assert after < before
        first_cq = min(int(p.name) for p in cq_dir.iterdir()) // 20
        assert first_cq <= s.min_offset("T", 0)
        msgs = s.get("T", 0, s.min_offset("T", 0), 1000).messages
        assert len(msgs) == 400 - s.min_offset("T", 0)


def test_disk_pressure_stops_when_usage_falls(tmp_path, small_config):
    with rmqstore.open(tmp_path, **small_config) as s:
        for _ in range(300):
            s.put("T", b"y" * 40)
        calls = iter([0.99, 0.99, 0.5])  # checked before the run and after each delete
        s.retention.used_ratio = lambda: next(calls, 0.5)
        assert s.retention.clean_once() == 2


def test_index_files_below_minimum_are_deleted(tmp_path, small_config):
    cfg = dict(small_config, index_entries=32)
    with rmqstore.open(tmp_path, **cfg) as s:
        for i in range(300):
            s.put("T", b"z" * 40, keys=[f"key{i}"])
        idx_before = sorted(p.name for p in (tmp_path / "index").iterdir())
        assert len(idx_before) > 3
        s.retention.used_ratio = lambda: 0.99
        s.retention.clean_once()
        idx_after = sorted(p.name for p in (tmp_path / "index").iterdir())
        assert len(idx_after) < len(idx_before)
        assert idx_after[-1] == idx_before[-1]
        assert len(s.query("T", "key299")) == 1
        assert s.query("T", "key0") == []


def test_retention_beside_a_rolling_writer_loses_no_segment(tmp_path, small_config):
    import threading

    with rmqstore.open(tmp_path, **small_config) as s:
        s.retention.used_ratio = lambda: 0.99  # delete as fast as it can
        stop = threading.Event()

        def clean():
            while not stop.is_set():
                s.retention.clean_once()

        t = threading.Thread(target=clean)
        t.start()
        try:
            last = None
            for i in range(3000):  # ~100 segment rolls
                last = s.put("T", b"r%05d" % i * 4)
        finally:
            stop.set()
            t.join(10)
        files = s.commitlog.files.files
        starts = [f.start for f in files]
        assert starts == list(range(starts[0], starts[0] + 4096 * len(files), 4096))
        assert files[-1].start <= last.commitlog_offset < files[-1].start + 4096
        lo = s.min_offset("T", 0)
        got = s.get("T", 0, lo, 5000).messages
        assert [m.queue_offset for m in got] == list(range(lo, 3000))
        assert got[-1].body == b"r02999" * 4


def test_unexpired_segments_go_only_above_the_clean_forcibly_ratio(tmp_path, small_config):
    """Above diskMaxUsedSpaceRatio (75 %) only expired segments go; unexpired ones go above
    diskSpaceCleanForciblyRatio (85 %), as RocketMQ's cleanImmediately."""
    with rmqstore.open(tmp_path, **small_config) as s:
        for _ in range(200):
            s.put("T", b"x" * 40)
        segments = len(corrupt.commitlog_segments(tmp_path))
        s.retention.used_ratio = lambda: 0.80
        assert s.retention.clean_once() == 0
        assert len(corrupt.commitlog_segments(tmp_path)) == segments
        s.retention.used_ratio = lambda: 0.86
        assert s.retention.clean_once() > 0
