"""Sync flush across processes: a put with flush="sync" returns once its message is on disk,
whichever process ran the fdatasync, and the puts in flight in several processes share them
(the sync journal, tests/power_loss.py's, records every fdatasync each process ran)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import rmqstore
from rmqstore import sync_journal
from rmqstore.filenames import commitlog_dir
from rmqstore.shared import commit
from rmqstore.shared.commit import SharedGroupCommit
from rmqstore.shared.control import SYNC_ARRIVALS, SYNC_WANT, Control
from tests.shared.worker import CONFIG, QUEUES, TOPIC, acked

ROOT = Path(__file__).resolve().parents[2]
WRITERS = 4
PUTS = 300


def _sync_writers(tmp_path: Path, *extra: str) -> tuple[Path, int, dict[str, int]]:
    """WRITERS processes of PUTS sync puts each (extra: the writer role's GO and DELAY_US);
    the store, the commit log's fdatasyncs by whichever process, and how far they made each
    segment durable."""
    d = tmp_path / "store"
    with rmqstore.open(d, **CONFIG) as store:
        store.create_topic(TOPIC, QUEUES)
    journal = tmp_path / "syncs.jsonl"
    env = {**os.environ, "RMQSTORE_SYNC_JOURNAL": str(journal)}
    procs = [subprocess.Popen([sys.executable, "-m", "tests.shared.worker", "writer", str(d),
                               f"s{i}", str(PUTS), "sync", *extra], cwd=ROOT, env=env)
             for i in range(WRITERS)]
    if extra:  # every writer open, then all go at once
        deadline = time.monotonic() + 60
        while len(list((tmp_path / "ready").glob("s*"))) < WRITERS:
            assert time.monotonic() < deadline, "the writers did not open the store"
            time.sleep(0.01)
        Path(extra[0]).touch()
    for p in procs:
        assert p.wait(timeout=120) == 0  # each checked durable_offset after every put
    upto: dict[str, int] = {}
    syncs = 0
    logdir = str(commitlog_dir(d).resolve())
    for line in journal.read_text().splitlines():
        rec = json.loads(line)
        if rec["op"] == "upto" and rec["path"].startswith(logdir):
            syncs += 1
            upto[rec["path"]] = max(upto.get(rec["path"], 0), rec["n"])
    return d, syncs, upto


def test_sync_puts_in_several_processes_are_durable_and_share_fdatasyncs(tmp_path: Path) -> None:
    # all go at once, with the default gathering delay: under load, writers started one by one
    # could each finish before the next opened the store, and then share nothing
    d, syncs, upto = _sync_writers(tmp_path, str(tmp_path / "go"), "200")
    with rmqstore.open(d, **CONFIG) as store:
        size = store.config.commitlog_segment_bytes
        for qid in range(QUEUES):
            for m in store.get(TOPIC, qid, 0, WRITERS * PUTS).messages:
                name, seq = m.body.decode().rsplit(":", 1)
                assert int(seq) in set(acked(d, name))
                seg = str(commitlog_dir(d).resolve() / f"{m.commitlog_offset // size * size:020d}")
                end = m.commitlog_offset % size + m.size
                assert upto.get(seg, 0) >= end, f"{name}:{seq} acknowledged, never synced"
    assert syncs < WRITERS * PUTS, f"{syncs} fdatasyncs for {WRITERS * PUTS} puts: none shared"


def test_each_sync_gathers_the_puts_of_the_processes_the_last_one_woke(tmp_path: Path) -> None:
    """Processes that put and wait in step: the flush mutex's holder waits (here up to 50 ms,
    never reached while all put) until as many have put again as the last sync covered, so
    one fdatasync covers a put of nearly every process. Syncing at once split them into two
    halves a sync apart: 2.4 puts per fdatasync of 4 processes, measured."""
    _, syncs, _ = _sync_writers(tmp_path, str(tmp_path / "go"), "50000")
    per_sync = WRITERS * PUTS / syncs
    assert per_sync >= 3.2, f"{per_sync:.2f} puts per fdatasync of {WRITERS} processes"


def _flusher_holding(tmp_path: Path, role: str = "flusher") -> tuple[Path, subprocess.Popen]:
    """A store, and a process holding its flush mutex as a group commit's flusher (it syncs
    once tmp_path/release exists; role slow-sync: it synced, and returns then)."""
    d = tmp_path / "store"
    with rmqstore.open(d, **CONFIG) as store:
        store.create_topic(TOPIC, QUEUES)
    proc = subprocess.Popen([sys.executable, "-m", "tests.shared.worker", role, str(d),
                             "f"], cwd=ROOT)
    deadline = time.monotonic() + 60
    while not (tmp_path / "flushing" / "f").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "flusher did not start"
        time.sleep(0.01)
    return d, proc


def _put_in_thread(store: rmqstore.MessageStore) -> tuple[threading.Thread, list]:
    got: list = []
    t = threading.Thread(target=lambda: got.append(store.put(TOPIC, b"waiter", queue_id=1)))
    t.start()
    return t, got


def test_a_flushers_release_wakes_the_sync_puts_of_other_processes(tmp_path: Path,
                                                                    monkeypatch) -> None:
    """A put waiting while another process syncs sleeps on the durable futex: the flusher's
    release wakes it (rechecks pushed far out of the test's reach here)."""
    monkeypatch.setattr(commit, "RECHECK_S", 120.0)
    d, proc = _flusher_holding(tmp_path)
    try:  # a waiter left asleep would sleep out the timeout, 120 s, before it looks again
        with rmqstore.open(d, flush="sync", sync_flush_timeout_ms=120_000, **CONFIG) as store:
            t, got = _put_in_thread(store)
            t.join(0.5)
            assert t.is_alive(), "a sync put returned while another process held the sync"
            (tmp_path / "release").touch()  # the flusher's fdatasync covers our put too
            t.join(20)
            assert not t.is_alive(), "the flusher's release did not wake the waiting put"
            assert got[0].status is rmqstore.PutStatus.PUT_OK
            assert store.durable_offset > got[0].commitlog_offset
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()


def test_puts_published_during_a_sync_share_the_next_one(tmp_path: Path, monkeypatch) -> None:
    """Group commit as a pipeline: while another process's fdatasync runs (one that began
    before them), puts of 8 threads here gather; its end wakes them, one of them syncs them
    all at once, and the others find themselves covered (8 fdatasyncs if each synced)."""
    monkeypatch.setattr(commit, "RECHECK_S", 120.0)  # only the end of the sync wakes them
    d, proc = _flusher_holding(tmp_path, "slow-sync")
    try:
        with rmqstore.open(d, flush="sync", sync_flush_timeout_ms=120_000, **CONFIG) as store:
            puts = [_put_in_thread(store) for _ in range(8)]
            time.sleep(0.5)  # every put published, every waiter asleep
            assert all(t.is_alive() for t, _ in puts), "a put returned before its sync"
            (tmp_path / "release").touch()
            for t, got in puts:
                t.join(20)
                assert not t.is_alive(), "the sync's end did not wake a waiting put"
                assert got[0].status is rmqstore.PutStatus.PUT_OK
            # One here, or none when the other process's next sync covered them first.
            assert store.commitlog_syncs <= 1, f"{store.commitlog_syncs} syncs for 8 puts"
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()


def test_a_flusher_killed_holding_the_sync_hands_it_to_a_waiter(tmp_path: Path) -> None:
    d, proc = _flusher_holding(tmp_path)
    try:
        with rmqstore.open(d, flush="sync", **CONFIG) as store:
            t, got = _put_in_thread(store)
            t.join(0.5)
            assert t.is_alive()
            proc.kill()  # SIGKILL inside the flush mutex: robust, the waiter takes it over
            t.join(20)
            assert not t.is_alive()
            assert got[0].status is rmqstore.PutStatus.PUT_OK  # not FLUSH_DISK_TIMEOUT
            assert store.durable_offset > got[0].commitlog_offset
    finally:
        proc.kill()
        proc.wait()


def test_a_waiter_woken_by_a_sync_that_began_before_its_put_waits_for_the_next(
        tmp_path: Path, monkeypatch) -> None:
    """The end of another process's sync, one that began before our put was published, wakes
    our waiter (it may have to run the next sync); the put returns only after a sync that
    began after it: the journal holds an fdatasync past its bytes by the time it returns."""
    monkeypatch.setattr(commit, "RECHECK_S", 120.0)  # only the sync's end wakes the waiter
    journal = tmp_path / "syncs.jsonl"
    monkeypatch.setenv("RMQSTORE_SYNC_JOURNAL", str(journal))  # the flusher's syncs too
    d, proc = _flusher_holding(tmp_path, "slow-sync")
    sync_journal.start(journal)
    try:
        with rmqstore.open(d, flush="sync", sync_flush_timeout_ms=120_000, **CONFIG) as store:
            t, got = _put_in_thread(store)
            t.join(0.5)
            assert t.is_alive(), "a sync put returned while another process held the sync"
            (tmp_path / "release").touch()
            t.join(20)
            assert not t.is_alive(), "the put never returned"
            put = got[0]
            synced = _synced_upto(journal, store, put.commitlog_offset)
            assert synced > put.commitlog_offset, \
                "the put returned before any fdatasync covered it"
        assert proc.wait(timeout=30) == 0
    finally:
        sync_journal.stop()
        proc.kill()


def _synced_upto(journal: Path, store: rmqstore.MessageStore, offset: int) -> int:
    """How far the journal's fdatasyncs made the commit log durable in offset's segment (as a
    commit-log offset)."""
    size = store.config.commitlog_segment_bytes
    start = offset // size * size
    seg = str(commitlog_dir(store.root).resolve() / f"{start:020d}")
    upto = [json.loads(line) for line in journal.read_text().splitlines()]
    return start + max((r["n"] for r in upto if r["op"] == "upto" and r["path"] == seg),
                       default=0)



def test_only_the_first_waiter_wakes_at_its_gathering_delay(tmp_path: Path,
                                                           monkeypatch) -> None:
    """Waiters gathering for a sync: the first to arrive keeps the delay and syncs when it
    ends short of the count; the second sleeps through its own delay, which ends while that
    sync runs, to the sync's end: one sleep, no try of the flush mutex (before: it woke at
    its delay's end and tried, a context switch per waiter per sync). Two group commits over
    one control file, as two processes have them; the sync is held open 0.4 s (in Python:
    neither has a segment the native wait could sync). The second arrives once the first has,
    and before the first's delay ends (else it would be the first since that sync began, and
    keep a delay of its own)."""
    monkeypatch.setattr(commit, "RECHECK_S", 120.0)  # no recheck for a dead flusher
    ctl = Control.lay_out(tmp_path / "control", 1, 1)
    ctl.u32[SYNC_WANT // 4] = 3  # the next sync gathers three waiters: never reached
    holding, release = threading.Event(), threading.Event()

    def held_sync() -> int:
        holding.set()
        assert release.wait(20)
        return 100

    def commit_of(sync, delay_us: int) -> SharedGroupCommit:
        return SharedGroupCommit(ctl, sync, 20, delay_us, lambda: None,
                                 lambda *_: pytest.fail("synced natively"))

    first = commit_of(held_sync, 300_000)  # syncs 0.3 s after it arrives
    # its delay ends 0.4 s after it arrives: after the first's, inside the sync
    second = commit_of(lambda: pytest.fail("the second waiter synced"), 400_000)
    got: dict[str, bool] = {}
    waiters = [threading.Thread(target=lambda c=c, n=n: got.update({n: c.wait(100)}))
               for c, n in ((first, "first"), (second, "second"))]

    def arrived(n: int) -> None:
        deadline = time.monotonic() + 20
        while ctl.u32[SYNC_ARRIVALS // 4] < n:
            assert time.monotonic() < deadline, f"waiter {n} did not arrive"
            time.sleep(0.001)

    try:
        for n, t in enumerate(waiters, 1):
            t.start()
            arrived(n)
        assert not holding.is_set(), "the second arrived after the first's delay (machine?)"
        assert holding.wait(20), "the first waiter did not sync at the end of its delay"
        time.sleep(0.4)
    finally:
        release.set()
        for t in waiters:
            t.join(20)
    assert got == {"first": True, "second": True} and (first.syncs, second.syncs) == (1, 0)
    assert second.sleeps == 1, "the second waiter woke inside the sync"
    assert second.tries == 0, "the second waiter tried the flush mutex"


# Another process appends until the commit log is half into its second file, and leaves
# without syncing anything (os._exit: no close, whose flush would sync).
_ROLL_PAST = """
import os, sys
import rmqstore
from tests.shared.worker import CONFIG, TOPIC
with rmqstore.open(sys.argv[1], **CONFIG) as store:
    size = store.config.commitlog_segment_bytes
    while store.put(TOPIC, b"r" * 200, queue_id=0).commitlog_offset < size + size // 2:
        pass
    os._exit(0)
"""


def test_a_sync_past_the_file_mapped_last_syncs_every_file_it_makes_durable(
        tmp_path: Path) -> None:
    """The native wait syncs only the commit-log file its process mapped last: when what is
    not yet durable begins in an earlier file (here: one another process filled and left
    unsynced), the sync runs in Python over every file. Whatever the durable word then
    covers, the sync journal shows an fdatasync of (a sync that moved it over bytes it never
    synced would let a later put return undurable)."""
    d = tmp_path / "store"
    journal = tmp_path / "syncs.jsonl"
    sync_journal.start(journal)
    try:
        with rmqstore.open(d, flush="sync", **CONFIG) as store:
            store.create_topic(TOPIC, QUEUES)
            size = store.config.commitlog_segment_bytes
            subprocess.run([sys.executable, "-c", _ROLL_PAST, str(d)], cwd=ROOT, check=True,
                           timeout=120)
            put = store.put(TOPIC, b"mine", queue_id=1)  # in the second file, mapped now
            assert put.status is rmqstore.PutStatus.PUT_OK
            durable = store.durable_offset
            assert durable >= size + size // 2, "the sync did not cover the other's puts"
            for start in range(0, durable, size):
                synced = _synced_upto(journal, store, start) - start
                assert synced >= min(size, durable - start), \
                    f"durable {durable}, but the file at {start} synced up to {synced} only"
    finally:
        sync_journal.stop()


class _Interrupted(Exception):
    pass


def test_a_signal_interrupts_a_sync_wait_at_once(tmp_path: Path, monkeypatch) -> None:
    """The wait sleeps in C; a signal ends the sleep, and its Python handler runs before the
    wait goes on: here it raises, as Ctrl-C's KeyboardInterrupt would, while another process
    holds the sync (the waiter would otherwise sleep to the flush timeout)."""
    monkeypatch.setattr(commit, "RECHECK_S", 120.0)
    d, proc = _flusher_holding(tmp_path)

    def interrupt(*_) -> None:
        raise _Interrupted

    old = signal.signal(signal.SIGALRM, interrupt)
    try:
        with rmqstore.open(d, flush="sync", sync_flush_timeout_ms=120_000, **CONFIG) as store:
            began = time.monotonic()
            signal.setitimer(signal.ITIMER_REAL, 0.3)
            with pytest.raises(_Interrupted):
                store.put(TOPIC, b"waiter", queue_id=1)
            assert time.monotonic() - began < 10, "the signal's handler ran late"
            (tmp_path / "release").touch()
        assert proc.wait(timeout=30) == 0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        proc.kill()
