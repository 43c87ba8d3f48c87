"""Opening after a clean close cuts the commit log at its end, and the cut zeroes what follows
it; the tail past a clean end was never written, so it is left as it is: punching it out and
allocating it again discarded up to a whole segment on every open (ext4 mounted with discard
sends it to the disk), and the disk was slower for the next second."""

from __future__ import annotations

import os

import pytest

import rmqstore
from rmqstore import _native, segment

CFG = dict(commitlog_segment_bytes=64 << 20, index_enable=False, background=False)


def _fill(root, n: int) -> None:
    with rmqstore.open(root, **CFG) as s:
        s.create_topic("T", 1)
        for i in range(n):
            s.put("T", b"m%d" % i)


def test_a_clean_reopen_leaves_the_unwritten_tail_alone(tmp_path, monkeypatch):
    _fill(tmp_path, 100)
    log = next((tmp_path / "commitlog").iterdir())
    fd = os.open(log, os.O_RDONLY)
    try:
        if segment.written_ranges(fd, 1 << 20, 63 << 20) != []:
            pytest.skip("no FIEMAP, or no allocation ahead, on this file system")
    finally:
        os.close(fd)
    zeroed = []
    real = _native.zero_range
    monkeypatch.setattr(segment._native, "zero_range",
                        lambda fd, start, length: zeroed.append(length) or real(fd, start, length))
    with rmqstore.open(tmp_path, **CFG) as s:
        assert [bytes(m.body) for m in s.get("T", 0, 0, 200).messages] == \
            [b"m%d" % i for i in range(100)]
    assert zeroed == []


def test_a_written_tail_is_still_zeroed_and_only_it(tmp_path, monkeypatch):
    """Stale bytes past the end (a torn write after a crash, pages warmed ahead of the
    writer) are written blocks: the cut zeroes them, and them only."""
    _fill(tmp_path, 100)
    zeroed = []
    real = _native.zero_range
    monkeypatch.setattr(segment._native, "zero_range",
                        lambda fd, start, length: zeroed.append(length) or real(fd, start, length))
    with rmqstore.open(tmp_path, **CFG) as s:
        end = s.commitlog.max_offset
    log = next((tmp_path / "commitlog").iterdir())
    fd = os.open(log, os.O_RDWR)
    try:
        if segment.written_ranges(fd, 0, 4096) is None:
            pytest.skip("no FIEMAP on this file system")
        os.pwrite(fd, b"\xff" * 4096, (end // 4096 + 3) * 4096)  # past the end's page
        os.fsync(fd)
        seg = segment.MappedFile.open(log, 0, 64 << 20)
        try:
            seg.zero_from(end)
        finally:
            seg.close()
        assert os.pread(fd, 4096, (end // 4096 + 3) * 4096) == bytes(4096)
    finally:
        os.close(fd)
    assert zeroed == [4096], zeroed
