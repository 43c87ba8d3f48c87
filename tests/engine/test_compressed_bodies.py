"""Bodies flagged compressed: checked at the door, inflated lazily and within a cap on read.

A body that does not inflate, or a zlib bomb, is refused by put (nothing stored); one already
in the store (planted here by rewriting a stored record's SYSFLAG) fails only the read of its
own ``body``, never the get that returns it with its neighbours, and never costs more memory
than max_message_size.
"""

from __future__ import annotations

import tracemalloc
import zlib

import lz4.frame
import pytest

import rmqstore
from rmqstore.options import RecordInput
from tests import corrupt

CAP = 1 << 20  # max_message_size of these stores
ZLIB, LZ4 = 0x1, 0x1 | (1 << 8)
BOMB = zlib.compress(b"\0" * (64 << 20), 9)  # 64 KiB that inflate to 64 MiB


def _cfg(small_config: dict) -> dict:
    return dict(small_config, commitlog_segment_bytes=4 << 20, max_message_size=CAP)


def _planted(root, cfg, bodies: list[tuple[bytes, int]]) -> list[int]:
    """Store each body as given, then flag it with its sysflag on disk; commit-log offsets."""
    with rmqstore.open(root, **cfg) as s:
        offsets = [s.put("T", body).commitlog_offset for body, _ in bodies]
    for off, (_, flag) in zip(offsets, bodies, strict=True):
        corrupt.set_sysflag(*corrupt.segment_of(root, off, cfg["commitlog_segment_bytes"]), flag)
    return offsets


def _peak_bytes(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("body,flag", [
    (b"not zlib at all", ZLIB),
    (zlib.compress(b"x" * 1000)[:-4], ZLIB),  # a stream cut short
    (BOMB, ZLIB),
    (b"not lz4", LZ4),
    (lz4.frame.compress(b"\0" * (8 << 20)), LZ4),
    (zlib.compress(b"zstd?"), 0x1 | (2 << 8)),  # ZSTD: a type this store cannot check
], ids=["not-zlib", "zlib-cut-short", "zlib-bomb", "not-lz4", "lz4-bomb", "zstd"])
def test_a_body_that_does_not_inflate_within_the_cap_is_refused(tmp_path, small_config, body,
                                                                  flag):
    with rmqstore.open(tmp_path, **_cfg(small_config)) as s:
        s.put("T", b"before")
        end = s.commitlog.max_offset
        peak = _peak_bytes(lambda: pytest.raises(rmqstore.InvalidBodyError, s.put_record, "T",
                                                 body, 0, RecordInput({}, sysflag=flag)))
        assert peak < 2 * CAP + len(body) + (1 << 20)  # a bomb inflates no further than the cap
        assert s.commitlog.max_offset == end and s.max_offset("T", 0) == 1
        ok = zlib.compress(b"y" * 5000)
        r = s.put_record("T", ok, 0, RecordInput({}, sysflag=ZLIB)).result
        m = s.get_by_commitlog_offset(r.commitlog_offset)
        assert m.body == b"y" * 5000 and bytes(m.body_view) == ok


def test_a_planted_bad_body_fails_only_its_own_read(tmp_path, small_config):
    cfg = _cfg(small_config)
    good = zlib.compress(b"g" * 3000)
    offsets = _planted(tmp_path, cfg, [(b"plain", 0), (b"junk, flagged zlib", ZLIB),
                                       (BOMB, ZLIB), (good, ZLIB), (b"junk", LZ4)])
    with rmqstore.open(tmp_path, **cfg) as s:
        peak = _peak_bytes(lambda: s.get("T", 0, 0, 10))
        assert peak < 2 * len(BOMB) + (1 << 20)  # nothing was inflated to answer the get
        got = s.get("T", 0, 0, 10).messages
        assert [m.commitlog_offset for m in got] == offsets
        assert got[0].body == b"plain" and got[3].body == b"g" * 3000
        for m in (got[1], got[2], got[4]):
            peak = _peak_bytes(lambda m=m: pytest.raises(rmqstore.InvalidBodyError,
                                                         getattr, m, "body"))
            assert peak < 2 * CAP + (1 << 20)
        assert bytes(got[2].body_view) == BOMB  # the stored bytes stay readable as they are
        by_offset = s.get_by_commitlog_offset(offsets[1])
        with pytest.raises(rmqstore.InvalidBodyError, match=f"offset {offsets[1]}"):
            _ = by_offset.body
