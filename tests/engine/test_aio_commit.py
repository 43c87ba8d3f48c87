"""Sync flush led from an asyncio loop (aio_commit + the native rmq_syncer thread)."""

from __future__ import annotations

import asyncio
import errno
import os
import select
import threading
import time

import pytest

import rmqstore
from rmqstore import _native, aio_commit
from rmqstore.segment import PAGE, written_ranges


def _python_syncs(monkeypatch) -> list[tuple[int, int]]:
    """(fd, thread) of each fdatasync made through Python from now on, in order: the loop's
    own syncs (the native syncer thread's are not seen)."""
    syncs: list[tuple[int, int]] = []
    real = os.fdatasync

    def recorded(fd: int) -> None:
        real(fd)
        syncs.append((fd, threading.get_ident()))

    monkeypatch.setattr(os, "fdatasync", recorded)
    return syncs


def test_native_syncer_announces_each_job_on_the_eventfd(tmp_path):
    efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
    fd = os.open(tmp_path / "f", os.O_CREAT | os.O_RDWR)
    syncer = _native.Syncer(efd)
    cell = _native.new_cell(3)
    try:
        assert syncer.done() == (-1, 0)
        os.write(fd, b"abc")
        assert syncer.submit(fd, cell)
        assert select.select([efd], [], [], 5)[0] == [efd]
        assert os.eventfd_read(efd) == 1
        assert syncer.done() == (3, 0)
        cell[0] = 7
        assert syncer.submit(-1, cell)  # a bad file: the job fails with its errno
        assert select.select([efd], [], [], 5)[0] == [efd]
        os.eventfd_read(efd)
        assert syncer.done() == (7, errno.EBADF)
    finally:
        syncer.close()
        os.close(fd)
        os.close(efd)


def test_loop_led_group_commit_covers_every_put_across_segments(tmp_path, small_config):
    cfg = dict(small_config, flush="sync")  # 4 KiB segments: the puts roll many of them

    async def main(store):
        commit = store.async_group_commit(asyncio.get_running_loop())
        assert store.async_group_commit(asyncio.get_running_loop()) is commit  # one per store
        store.create_topic("T", 2)
        pendings = [store.put_async("T", b"m%04d" % i, queue_id=i % 2) for i in range(300)]
        futures = [commit.future(p.result.commitlog_offset) for p in pendings]
        assert await asyncio.wait_for(asyncio.gather(*futures), 10) == [True] * 300
        assert store.durable_offset == store.commitlog.max_offset
        assert all(seg.flushed == seg.wrote for seg in store.commitlog.files.files)
        assert len(store.commitlog.files.files) > 5
        # A put nobody waits for is made durable soon all the same (it cues the commit).
        store.put_async("T", b"unwaited", queue_id=0)
        end = store.commitlog.max_offset
        for _ in range(200):
            if store.durable_offset >= end:
                break
            await asyncio.sleep(0.01)
        assert store.durable_offset >= end
        # A record already durable: the future is done at once.
        assert commit.future(pendings[0].result.commitlog_offset).result() is True
        commit.close()
        late = store.put_async("T", b"after close", queue_id=0)
        assert await commit.future(late.result.commitlog_offset) is False

    with rmqstore.open(tmp_path, **cfg) as store:
        asyncio.run(main(store))
    with rmqstore.open(tmp_path, **cfg) as store:
        assert store.get("T", 0, 0, 1000).messages[-1].body == b"after close"
        assert len(store.get("T", 1, 0, 1000).messages) == 150


def test_blocking_puts_beside_the_loop_share_the_durable_offset(tmp_path, small_config):
    """A blocking put (another thread) leads its own group commit; the loop's futures and the
    store's durable offset agree with it."""
    cfg = dict(small_config, flush="sync", commitlog_segment_bytes=1 << 20)

    async def main(store):
        commit = store.async_group_commit(asyncio.get_running_loop())
        blocking = await asyncio.to_thread(lambda: [store.put("T", b"b%d" % i) for i in range(20)])
        assert all(r.status is rmqstore.PutStatus.PUT_OK for r in blocking)
        assert store.durable_offset > blocking[-1].commitlog_offset
        p = store.put_async("T", b"loop")
        assert await commit.future(p.result.commitlog_offset) is True
        assert store.durable_offset == store.commitlog.max_offset

    with rmqstore.open(tmp_path, **cfg) as store:
        asyncio.run(main(store))


