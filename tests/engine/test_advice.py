"""commitlog_advice: the madvise hint reaches the kernel on the segment being written, and
is dropped from a segment once it is full (read through /proc/self/smaps VmFlags)."""

from __future__ import annotations

from pathlib import Path

import pytest

import rmqstore
from rmqstore.config import StoreConfig

SMAPS = Path("/proc/self/smaps")
pytestmark = pytest.mark.skipif(not SMAPS.exists(), reason="needs /proc/self/smaps (Linux)")


def vm_flags() -> dict[str, set[str]]:
    """file path -> VmFlags of its mapping(s) in this process."""
    out: dict[str, set[str]] = {}
    path = None
    for line in SMAPS.read_text().splitlines():
        head = line.split()
        if "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
            path = head[5] if len(head) >= 6 else None
        elif head[0] == "VmFlags:" and path is not None:
            out.setdefault(path, set()).update(head[1:])
    return out


def segment_flags(store) -> list[set[str]]:
    """VmFlags of the store's segments, oldest first (a file made ahead is not one yet)."""
    flags = vm_flags()
    return [flags.get(str(seg.path.resolve()), set()) for seg in store.commitlog.files.files]


def fill_segments(store, n_segments: int) -> None:
    body = b"x" * 1000
    while len(list((store.root / "commitlog").iterdir())) < n_segments:
        store.put("T", body, queue_id=0)


def test_default_is_the_kernel_default() -> None:
    assert StoreConfig(flush="async").commitlog_advice == "normal"
    assert StoreConfig(flush="sync").commitlog_advice == "normal"


def test_unknown_advice_is_refused() -> None:
    with pytest.raises(ValueError, match="commitlog_advice"):
        StoreConfig(commitlog_advice="huge")


@pytest.mark.parametrize("background", [False, True])  # True: segments made ahead of time
def test_hugepage_on_the_written_segment_only(tmp_path, small_config, background) -> None:
    cfg = dict(small_config, commitlog_segment_bytes=1 << 16, commitlog_advice="hugepage",
               background=background)
    with rmqstore.open(tmp_path, **cfg) as s:
        fill_segments(s, 3)
        *full, last = segment_flags(s)
        assert "hg" in last and "nh" not in last
        assert full and all("nh" in f and "hg" not in f for f in full)
    # reopened: only the last segment takes appends, so only it is advised
    with rmqstore.open(tmp_path, **cfg) as s:
        *full, last = segment_flags(s)
        assert "hg" in last
        assert all("hg" not in f for f in full)


@pytest.mark.parametrize("flush", ["async", "sync"])
def test_segments_keep_the_kernel_default(tmp_path, small_config, flush) -> None:
    cfg = dict(small_config, commitlog_segment_bytes=1 << 16, flush=flush)
    with rmqstore.open(tmp_path, **cfg) as s:
        fill_segments(s, 2)
        for f in segment_flags(s):
            assert f and not f & {"hg", "nh", "sr", "rr"}


@pytest.mark.parametrize(("advice", "flag"), [("random", "rr"), ("sequential", "sr")])
def test_read_hints_stay_on_full_segments(tmp_path, small_config, advice, flag) -> None:
    cfg = dict(small_config, commitlog_segment_bytes=1 << 16, commitlog_advice=advice)
    with rmqstore.open(tmp_path, **cfg) as s:
        fill_segments(s, 2)
        flags = segment_flags(s)
        assert all(flag in f and "hg" not in f for f in flags)
