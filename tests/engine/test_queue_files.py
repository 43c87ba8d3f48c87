"""What a queue costs: no descriptor, about 20 KiB of disk while idle, a mapping only while used
(at most consumequeue_mapped_files of them), nothing at all at open; and what an operating-system
limit does mid-creation (a specific error, nothing lost, the store reopens)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap

import pytest

import rmqstore
from rmqstore import _native, queue_file, queue_table, sync_journal
from rmqstore.errors import DiskFullError, StoreLimitError
from rmqstore.protocol.message import encode_batch
from rmqstore.queue_file import RESERVE_BYTES

# Default consume-queue files (300,000 units, 6,000,000 bytes): what sparse files are for.
CFG = dict(commitlog_segment_bytes=1 << 20, index_enable=False, background=False)


def _queue_names(n: int) -> list[tuple[str, int]]:
    return [(f"T{i // 4:05d}", i % 4) for i in range(n)]


def _fill(s, names, body=b"m") -> None:
    for topic in sorted({t for t, _ in names}):
        s.create_topic(topic, 4)
    for i, (topic, qid) in enumerate(names):
        s.put(topic, body + b"%d" % i, queue_id=qid)


def _check(s, names, body=b"m") -> None:
    for i, (topic, qid) in enumerate(names):
        got = s.get(topic, qid, 0)
        assert [m.body for m in got.messages] == [body + b"%d" % i], (topic, qid)


def _cq_mappings(root) -> int:
    """Queue files of the store at root mapped in this process."""
    with open("/proc/self/maps") as f:
        return sum(1 for line in f if f"{root}/consumequeue/" in line)


# A child whose descriptor limit is far below the number of queues it makes: 1,000 queues with
# RLIMIT_NOFILE 128, written, closed, reopened and read back in the same process.
MANY_QUEUES = textwrap.dedent("""
    import os, resource, sys
    resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))
    import rmqstore
    from tests.engine.test_queue_files import CFG, _check, _fill, _queue_names
    names = _queue_names(1000)
    with rmqstore.open(sys.argv[1], **CFG) as s:
        _fill(s, names)
        print("fds while open", len(os.listdir("/proc/self/fd")))
    with rmqstore.open(sys.argv[1], **CFG) as s:
        _check(s, names)
    print("read back")
""")


def test_more_queues_than_the_descriptor_limit(tmp_path):
    out = subprocess.run([sys.executable, "-c", MANY_QUEUES, str(tmp_path)], check=True,
                         capture_output=True, text=True, timeout=300).stdout
    fds = int(out.split("fds while open ")[1].split()[0])
    assert fds < 32, out  # the commit log, lock, checkpoint and the interpreter's own
    assert "read back" in out


def test_an_idle_queue_costs_kilobytes_in_rocketmq_file_sizes(tmp_path):
    with rmqstore.open(tmp_path, **CFG) as s:
        _fill(s, _queue_names(40))
    files = sorted((tmp_path / "consumequeue").glob("*/*/*"))
    assert len(files) == 40
    for f in files:
        st = f.stat()
        assert f.name == "0" * 20 and st.st_size == 300_000 * 20  # RocketMQ's name and size
        assert st.st_blocks * 512 <= RESERVE_BYTES + 4096, f


def test_mapped_files_stay_within_the_budget(tmp_path):
    """200 queues written round robin through a budget of 16 mappings: files are unmapped and
    mapped again as the writer and readers come back to them, and nothing is lost."""
    names = _queue_names(200)
    with rmqstore.open(tmp_path, consumequeue_mapped_files=16, **CFG) as s:
        _fill(s, names, b"a")
        for i, (topic, qid) in enumerate(names):
            assert s.put(topic, b"b%d" % i, queue_id=qid).queue_offset == 1
            assert _cq_mappings(tmp_path) <= 16
        for i, (topic, qid) in enumerate(names):
            assert [m.body for m in s.get(topic, qid, 0).messages] == [b"a%d" % i, b"b%d" % i]
            assert _cq_mappings(tmp_path) <= 16
        assert len(s.consume_queues.clock) <= 16


# Readers pin the file they read: a writer going round 64 queues through a budget of 4 never
# unmaps one under them. In a child: reading an unmapped file kills the process.
READERS_CHILD = textwrap.dedent("""
    import sys, threading
    import rmqstore
    from tests.engine.test_queue_files import CFG, _fill, _queue_names
    names = _queue_names(64)
    stop = threading.Event()
    errors = []
    with rmqstore.open(sys.argv[1], consumequeue_mapped_files=4, **CFG) as s:
        _fill(s, names, b"w")

        def read():
            try:
                k = 0
                while not stop.is_set():
                    topic, qid = names[k % len(names)]
                    got = s.get_bodies(topic, qid, 0, 64)
                    assert bytes(got[0]) == b"w%d" % (k % len(names))
                    k += 1
            except BaseException as exc:
                errors.append(exc)

        readers = [threading.Thread(target=read) for _ in range(2)]
        for t in readers:
            t.start()
        try:
            for r in range(20):
                for i, (topic, qid) in enumerate(names):
                    s.put(topic, b"%d.%d" % (r, i), queue_id=qid)
        finally:
            stop.set()
            for t in readers:
                t.join(30)
        assert not errors, errors
        assert all(s.max_offset(t, q) == 21 for t, q in names)
    print("done")