def test_native_delay_ends_when_the_expected_records_wait(tmp_path):
    """submit(delay, want, waiting): the sync waits until `want` records wait (each
    waiting_one_more adds one) or the delay runs out, and reads the position after the wait."""
    efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
    fd = os.open(tmp_path / "f", os.O_CREAT | os.O_RDWR)
    syncer = _native.Syncer(efd)
    cell = _native.new_cell(10)
    try:
        t0 = time.monotonic()
        assert syncer.submit(fd, cell, 5_000_000, 3, 1)  # up to 5 s for 3 records; 1 waits
        time.sleep(0.05)
        assert select.select([efd], [], [], 0)[0] == []  # still waiting
        cell[0] = 20  # appended meanwhile: the sync must cover it
        syncer.waiting_one_more()
        syncer.waiting_one_more()  # the third: the sync starts now
        assert select.select([efd], [], [], 5)[0] == [efd]
        os.eventfd_read(efd)
        assert time.monotonic() - t0 < 2.5
        assert syncer.done() == (20, 0)
        t0 = time.monotonic()
        assert syncer.submit(fd, cell, 100_000, 3, 1)  # nobody else comes: 100 ms, then sync
        assert select.select([efd], [], [], 5)[0] == [efd]
        os.eventfd_read(efd)
        assert time.monotonic() - t0 >= 0.09
    finally:
        syncer.close()
        os.close(fd)
        os.close(efd)


def test_loop_led_commit_with_a_delay_answers_every_round(tmp_path, small_config):
    """With group_commit_delay_us set, rounds of concurrent sends and lone sends all become
    durable, whatever the group sizes turn out to be."""
    cfg = dict(small_config, flush="sync", commitlog_segment_bytes=1 << 20,
               group_commit_delay_us=20_000)

    async def main(store):
        commit = store.async_group_commit(asyncio.get_running_loop())
        for size in (1, 4, 4, 1, 3, 8, 1):
            pendings = [store.put_async("T", b"r%d" % i) for i in range(size)]
            futures = [commit.future(p.result.commitlog_offset) for p in pendings]
            assert await asyncio.wait_for(asyncio.gather(*futures), 5) == [True] * size
        assert store.durable_offset == store.commitlog.max_offset

    with rmqstore.open(tmp_path, **cfg) as store:
        asyncio.run(main(store))


def test_lone_producer_is_answered_after_the_loops_own_fdatasync(tmp_path, small_config,
                                                                   monkeypatch):
    """One send at a time, syncs quick: the loop syncs it itself (no native thread), and the
    future resolves only after an fdatasync of the send's segment that began once it was
    appended."""
    cfg = dict(small_config, flush="sync")  # 4 KiB segments: the sends roll several
    monkeypatch.setattr(aio_commit, "INLINE_BELOW_S", 60.0)  # quick, however loaded the machine
    syncs = _python_syncs(monkeypatch)

    async def main(store):
        commit = store.async_group_commit(asyncio.get_running_loop())
        loop_thread = threading.get_ident()
        first = store.put_async("T", b"first: how long do syncs take?")  # the native thread's
        assert await commit.future(first.result.commitlog_offset) is True
        for i in range(120):
            before = len(syncs)
            p = store.put_async("T", b"lone %04d" % i + b"." * 40)
            offset = p.result.commitlog_offset
            seg = next(s for s in store.commitlog.files.files
                       if s.start <= offset < s.start + s.size)
            assert await asyncio.wait_for(commit.future(offset), 5) is True
            assert (seg.fd, loop_thread) in syncs[before:], f"send {i} answered unsynced"
            assert seg.flushed > offset - seg.start
        assert store.durable_offset == store.commitlog.max_offset
        assert len(store.commitlog.files.files) > 2

    with rmqstore.open(tmp_path, **cfg) as store:
        asyncio.run(main(store))


