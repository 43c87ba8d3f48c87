"""Sync flush: group commit shares fdatasyncs; acknowledged means on disk."""

from __future__ import annotations

import os
import threading
import time

import pytest

import rmqstore
from rmqstore import SyncFailedError, sync_journal
from rmqstore.flush import GroupCommit
from tests.failing_sync import FailingSync


def test_concurrent_writers_share_fdatasyncs(tmp_path, small_config, monkeypatch):
    calls = []
    real = os.fdatasync

    def counting(fd):
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", counting)
    cfg = dict(small_config, flush="sync", commitlog_segment_bytes=1 << 20)
    with rmqstore.open(tmp_path, **cfg) as s:
        n_threads, per = 8, 50
        s.create_topic("T", n_threads)

        def writer(k):
            for i in range(per):
                r = s.put("T", b"w%d-%d" % (k, i), queue_id=k)
                assert r.status is rmqstore.PutStatus.PUT_OK

        calls.clear()
        threads = [threading.Thread(target=writer, args=(k,)) for k in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        syncs = len(calls)
        for k in range(n_threads):
            assert [m.body for m in s.get("T", k, 0, per).messages] == \
                [b"w%d-%d" % (k, i) for i in range(per)]
    assert syncs <= n_threads * per  # never more than one per put
    assert syncs >= 1


def test_group_commit_leader_serves_followers():
    flushed_to = [0]
    appended = [0]
    entered = threading.Event()
    release = threading.Event()
    runs = []

    def flush_all():  # like fdatasync: durable is what was appended when it started
        target = appended[0]
        runs.append(target)
        if len(runs) == 1:
            entered.set()
            release.wait(5)
        flushed_to[0] = target
        return target

    gc = GroupCommit(flush_all, 0, timeout_s=5)
    appended[0] = 10
    leader = threading.Thread(target=gc.wait, args=(10,))
    leader.start()
    entered.wait(5)
    appended[0] = 30  # more writers append while the first fdatasync runs
    results = []
    followers = [threading.Thread(target=lambda o=o: results.append(gc.wait(o)))
                 for o in (20, 25, 30)]
    for t in followers:
        t.start()
    release.set()
    leader.join(5)
    for t in followers:
        t.join(5)
    assert results == [True, True, True]
    assert len(runs) == 2  # one fdatasync for the leader, one shared by all three followers
    assert gc.flushed == 30


def test_group_commit_times_out():
    block = threading.Event()

    def slow():
        block.wait(2)
        return 100

    gc = GroupCommit(slow, 0, timeout_s=0.05)
    t = threading.Thread(target=gc.wait, args=(100,))
    t.start()
    import time
    time.sleep(0.01)
    assert gc.wait(50) is False  # FLUSH_DISK_TIMEOUT for a follower
    block.set()
    t.join(5)


def test_sync_put_reports_flush_timeout(tmp_path, small_config, monkeypatch):
    import time

    cfg = dict(small_config, flush="sync", sync_flush_timeout_ms=20)
    with rmqstore.open(tmp_path, **cfg) as s:
        monkeypatch.setattr(os, "fdatasync", lambda fd: time.sleep(0.2))
        results = []
        ts = [threading.Thread(target=lambda: results.append(s.put("T", b"x").status))
              for _ in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(5)
        assert rmqstore.PutStatus.FLUSH_DISK_TIMEOUT in results
        monkeypatch.undo()


def test_put_async_completes_in_the_background(tmp_path, small_config):
    import time

    cfg = dict(small_config, flush="sync", commitlog_segment_bytes=1 << 20, background=True)
    with rmqstore.open(tmp_path, **cfg) as s:
        pending = [s.put_async("T", b"m%d" % i) for i in range(500)]
        # readable at once, before it is durable
        assert s.get("T", 0, 499).messages[0].body == b"m499"
        deadline = time.monotonic() + 10
        while not pending[-1].done() and time.monotonic() < deadline:
            time.sleep(0.001)
        assert pending[-1].done()  # nobody called wait(): the sync flusher did the work
        assert all(p.done() for p in pending)
        assert [p.wait().status for p in pending[:3]] == [rmqstore.PutStatus.PUT_OK] * 3
        tagged = s.put_async("T", b"t", tags="A", keys=["k"]).wait()
        assert tagged.status is rmqstore.PutStatus.PUT_OK
        assert s.query("T", "k")[0].body == b"t"


def _stream_then_count_syncs(tmp_path, small_config, monkeypatch, delay_us: int) -> int:
    """put_async 40 messages 1 ms apart, nobody waiting; fdatasyncs until all are durable."""
    import time

    import rmqstore.segment as segment

    calls = []
    real = os.fdatasync
    cfg = dict(small_config, flush="sync", commitlog_segment_bytes=1 << 20,
               group_commit_delay_us=delay_us)
    with rmqstore.open(tmp_path, **cfg) as s:
        s.put("T", b"first")  # the store's opening syncs are not counted
        monkeypatch.setattr(segment.os, "fdatasync", lambda fd: (calls.append(fd), real(fd)))
        pending = []
        for i in range(40):
            pending.append(s.put_async("T", b"m%d" % i))
            time.sleep(0.001)
        deadline = time.monotonic() + 10
        while not pending[-1].done() and time.monotonic() < deadline:
            time.sleep(0.001)
        assert all(p.done() for p in pending)
        monkeypatch.undo()
    return len(calls)


def test_sync_flusher_waits_for_a_stream_of_puts_to_pause(tmp_path, small_config, monkeypatch):
    # 100 ms of quiet asked for: the 40 ms stream never pauses that long, so one sync
    assert _stream_then_count_syncs(tmp_path / "a", small_config, monkeypatch, 100_000) == 1
    # no pause: a sync per cue, and puts keep cueing while the stream runs
    assert _stream_then_count_syncs(tmp_path / "b", small_config, monkeypatch, 0) >= 5


def test_two_flushes_of_a_segment_that_fills_never_sync_through_a_closed_file(tmp_path,
                                                                            monkeypatch):
    """flush() syncs through the segment's own sync file and closes it once the segment is
    full and synced; a second flush() meeting the first (a housekeeper's and a closing
    store's) must neither sync through the closed descriptor, nor close it twice (EBADF, or
    worse, another file's descriptor by then)."""
    from rmqstore import segment

    seg = segment.MappedFile.create(tmp_path / "seg", 0, 1 << 16)
    real = sync_journal.fdatasync_upto
    calls = []
    other_done = threading.Event()

    def slow(fd, path, length):
        calls.append(fd)
        if len(calls) == 1:  # the first holds its descriptor while the other flush runs
            other_done.wait(1.0)
        real(fd, path, length)

    monkeypatch.setattr(sync_journal, "fdatasync_upto", slow)
    seg.view[:8] = b"12345678"
    seg.wrote = seg.size  # full: the first flush to finish closes the sync file
    errors = []

    def flush(last: bool):
        try:
            seg.flush()
        except OSError as exc:
            errors.append(exc)
        if last:
            other_done.set()

    first = threading.Thread(target=flush, args=(False,))
    first.start()
    while not calls and first.is_alive():
        time.sleep(0.001)
    second = threading.Thread(target=flush, args=(True,))
    second.start()
    first.join()
    second.join()
    assert errors == [] and seg.flushed == seg.size and seg.sync_fd == -1
    assert len(calls) == 1  # the second found the segment synced
    seg.close()


def test_a_failed_periodic_flush_stops_an_async_flush_store(tmp_path, monkeypatch):
    """Async flush promises nothing per put, but a sync that failed must still stop the store:
    a later one would succeed over the pages Linux marked clean unwritten, and recovery would
    end the log at that hole, dropping every record after it, synced or not."""
    sync = FailingSync(monkeypatch)
    cfg = dict(flush="async", flush_interval_ms=20, flush_least_pages=0)
    store = rmqstore.open(tmp_path, **cfg)
    try:
        for i in range(50):
            store.put("T", b"durable %d" % i)
        durable = store.commitlog.max_offset
        deadline = time.monotonic() + 10
        while store.commitlog.files.durable() < durable and time.monotonic() < deadline:
            time.sleep(0.01)
        sync.failing = True
        store.put("T", b"lost with the failed sync")
        while store.sync_failed_at is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert store.sync_failed_at == durable
        with pytest.raises(SyncFailedError):
            store.put("T", b"refused")
        sync.failing = False
    finally:
        store.close()
    with rmqstore.open(tmp_path, **cfg) as store:
        assert store.commitlog.max_offset == durable  # cut where it was last durable
        assert store.max_offset("T", 0) == 50
        store.put("T", b"taken again")
        assert store.get("T", 0, 50).messages[0].body == b"taken again"