""")


def test_readers_beside_a_writer_that_unmaps(tmp_path):
    proc = subprocess.run([sys.executable, "-c", READERS_CHILD, str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "done" in proc.stdout, proc.stderr[-3000:]


def test_opening_after_a_clean_close_touches_no_queue(tmp_path):
    names = _queue_names(200)
    with rmqstore.open(tmp_path, **CFG) as s:
        _fill(s, names)
    journal = tmp_path / "journal"
    sync_journal.start(journal)
    try:
        s = rmqstore.open(tmp_path, **CFG)
        try:
            # at most the queue of the last record, to know that everything was dispatched
            assert len(s.consume_queues.by_key) <= 1
            assert _cq_mappings(tmp_path) <= 1
            _check(s, names[:3])
            assert len(s.consume_queues.by_key) <= 4
        finally:
            s.close()
    finally:
        sync_journal.stop()
    written = [line for line in journal.read_text().splitlines() if "/consumequeue/" in line]
    assert written == []  # no queue file was cut, zeroed or synced


# A child that fills 200 queues, then writes only to Z and one of them in its last segment,
# flushes (the checkpoint) and dies without closing.
CRASHED_CHILD = textwrap.dedent("""
    import os, sys, time
    import rmqstore
    from rmqstore.checkpoint import RECOVERY_MARGIN_MS
    from tests.engine.test_queue_files import CFG, _fill, _queue_names
    names = _queue_names(200)
    s = rmqstore.open(sys.argv[1], **CFG)
    _fill(s, names)
    s.create_topic("Z", 1)
    for i in range(250):  # into a third 1 MiB segment, its first record older than the margin
        s.put("Z", b"z" * 10_000)
    time.sleep(RECOVERY_MARGIN_MS / 1000 + 0.2)
    s.put("Z", b"late")
    s.put(names[5][0], b"again", queue_id=names[5][1])
    s.flush()  # the checkpoint: the last record's time
    print("segments", len(s.commitlog.files.files), flush=True)
    os._exit(0)
""")


def test_opening_after_a_crash_loads_only_the_queues_written_since_the_checkpoint(tmp_path):
    """Re-dispatch after a crash starts at the checkpoint's segment (CommitLog.recoverAbnormally):
    the 200 idle queues, whose records are all in older segments, stay unloaded."""
    out = subprocess.run([sys.executable, "-c", CRASHED_CHILD, str(tmp_path)], check=True,
                         capture_output=True, text=True, timeout=300).stdout
    assert "segments 3" in out
    names = _queue_names(200)
    with rmqstore.open(tmp_path, **CFG) as s:
        assert sorted(s.consume_queues.by_key) == sorted([("Z", 0), names[5]])
        for i, (topic, qid) in enumerate(names):
            bodies = [b"m%d" % i] + ([b"again"] if i == 5 else [])
            assert [m.body for m in s.get(topic, qid, 0).messages] == bodies
        assert s.max_offset("Z", 0) == 251


def test_a_queue_found_absent_is_not_looked_for_again_until_made(tmp_path, monkeypatch):
    """A broker asks for the offsets of every queue of every topic (lags, topic pages), most
    never written: an absent queue costs one stat, not one per question; made, it is found."""
    looked = []
    real = queue_table.os.path.isdir
    monkeypatch.setattr(queue_table.os.path, "isdir", lambda p: looked.append(p) or real(p))
    with rmqstore.open(tmp_path, **CFG) as s:
        s.create_topic("A", 8)
        for _ in range(3):
            assert [s.max_offset("A", q) for q in range(8)] == [0] * 8
        assert len(looked) == 8
        s.put("A", b"a0", queue_id=0)
        s.put_batch("A", [b"a1", b"a2"], queue_id=1)
        assert [s.max_offset("A", q) for q in range(3)] == [1, 2, 0]
    with rmqstore.open(tmp_path, **CFG) as s:
        assert [s.max_offset("A", q) for q in range(3)] == [1, 2, 0]


# -- operating-system limits mid-creation ------------------------------------------------------
def use_every_descriptor() -> list[int]:
    """Open /dev/null until the process has no descriptor left; returns them."""
    hog: list[int] = []
    while True:
        try:
            hog.append(os.open("/dev/null", os.O_RDONLY))
        except OSError:
            return hog


EMFILE_CHILD = textwrap.dedent("""
    import os, resource, sys
    import rmqstore
    from tests.engine.test_queue_files import use_every_descriptor
    from rmqstore.errors import StoreLimitError
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    # No background threads: pre-allocating the next segment (three descriptors) or a periodic
    # persist may run late under load and take the descriptors freed below for the put.
    s = rmqstore.open(sys.argv[1], commitlog_segment_bytes=1 << 20, index_enable=False,
                      background=False)
    s.put("A", b"a0")
    s.create_topic("B", 1)
    s.create_topic("C", 1)
    hog = use_every_descriptor()
    try:
        s.put("B", b"b0")
        print("no error")
    except StoreLimitError as exc:
        print("refused:", exc)
    print("acked", s.put("A", b"a1").queue_offset)  # a queue that exists needs no descriptor
    os.close(hog.pop())
    os.close(hog.pop())
    os.close(hog.pop())
    print("acked", s.put("C", b"c0").queue_offset)
    sys.stdout.flush()
    os._exit(0)  # with every descriptor in use, as a process that hit the limit would exit