def test_concurrent_producers_are_synced_by_the_loop_within_the_delay(tmp_path, small_config,
                                                                     monkeypatch):
    """Syncs quick, several sends per sync: the loop makes each fdatasync itself (no thread
    hand-off). The delay is honoured: after a sync that answered four, a lone send waits up to
    the delay for three more; four sends need no wait."""
    cfg = dict(small_config, flush="sync", commitlog_segment_bytes=1 << 20,
               group_commit_delay_us=100)
    monkeypatch.setattr(aio_commit, "INLINE_BELOW_S", 60.0)  # quick, however loaded the machine
    syncs = _python_syncs(monkeypatch)

    async def round_of(commit, store, n: int) -> list[bool]:
        pendings = [store.put_async("T", b"r%d" % i) for i in range(n)]
        futures = [commit.future(p.result.commitlog_offset) for p in pendings]
        return await asyncio.wait_for(asyncio.gather(*futures), 10)

    async def main(store):
        commit = store.async_group_commit(asyncio.get_running_loop())
        loop_thread = threading.get_ident()
        for _ in range(3):  # the first sync is the thread's (how long do syncs take?)
            assert await round_of(commit, store, 4) == [True] * 4
        commit._delay_us = 2_000_000  # 2 s: a wait that shows, however loaded the machine
        before = len(syncs)
        t0 = time.monotonic()
        assert await round_of(commit, store, 4) == [True] * 4
        assert time.monotonic() - t0 < 1.5, "four sends waited for the delay"
        assert syncs[before:] and {t for _, t in syncs[before:]} == {loop_thread}
        lone = store.put_async("T", b"lone")
        future = commit.future(lone.result.commitlog_offset)
        await asyncio.sleep(0.5)
        assert not future.done(), "the lone send did not wait for the delay"
        assert await asyncio.wait_for(future, 10) is True
        assert store.durable_offset == store.commitlog.max_offset

    with rmqstore.open(tmp_path, **cfg) as store:
        asyncio.run(main(store))


def test_a_sync_while_other_work_waits_leaves_the_loop_free(tmp_path, small_config,
                                                              monkeypatch):
    """keep_loop_free (a held pull woke): the next sync runs on the native thread even for a
    lone producer, scheduled or not; the one after may be the loop's own again."""
    cfg = dict(small_config, flush="sync", commitlog_segment_bytes=1 << 20)
    monkeypatch.setattr(aio_commit, "INLINE_BELOW_S", 60.0)
    on_loop = _python_syncs(monkeypatch)

    async def main(store):
        commit = store.async_group_commit(asyncio.get_running_loop())
        first = store.put_async("T", b"first")
        assert await commit.future(first.result.commitlog_offset) is True
        for i in range(20):
            before = len(on_loop)
            p = store.put_async("T", b"woke a pull %d" % i)
            if i % 2:  # woken after the loop's sync was scheduled
                fut = commit.future(p.result.commitlog_offset)
                commit.keep_loop_free()
            else:  # woken before
                commit.keep_loop_free()
                fut = commit.future(p.result.commitlog_offset)
            assert await asyncio.wait_for(fut, 5) is True
            assert on_loop[before:] == [], f"send {i}: the loop blocked on its sync"
            before = len(on_loop)
            p = store.put_async("T", b"alone %d" % i)
            assert await asyncio.wait_for(commit.future(p.result.commitlog_offset), 5) is True
            assert len(on_loop) > before  # free again: the loop's own sync
        assert store.durable_offset == store.commitlog.max_offset

    with rmqstore.open(tmp_path, **cfg) as store:
        asyncio.run(main(store))


