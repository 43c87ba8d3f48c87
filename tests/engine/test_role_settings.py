"""A store whose role changes in place (controller mode) takes the write-path settings of a
store opened in its new role: a replica (appends through pwrite) runs no warmer and maps the
segment it writes without readahead (MADV_RANDOM: "rr" in VmFlags); promoted again, it warms
and reads ahead as a master does."""

from __future__ import annotations

import threading

import rmqstore
from tests.engine.test_advice import pytestmark, segment_flags  # noqa: F401 - Linux only


def warmers() -> int:
    return sum(t.name == "rmq-warmer" and t.is_alive() for t in threading.enumerate())


def test_a_demoted_master_takes_a_replicas_settings_and_back(tmp_path, small_config) -> None:
    cfg = dict(small_config, commitlog_segment_bytes=1 << 16, flush="async", background=True)
    with rmqstore.open(tmp_path, **cfg) as s:
        s.put("T", b"x" * 100, queue_id=0)
        before = warmers()
        assert before >= 1 and "rr" not in segment_flags(s)[-1]
        s.become_replica()
        assert warmers() == before - 1
        assert "rr" in segment_flags(s)[-1]
        assert s._allocator.warm_bytes == 0  # the next segment is made unwarmed
        s.become_master()
        assert warmers() == before
        assert "rr" not in segment_flags(s)[-1]
        s.put("T", b"y" * 100, queue_id=0)


def test_a_store_opened_as_replica_and_promoted_warms(tmp_path, small_config) -> None:
    cfg = dict(small_config, commitlog_segment_bytes=1 << 16, flush="async", background=True)
    with rmqstore.open(tmp_path, **cfg) as s:  # a first segment to map
        s.put("T", b"x" * 100, queue_id=0)
    before = warmers()
    with rmqstore.open(tmp_path, **cfg, replica=True) as s:
        assert warmers() == before and "rr" in segment_flags(s)[-1]
        s.become_master()
        assert warmers() == before + 1 and "rr" not in segment_flags(s)[-1]