""")


def test_running_out_of_descriptors_refuses_one_put_and_loses_nothing(tmp_path):
    proc = subprocess.run([sys.executable, "-c", EMFILE_CHILD, str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "refused: [Errno 24] cannot open" in out and "ulimit -n" in out, out
    assert out.count("acked") == 2 and "acked 1" in out and "acked 0" in out, out
    with rmqstore.open(tmp_path, commitlog_segment_bytes=1 << 20, index_enable=False) as s:
        assert [m.body for m in s.get("A", 0, 0).messages] == [b"a0", b"a1"]
        assert [m.body for m in s.get("C", 0, 0).messages] == [b"c0"]
        assert s.max_offset("B", 0) == 0
        s.put("B", b"b0")
    with rmqstore.open(tmp_path, commitlog_segment_bytes=1 << 20, index_enable=False) as s:
        assert [m.body for m in s.get("B", 0, 0).messages] == [b"b0"]


DAEMON_EXIT_CHILD = textwrap.dedent("""
    import os, resource, sys
    import rmqstore
    from tests.engine.test_queue_files import use_every_descriptor
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    s = rmqstore.open(sys.argv[1], commitlog_segment_bytes=1 << 20, index_enable=False)
    s.put("A", b"a0")
    hog = use_every_descriptor()
    print("exiting with every descriptor in use")