def test_a_lone_sources_read_is_durable_when_sync_now_returns(tmp_path, small_config,
                                                               monkeypatch):
    """sync_now: reads from one source, nothing else waiting, syncs quick: each is durable
    when the call returns True, by an fdatasync of its segment on the loop's thread made in
    the call, and answered once in it, after that fdatasync. Reads alternating between two
    sources (concurrent producers) are left to the loop's sync (False, not answered), and
    still made durable."""
    cfg = dict(small_config, flush="sync")  # 4 KiB segments: the sends roll several
    monkeypatch.setattr(aio_commit, "INLINE_BELOW_S", 60.0)  # quick, however loaded the machine
    syncs = _python_syncs(monkeypatch)

    def put(store, body: bytes):
        offset = store.put_async("T", body).result.commitlog_offset
        seg = next(s for s in store.commitlog.files.files
                   if s.start <= offset < s.start + s.size)
        return offset, seg

    async def main(store):
        commit = store.async_group_commit(asyncio.get_running_loop())
        loop_thread = threading.get_ident()
        first, _ = put(store, b"first: how long do syncs take?")  # the native thread's
        assert await commit.future(first) is True
        answered: list[list[tuple[int, int]]] = []  # the syncs made when each answer came
        for i in range(80):
            offset, seg = put(store, b"lone %04d" % i + b"." * 40)
            before = len(syncs)
            answered.clear()
            answer = lambda: answered.append(syncs[before:])  # noqa: E731, B023
            if i == 0 or offset == seg.start:  # the source's first read: whether another
                # follows is not known; a roll: the segment before goes to the native thread
                assert commit.sync_now(offset, 1, answer) is False
                assert answered == []
                assert await asyncio.wait_for(commit.future(offset), 5) is True
                continue
            assert commit.sync_now(offset, 1, answer) is True, f"read {i} not synced in the call"
            assert syncs[before:] == [(seg.fd, loop_thread)]
            assert answered == [[(seg.fd, loop_thread)]], f"read {i} answered before its sync"
            assert seg.flushed > offset - seg.start and store.durable_offset > offset
        for i in range(20):
            offset, _ = put(store, b"two producers %d" % i)
            answered.clear()
            assert commit.sync_now(offset, 2 + i % 2, lambda: answered.append([])) is False, \
                f"read {i} synced alone"
            assert answered == []
            assert await asyncio.wait_for(commit.future(offset), 5) is True
        assert store.durable_offset == store.commitlog.max_offset
        assert len(store.commitlog.files.files) > 2

    with rmqstore.open(tmp_path, **cfg) as store:
        asyncio.run(main(store))


def test_a_sync_is_timed_from_its_submit_so_a_slow_disk_stays_off_the_loop(
        tmp_path, small_config, monkeypatch):
    """A slow sync whose thread ends before the loop runs again (the loop preempted right
    after the submit: here the fake syncs inside submit) is still timed as slow, so the next
    sync goes to the thread too rather than block the loop."""
    cfg = dict(small_config, flush="sync", commitlog_segment_bytes=1 << 20)
    monkeypatch.setattr(aio_commit, "INLINE_BELOW_S", 0.04)
    real = os.fdatasync

    class PreemptedSyncer:  # rmqstore._native.Syncer whose whole 50 ms sync ends in submit
        def __init__(self, efd: int) -> None:
            self.efd, self.jobs, self._done = efd, 0, (-1, 0)

        def submit(self, fd, cell, delay_us=0, want=0, waiting=0) -> bool:
            time.sleep(0.05)
            upto = cell[0]
            real(fd)
            self.jobs += 1
            self._done = (upto, 0)
            os.eventfd_write(self.efd, 1)
            return True

        def done(self):
            return self._done

        def waiting_one_more(self) -> None:
            pass

        def close(self) -> None:
            pass

    made: list[PreemptedSyncer] = []
    monkeypatch.setattr(_native, "Syncer", lambda efd: made.append(PreemptedSyncer(efd))
                        or made[-1])
    on_loop = _python_syncs(monkeypatch)  # the loop's own (the fake calls the real one)

    async def main(store):
        commit = store.async_group_commit(asyncio.get_running_loop())
        for i in range(3):
            p = store.put_async("T", b"slow disk %d" % i)
            assert await asyncio.wait_for(commit.future(p.result.commitlog_offset), 5) is True
        log_fds = {seg.fd for seg in store.commitlog.files.files}
        assert made[0].jobs == 3 and not log_fds & {fd for fd, _ in on_loop}, \
            "a slow sync timed as quick"

    with rmqstore.open(tmp_path, **cfg) as store:
        asyncio.run(main(store))


