"""A failed fdatasync of the commit log: nothing after it is acknowledged, and the next open
ends the log where it was last durable (sync_failure.py).

Linux marks the pages whose write-back failed clean, so a later fdatasync succeeds without
writing them; on ext4 the blocks of a preallocated segment even stay unwritten extents when
the pages are written again, and read as zeros after a power loss. A store that went on, or
that kept those records at its next open while the page cache still held them, would lose
every record acknowledged after them at a power loss: recovery ends the log at the hole.
Here the disk really fails (tests/crash/failing_disk.py) under each sync path of the commit
log (a blocking put's group commit, the event loop's as a broker's, a shared store's native
one): a put's write-back fails; the store refuses writes from then on; it is closed while the
page cache still holds the failed record and opened again, and must have cut it; a record put
then is acknowledged, the page cache goes (remount), and every acknowledged record is there.
The processes sharing a store stop with the one whose sync failed (the last two tests; the
periodic flush's failure is made by hand, as tests/engine/test_flush.py makes it).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import rmqstore
from rmqstore import filenames
from tests.crash.failing_disk import FailingDisk
from tests.failing_sync import FailingSync

BODY = 300
PAGE = 4096
CFG = dict(commitlog_segment_bytes=1 << 20, consumequeue_units=1024, index_slots=64,
           index_entries=256, background=False, flush="sync", sync_flush_timeout_ms=2000)


@pytest.fixture
def disk(tmp_path: Path):
    d = FailingDisk(tmp_path)
    try:
        d.setup()
        yield d
    finally:
        d.teardown()


def _body(tag: bytes, i: int, size: int = 0) -> bytes:
    return (tag + b"%05d" % i).ljust(size or BODY * (10 if tag == b"B" else 1), b".")


def _blocking(store, tag: bytes, n: int, first: int, size: int) -> list[bool]:
    acked = []
    for i in range(first, first + n):
        try:
            r = store.put("T", _body(tag, i, size), queue_id=0)
        except rmqstore.SyncFailedError:
            raise
        except OSError:
            acked.append(False)
            continue
        acked.append(r.status is rmqstore.PutStatus.PUT_OK)
    return acked


async def _puts(store, on_loop: bool, steps) -> None:
    """Runs steps(put) with put(tag, n, first=0, size=0) -> acknowledged or not, each."""
    commit = store.async_group_commit(asyncio.get_running_loop()) if on_loop else None

    async def put(tag: bytes, n: int, first: int = 0, size: int = 0) -> list[bool]:
        if commit is None:  # blocking puts, on a thread: their own group commits
            return await asyncio.to_thread(_blocking, store, tag, n, first, size)
        acked = []
        for i in range(first, first + n):  # one at a time: each waits for its own sync
            p = store.put_async("T", _body(tag, i, size), queue_id=0)
            acked.append(await commit.future(p.result.commitlog_offset))
        return acked

    try:
        await steps(put)
    finally:
        if commit is not None:
            commit.close()


def _bodies(store) -> list[bytes]:
    return [m.body for m in store.get("T", 0, 0, 100).messages]


@pytest.mark.parametrize("path", ["blocking", "event_loop", "shared"])
def test_after_a_failed_sync_nothing_more_is_acknowledged_and_the_next_open_cuts_there(
        disk: FailingDisk, path: str) -> None:
    cfg = dict(CFG, shared=True) if path == "shared" else CFG
    where = disk.mnt / "store"
    on_loop = path == "event_loop"
    marks: list[int] = []

    async def fail(put) -> None:
        assert await put(b"A", 4) == [True] * 4
        before = store.commitlog.max_offset
        assert await put(b"A", 1, first=4) == [True]
        overhead = store.commitlog.max_offset - before - BODY  # of a record beside its body
        # A ends on a page boundary: a write the loop device takes in part counts as written
        # (only one that writes nothing fails), so no write-back may begin on a page that
        # has room and run into the starved ones
        pad = -(store.commitlog.max_offset + overhead + BODY) % PAGE + BODY
        assert await put(b"A", 1, first=5, size=pad) == [True]
        end = store.commitlog.max_offset
        assert end % PAGE == 0
        disk.starve(store.commitlog.files.files[-1].path, end)
        assert await put(b"B", 1) == [False]  # its write-back failed
        disk.feed()  # the disk would take it now; the store does not try
        with pytest.raises(rmqstore.SyncFailedError, match=f"at offset {end}"):
            await put(b"B", 1, first=1)
        marks.append(end)

    with rmqstore.open(where, **cfg) as store:
        store.create_topic("T", 1)
        asyncio.run(_puts(store, on_loop, fail))
        assert store.durable_offset == marks[0]
    assert filenames.sync_failed_file(where).read_text() == f"{marks[0]}\n"
    # closed with the failed record still in the page cache: reopened, the log ends before it

    async def more(put) -> None:
        assert await put(b"C", 5) == [True] * 5

    with rmqstore.open(where, **cfg) as store:
        assert store.commitlog.max_offset == marks[0]
        assert [b[:6] for b in _bodies(store)] == [b"A%05d" % i for i in range(6)]
        assert not filenames.sync_failed_file(where).exists()
        asyncio.run(_puts(store, on_loop, more))
    disk.remount()  # what the disk holds, as after a power loss
    with rmqstore.open(where, **cfg) as store:
        bodies = _bodies(store)
    assert [b[:6] for b in bodies] == [b"A%05d" % i for i in range(6)] \
        + [b"C%05d" % i for i in range(5)]
    assert bodies[6:] == [_body(b"C", i) for i in range(5)]


def test_a_failure_another_sync_saw_first_is_still_reported_to_flush(disk: FailingDisk) -> None:
    """Syncs through one open file report a failed write-back once: the event loop's syncs
    (aio_commit) go through the segment's fd, so a blocking put's group commit (flush())
    syncs through a file of its own, which reports the same failure again rather than
    taking the pages it left clean for written ones."""
    cfg = dict(CFG, flush="async")
    with rmqstore.open(disk.mnt / "store", **cfg) as store:
        store.create_topic("T", 1)
        store.put("T", _body(b"A", 0), queue_id=0)
        before = store.commitlog.max_offset
        store.put("T", _body(b"A", 1), queue_id=0)
        overhead = store.commitlog.max_offset - before - BODY
        pad = -(store.commitlog.max_offset + overhead + BODY) % PAGE + BODY
        store.put("T", _body(b"A", 2, pad), queue_id=0)
        seg = store.commitlog.files.files[-1]
        assert seg.flush() == seg.wrote and seg.wrote % PAGE == 0
        disk.starve(seg.path, seg.wrote)
        store.put("T", _body(b"B", 0), queue_id=0)
        with pytest.raises(OSError):
            os.fdatasync(seg.fd)  # as the event loop's sync: it sees the failure
        with pytest.raises(OSError):
            seg.flush()  # and so does flush(), through its own file
        disk.feed()


SHARER = """
import sys
import rmqstore
cfg = dict(commitlog_segment_bytes=1 << 20, consumequeue_units=1024, index_slots=64,
           index_entries=256, background=False, flush=sys.argv[2], sync_flush_timeout_ms=2000,
           shared=True)