""")


def test_exiting_with_every_descriptor_in_use_does_not_abort(tmp_path):
    """The store's daemon threads end at interpreter exit through pthread_exit, whose unwinder
    glibc loads on first use: with no descriptor left that load used to abort the process."""
    proc = subprocess.run([sys.executable, "-c", DAEMON_EXIT_CHILD, str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with rmqstore.open(tmp_path, commitlog_segment_bytes=1 << 20, index_enable=False) as s:
        assert [m.body for m in s.get("A", 0, 0).messages] == [b"a0"]


def test_no_space_for_a_new_queue_file_refuses_the_put(tmp_path, monkeypatch):
    with rmqstore.open(tmp_path, **CFG) as s:
        acked = [s.put("A", b"a0")]
        end = s.commitlog.max_offset

        def full(fd, offset, length):
            raise OSError(errno.ENOSPC, "No space left on device")
        with monkeypatch.context() as m:
            m.setattr(os, "posix_fallocate", full)  # the disk is full for every file
            with pytest.raises(DiskFullError):
                s.put("B", b"b0")
            with pytest.raises(DiskFullError):
                s.put_batch("C", [b"c0", b"c1"])
            acked.append(s.put("A", b"a1"))  # room reserved before: no allocation needed
        assert acked[1].commitlog_offset == end  # nothing of B or C went into the log
        assert s.max_offset("B", 0) == s.max_offset("C", 0) == 0
        acked.append(s.put("B", b"b0"))
    with rmqstore.open(tmp_path, **CFG) as s:
        assert [m.body for m in s.get("A", 0, 0).messages] == [b"a0", b"a1"]
        assert [m.body for m in s.get("B", 0, 0).messages] == [b"b0"]
        assert s.max_offset("C", 0) == 0


def test_no_space_to_extend_a_queue_file_refuses_the_put(tmp_path, monkeypatch):
    """The writer stores units only where the file system backed the file first: a full disk
    at the next 1,024 units is a DiskFullError, never a SIGBUS."""
    with rmqstore.open(tmp_path, **CFG) as s:
        for i in range(1024):  # the first RESERVE_BYTES: exactly 1,024 units
            s.put("A", b"%d" % i)
        def full(fd, data, offset):
            raise OSError(errno.ENOSPC, "No space left on device")
        with monkeypatch.context() as m:
            m.setattr(queue_file.os, "pwrite", full)
            with pytest.raises(DiskFullError):
                s.put("A", b"1024")
        assert s.max_offset("A", 0) == 1024
        assert s.put("A", b"1024").queue_offset == 1024
    with rmqstore.open(tmp_path, **CFG) as s:
        assert [m.body for m in s.get("A", 0, 1020, 10).messages] == \
            [b"%d" % i for i in range(1020, 1025)]


def test_a_busy_queue_reserves_more_at_a_time(tmp_path, monkeypatch):
    """A queue is backed as much again as it holds at each reservation (up to 65,536 units):
    20,480 units take 5 stops for a reservation, not 19, and hold at most twice their bytes."""
    stops = []
    real = queue_file._back_with_zeros
    monkeypatch.setattr(queue_file, "_back_with_zeros",
                        lambda fd, start, end, path: stops.append(end) or real(fd, start, end,
                                                                                 path))
    with rmqstore.open(tmp_path, **CFG) as s:
        for _ in range(160):
            s.put_batch("A", [b"x"] * 128, queue_id=0)
        assert s.max_offset("A", 0) == 20_480
    [f] = (tmp_path / "consumequeue" / "A" / "0").iterdir()
    assert stops == [2 * RESERVE_BYTES << k for k in range(5)]
    assert f.stat().st_blocks * 512 <= 2 * 20_480 * 20 + RESERVE_BYTES


def test_a_reservation_after_a_reopen_keeps_the_units_held(tmp_path):
    """A reopened file's reservation starts at its write position, past every unit it holds
    (reserve writes the zeros of what it backs): none of them is lost to the next units."""
    with rmqstore.open(tmp_path, **CFG) as s:
        for i in range(1500):  # past the first reservation
            s.put("A", b"%d" % i)
    with rmqstore.open(tmp_path, **CFG) as s:
        for i in range(1500, 4000):  # reservations of a file whose [0, wrote) holds units
            s.put("A", b"%d" % i)
        got = [m.body for at in range(0, 4000, 32) for m in s.get("A", 0, at, 32).messages]
    assert got == [b"%d" % i for i in range(4000)]


def test_the_kernel_refusing_a_mapping_names_its_limit(tmp_path, monkeypatch):
    with rmqstore.open(tmp_path, **CFG) as s:
        s.put("A", b"a0")

        def refused(self, fd, size):
            raise OSError(errno.ENOMEM, "Cannot allocate memory")
        with monkeypatch.context() as m:
            m.setattr(_native.Mapping, "__init__", refused)
            with pytest.raises(StoreLimitError, match="vm.max_map_count"):
                s.put("B", b"b0")
        assert s.put("A", b"a1").queue_offset == 1
        assert s.put("B", b"b0").queue_offset == 0
    with rmqstore.open(tmp_path, **CFG) as s:  # loading a queue maps its file too
        with monkeypatch.context() as m:
            m.setattr(_native.Mapping, "__init__", refused)
            with pytest.raises(StoreLimitError, match="vm.max_map_count"):
                s.get("A", 0, 0)
        assert [m.body for m in s.get("A", 0, 0).messages] == [b"a0", b"a1"]
        assert [m.body for m in s.get("B", 0, 0).messages] == [b"b0"]


def test_a_new_queue_file_is_made_without_the_put_lock(tmp_path, monkeypatch):
    """A queue's first file (directories, a sparse file, its first page) costs milliseconds on
    a busy disk: it is made before the put lock, so that other producers do not wait."""
    made: list[tuple[str, bool]] = []
    with rmqstore.open(tmp_path, **CFG) as s:
        for topic in "ABCD":
            s.create_topic(topic, 4)
        real = queue_file._new_queue_file

        def spy(path, tmp, size, place):
            made.append((path.parent.parent.name, s._put_lock.locked()))
            return real(path, tmp, size, place)
        monkeypatch.setattr(queue_file, "_new_queue_file", spy)
        s.put("A", b"a0")  # the queue the round robin gives it
        s.put("B", b"b0", queue_id=2)
        s.put_batch("C", [b"c0", b"c1"], queue_id=1)
        s.put_encoded_batch("D", encode_batch([(b"d0", 0, "")]), queue_id=3)
    assert made == [("A", False), ("B", False), ("C", False), ("D", False)]
    with rmqstore.open(tmp_path, **CFG) as s:
        assert [m.body for m in s.get("C", 1, 0).messages] == [b"c0", b"c1"]
        assert [m.body for m in s.get("D", 3, 0).messages] == [b"d0"]


def _descriptors_into(root) -> list[str]:
    """What this process's descriptors under root point at (other tests' threads in this
    process may open and close descriptors of their own meanwhile: those are not counted)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except FileNotFoundError:  # closed while listed
            continue
        if target.startswith(str(root)):
            found.append(target)
    return sorted(found)