def test_syncs_of_one_send_have_the_next_records_pwritten(tmp_path, small_config):
    """After a sync that answered up to PWRITE_UP_TO sends (a lone producer), the next records
    are pwritten: the page that sync wrote back would take a fault through the mapping. After
    one that answered more, they go through the mapping again (one fault shared by many)."""
    cfg = dict(small_config, flush="sync", commitlog_segment_bytes=1 << 20)
    GROUP = aio_commit.PWRITE_UP_TO + 2  # noqa: N806

    async def main(store):
        commit = store.async_group_commit(asyncio.get_running_loop())
        mapped = lambda: store.commitlog.appender.mapped_bytes  # noqa: E731
        first = store.put_async("T", b"first", queue_id=0)
        before = mapped()
        assert before > 0  # no sync yet: through the mapping
        assert await commit.future(first.result.commitlog_offset) is True
        for i in range(3):
            lone = store.put_async("T", b"lone %d" % i, queue_id=0)
            assert mapped() == before, f"lone send {i} went through the mapping"
            assert await commit.future(lone.result.commitlog_offset) is True
        group = [store.put_async("T", b"group %d" % i, queue_id=0) for i in range(GROUP)]
        assert mapped() == before
        futures = [commit.future(p.result.commitlog_offset) for p in group]
        assert await asyncio.wait_for(asyncio.gather(*futures), 10) == [True] * GROUP
        store.put_async("T", b"after the group", queue_id=0)
        assert mapped() > before

    with rmqstore.open(tmp_path, **cfg) as store:
        asyncio.run(main(store))
    with rmqstore.open(tmp_path, **cfg) as store:
        assert [m.body for m in store.get("T", 0, 0, 100).messages] == \
            [b"first"] + [b"lone %d" % i for i in range(3)] + \
            [b"group %d" % i for i in range(GROUP)] + [b"after the group"]


def test_lone_sends_have_zeros_written_ahead_and_keep_their_records(tmp_path, small_config,
                                                                    monkeypatch):
    """While syncs answer few sends, zeros are written over the pages ahead of the writer
    (their blocks written, not the "unwritten" ones posix_fallocate leaves, whose conversion
    would cost a journal commit in the sync that first covers them), never over a record."""
    cfg = dict(small_config, flush="sync", commitlog_segment_bytes=1 << 20)
    ahead = 64 << 10
    monkeypatch.setattr(aio_commit, "ZEROS_AHEAD", ahead)
    bodies = [b"lone %04d " % i + b"." * 200 for i in range(600)]  # ~3 zeroings' worth

    async def main(store):
        commit = store.async_group_commit(asyncio.get_running_loop())
        for body in bodies:
            p = store.put_async("T", body, queue_id=0)
            assert await asyncio.wait_for(commit.future(p.result.commitlog_offset), 5)
        await asyncio.sleep(0)  # the zeros come after the answer
        seg = store.commitlog.files.files[-1]
        page_end = -(-seg.wrote // PAGE) * PAGE
        assert seg.zeroed >= page_end + ahead // 2
        written = written_ranges(seg.fd, page_end, ahead // 2)
        if written is None:
            pytest.skip("no FIEMAP on this file system")
        assert written == [(page_end, page_end + ahead // 2)]
        assert not any(seg.view[seg.wrote:seg.zeroed])

    with rmqstore.open(tmp_path, **cfg) as store:
        asyncio.run(main(store))
    with rmqstore.open(tmp_path, **cfg) as store:
        assert [m.body for m in store.get("T", 0, 0, 1000).messages] == bodies