store = rmqstore.open(sys.argv[1], **cfg)
print("open", store.sync_failed_at, flush=True)
for line in sys.stdin:
    if line.strip() == "close":
        break
    try:
        r = store.put("T", line.strip().encode(), queue_id=0)
        print("put", r.status.name, flush=True)
    except rmqstore.SyncFailedError as exc:
        print("refused", exc, flush=True)
store.close()
print("closed", flush=True)
"""


class Sharer:
    """Another process with the shared store open, putting what it is told to."""

    def __init__(self, where: Path, flush: str = "sync") -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", SHARER, str(where), flush],
                                     text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.opened = self._answer()

    def _answer(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def put(self, body: bytes) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(body.decode() + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def close(self) -> None:
        """Close the store and exit; what it logged must hold no error but the failure's."""
        assert self.proc.stdin is not None and self.proc.stderr is not None
        self.proc.stdin.write("close\n")
        self.proc.stdin.flush()
        assert self._answer() == "closed"
        self.proc.wait(timeout=30)
        logged = self.proc.stderr.read()
        assert "Traceback" not in logged, logged


def test_a_failed_sync_stops_every_process_of_a_shared_store(disk: FailingDisk) -> None:
    """A file reports a failed write-back once, and a file opened after the failure never: a
    process that opens the store after another's sync failed (or the segment after it) would
    sync over the hole with success and acknowledge records that the next open cuts. The
    control file tells every process: the one open before the failure and the one that opens
    after it refuse their puts, appending nothing."""
    where = disk.mnt / "store"
    cfg = dict(CFG, shared=True)
    marks: list[int] = []
    sharers: list[Sharer] = []
    try:
        with rmqstore.open(where, **cfg) as store:
            store.create_topic("T", 1)
            early = Sharer(where)
            sharers.append(early)
            assert early.opened == "open None"

            async def fail(put) -> None:
                assert early.put(_body(b"E", 0)) == "put PUT_OK"  # before the failure
                assert await put(b"A", 4) == [True] * 4
                before = store.commitlog.max_offset
                assert await put(b"A", 1, first=4) == [True]
                overhead = store.commitlog.max_offset - before - BODY
                pad = -(store.commitlog.max_offset + overhead + BODY) % PAGE + BODY
                assert await put(b"A", 1, first=5, size=pad) == [True]
                end = store.commitlog.max_offset
                disk.starve(store.commitlog.files.files[-1].path, end)
                assert await put(b"B", 1) == [False]  # its write-back failed
                disk.feed()  # the disk would take a write now: the others must not try
                marks.append(end)

            asyncio.run(_puts(store, False, fail))
            assert early.put(_body(b"E", 1)).startswith("refused")
            late = Sharer(where)
            sharers.append(late)
            assert late.opened == f"open {marks[0]}"
            assert late.put(_body(b"L", 0)).startswith("refused")
            assert early.put(_body(b"E", 2)).startswith("refused")
            assert store.max_offset("T", 0) == 8  # E0, A0-A5 and the failed B
        for s in sharers:
            s.close()
    finally:
        for s in sharers:
            s.proc.kill()
    disk.remount()
    with rmqstore.open(where, **CFG) as store:
        bodies = [b[:6] for b in _bodies(store)]
    # every acknowledged put is there, and nothing else
    assert bodies == [b"E00000"] + [b"A%05d" % i for i in range(6)]