def test_queue_files_never_hold_a_descriptor(tmp_path):
    with rmqstore.open(tmp_path, **CFG) as s:
        s.create_topic("First", 1)  # the topics' journal
        s.put("First", b"x")  # the commit log's segment
        opened = _descriptors_into(tmp_path)
        _fill(s, _queue_names(100))
        assert _descriptors_into(tmp_path) == opened
        assert not [t for t in opened if "/consumequeue/" in t]
    assert _descriptors_into(tmp_path) == []


def test_a_timed_flush_syncs_only_queues_with_pages_to_sync(tmp_path):
    """FlushConsumeQueueService: a queue file with fewer than flushConsumeQueueLeastPages
    dirty pages waits for the thorough pass, and only that pass moves the checkpoint (each
    sync of a page made the next unit written to it fault again: a fault per put when
    thousands of queues take turns)."""
    journal = tmp_path / "journal"
    with rmqstore.open(tmp_path / "s", consumequeue_flush_thorough_interval_ms=600_000,
                       **CFG) as s:
        s.put("Few", b"f")
        for i in range(500):  # 10,000 bytes of units: two whole pages and a bit
            s.put("Many", b"%d" % i)
        logics = s.checkpoint.logics_ts
        sync_journal.start(journal)
        try:
            s._flush.flush_queues_timed()
            synced = journal.read_text()
            assert "/Many/" in synced and "/Few/" not in synced
            assert s.checkpoint.logics_ts == logics
            s.flush_queues()
            assert "/Few/" in journal.read_text()
            assert s.checkpoint.logics_ts > logics
        finally:
            sync_journal.stop()


def test_a_queue_syncs_its_files_oldest_first(tmp_path):
    """Recovery takes a queue's units as synced in order (it scans from the last file whose
    first unit is there): a newer file durable before an older one leaves a hole of zeros in
    the queue after a power loss."""
    journal = tmp_path / "journal"
    with rmqstore.open(tmp_path / "s", **dict(CFG, consumequeue_units=16)) as s:
        for i in range(40):  # three files: 16 + 16 + 8 units
            s.put("T", b"%d" % i)
        sync_journal.start(journal)
        try:
            s.flush_queues()
        finally:
            sync_journal.stop()
    synced = [line.split('"path": "')[1].split('"')[0].rsplit("/", 1)[1]
              for line in journal.read_text().splitlines() if "/consumequeue/T/" in line]
    assert synced == sorted(synced) and len(synced) == 3


def test_every_file_keeps_its_write_position_once_the_writer_moves_on(tmp_path):
    """While attached, a file's write position lives in its queue's native write state
    (rmq_queue.cq_cell); each file the writer leaves (rolled past, or unmapped by the clock)
    takes its position back, so every file still reads whole, and the last reopens where it
    ended."""
    with rmqstore.open(tmp_path, consumequeue_units=16, consumequeue_mapped_files=2,
                       **CFG) as s:
        s.create_topic("A", 2)
        for i in range(100):  # 7 files of queue 0; queue 1 takes the clock's hand round
            s.put("A", b"a%d" % i, queue_id=0)
            s.put("A", b"b%d" % i, queue_id=1)
        files = s.consume_queues.get("A", 0).files.files  # get(): staged units written
        assert [f.wrote for f in files] == [320] * 6 + [80]
        got = s.get_bodies("A", 0, 0, 200)
        assert [bytes(b) for b in got] == [b"a%d" % i for i in range(100)]
    with rmqstore.open(tmp_path, consumequeue_units=16, **CFG) as s:
        assert s.put("A", b"a100", queue_id=0).queue_offset == 100
        assert [m.body for m in s.get("A", 0, 96, 8).messages] == \
            [b"a96", b"a97", b"a98", b"a99", b"a100"]
