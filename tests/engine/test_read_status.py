"""get_bodies answers as get does: the same status and next offset wherever a read starts
(below the queue's minimum, on records retention removed, at and past its end)."""

from __future__ import annotations

import subprocess

import rmqstore
from rmqstore.message import GetStatus
from rmqstore.retention import disk_used_ratio


def _both(s, topic, qid, offset, n=8):
    got = s.get(topic, qid, offset, n)
    bodies = s.get_bodies(topic, qid, offset, n)
    return got, bodies


def test_get_bodies_statuses_match_get(tmp_path, small_config):
    with rmqstore.open(tmp_path, **small_config) as s:
        s.create_topic("E", 1)
        for i in range(10):  # U's records all lie in the first segment
            s.put("U", b"u%d" % i)
        for i in range(200):
            s.put("T", b"m%04d" % i * 10)
        files = s.commitlog.files
        # retention's first step: commit-log segments gone, queue minimums not moved yet
        files.files = files.files[3:]
        starts = [0, 5, 40, s.max_offset("T", 0) - 1, s.max_offset("T", 0),
                  s.max_offset("T", 0) + 7]
        seen = set()
        for topic, offset in [("U", 3), *(("T", o) for o in starts)]:
            got, bodies = _both(s, topic, 0, offset)
            assert (bodies.status, bodies.next_offset) == (got.status, got.next_offset), offset
            assert [bytes(b) for b in bodies] == [m.body for m in got.messages]
            assert (bodies.min_offset, bodies.max_offset) == (got.min_offset, got.max_offset)
            seen.add(got.status)
        assert {GetStatus.MESSAGE_WAS_REMOVING, GetStatus.FOUND, GetStatus.OFFSET_OVERFLOW_ONE,
                GetStatus.OFFSET_OVERFLOW_BADLY} <= seen
        s.retention._clean_queues(files.min_offset)  # the queues follow: offset 0 is too small
        lo = s.min_offset("T", 0)
        assert lo > 0
        got, bodies = _both(s, "T", 0, 0)
        assert got.status is bodies.status is GetStatus.OFFSET_TOO_SMALL
        assert got.next_offset == bodies.next_offset == lo
        for topic in ("E", "nope"):  # an empty queue, no queue at all
            got, bodies = _both(s, topic, 0, 0)
            assert (bodies.status, bodies.next_offset) == (got.status, got.next_offset)
            assert len(bodies) == 0


def test_get_bodies_reads_across_consume_queue_files(tmp_path, small_config):
    with rmqstore.open(tmp_path, **small_config) as s:
        for i in range(50):  # 16 units per consume-queue file
            s.put("T", b"%03d" % i)
        bodies = s.get_bodies("T", 0, 10, 30)
        assert [bytes(b) for b in bodies] == [b"%03d" % i for i in range(10, 40)]
        assert bodies.next_offset == 40 and bodies.status is GetStatus.FOUND


def test_a_body_over_max_bytes_comes_alone_not_never(tmp_path, small_config):
    """A consumer looping on get_bodies with a byte budget must not stall at a body bigger
    than the budget: that body comes alone (RocketMQ's pull always returns one message)."""
    with rmqstore.open(tmp_path, **small_config) as s:
        s.create_topic("T", 1)
        for body in (b"a" * 10, b"b" * 3000, b"c" * 10, b"d" * 10):
            s.put("T", body, queue_id=0)
        got, offset = [], 0
        for _ in range(8):  # bounded: four bodies, each read within a budget of 100 bytes
            bodies = s.get_bodies("T", 0, offset, max_bytes=100)
            if not len(bodies):
                break
            assert bodies.status == GetStatus.FOUND and bodies.next_offset > offset
            got += [bytes(b) for b in bodies]
            offset = bodies.next_offset
        assert got == [b"a" * 10, b"b" * 3000, b"c" * 10, b"d" * 10] and offset == 4
        assert len(s.get_bodies("T", 0, 0, max_bytes=100)) == 1  # the budget still cuts after


def test_disk_ratio_is_what_df_reports(tmp_path):
    out = subprocess.run(["df", "--output=pcent", str(tmp_path)], capture_output=True,
                         text=True, check=True).stdout.split()[-1]
    df_percent = int(out.rstrip("%"))  # df rounds up
    assert df_percent - 1 <= disk_used_ratio(tmp_path) * 100 <= df_percent