def test_a_failed_periodic_flush_stops_every_process_of_a_shared_store(tmp_path: Path,
                                                                        monkeypatch) -> None:
    """Async flush: the process leading the housekeeping fails its periodic flush of the log;
    a process that shares the store (and runs no flush of its own) refuses its puts too."""
    sync = FailingSync(monkeypatch)
    where = tmp_path / "store"
    cfg = dict(CFG, shared=True, flush="async", background=True, flush_interval_ms=20,
               flush_least_pages=0)
    other = None
    try:
        with rmqstore.open(where, **cfg) as store:
            store.create_topic("T", 1)
            other = Sharer(where, "async")
            assert other.put(b"before") == "put PUT_OK"
            store.put("T", b"durable", queue_id=0)
            durable = store.commitlog.max_offset
            deadline = time.monotonic() + 10
            while store.commitlog.files.durable() < durable and time.monotonic() < deadline:
                time.sleep(0.01)
            sync.failing = True
            store.put("T", b"lost with the failed flush", queue_id=0)
            while store.sync_failed_at is None and time.monotonic() < deadline:
                time.sleep(0.01)
            assert store.sync_failed_at == durable
            assert other.put(b"after").startswith("refused")
            assert store.max_offset("T", 0) == 3
            sync.failing = False
        other.close()
    finally:
        if other is not None:
            other.proc.kill()
    with rmqstore.open(where, **dict(cfg, shared=False)) as store:
        assert [m.body for m in store.get("T", 0, 0).messages] == [b"before", b"durable"]
