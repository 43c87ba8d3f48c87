"""A replica store (replica=True) fed with its master's raw bytes, as rmqstore.ha feeds it:
byte identity, dispatch as the master's puts wrote it, whole records only, refusals."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import rmqstore
from rmqstore.delay_levels import SCHEDULE_TOPIC, ScheduleService
from tests.log_digest import log_digest

SEG = 64 * 1024
CFG = dict(commitlog_segment_bytes=SEG, consumequeue_units=64, index_slots=256,
           index_entries=2048, background=False)
LADDER = "1s 2s"


Stores = tuple[rmqstore.MessageStore, rmqstore.MessageStore]


@contextmanager
def open_pair(tmp_path, **config) -> Iterator[Stores]:
    """A master and its replica (CFG, with ``config`` over it), both closed at the end."""
    config = {**CFG, **config}
    master = rmqstore.open(tmp_path / "m", **config)
    replica = rmqstore.open(tmp_path / "r", replica=True, delay_levels=LADDER, **config)
    try:
        yield master, replica
    finally:
        master.close()
        replica.close()


def mixed_traffic(store, n: int = 600) -> None:
    """Single puts with tags and keys, batches, wire-encoded batches and delayed messages in
    several topics, enough to fill several segments (each closed by a BLANK)."""
    from rmqstore.protocol.message import encode_batch, encode_properties

    sched = ScheduleService(store, LADDER)
    store.create_topic("E", 2)
    for i in range(n):
        store.put(f"T{i % 3}", os.urandom(20 + (i * 37) % 700), tags=f"tag{i % 4}",
                  keys=[f"k{i}", f"shared{i % 5}"], properties={"UNIQ_KEY": f"U{i:08d}"})
        if i % 50 == 0:
            store.put_batch("B", [b"b%d" % j * 30 for j in range(8)], tags="bt", keys=["bk"])
            entries = [(b"e%d" % j, 0, encode_properties({"TAGS": f"et{j % 2}",
                                                          "UNIQ_KEY": f"E{i}-{j}"}))
                       for j in range(5)]
            store.put_encoded_batch("E", encode_batch(entries), queue_id=1)
            sched.put_delayed("D", b"later %d" % i, 1 + i % 3, queue_id=0)
    sched.close()


def stream(master, replica, frame: int, start: int | None = None) -> None:
    """What an HA link does: frames of at most ``frame`` bytes from the replica's end; a
    record a frame cuts waits for the next frame."""
    offset = replica.replica.end if start is None else start
    pending = bytearray()
    while offset < master.commitlog.max_offset:
        chunk = master.read_log(offset, frame)
        assert chunk, offset
        pending += chunk
        at = offset + len(chunk) - len(pending)
        del pending[:replica.replica.append(at, pending)]
        offset += len(chunk)
    assert not pending
    while replica.replica.pending():
        replica.replica.dispatch()


def units(store) -> dict[tuple[str, int], list[tuple[int, int, int]]]:
    out = {}
    for topic, qid in store.topics_and_queues():
        cq = store.consume_queues.get(topic, qid)
        out[(topic, qid)] = [cq.unit(i) for i in range(cq.min_offset, cq.max_offset)]
    return out


def test_a_replica_refuses_every_put(tmp_path) -> None:
    from rmqstore.protocol.message import encode_batch

    with rmqstore.open(tmp_path, replica=True, **CFG) as replica:
        with pytest.raises(rmqstore.ReplicaStoreError):
            replica.put("T", b"x")
        with pytest.raises(rmqstore.ReplicaStoreError):
            replica.put("T", b"x", queue_id=0, tags="a")
        with pytest.raises(rmqstore.ReplicaStoreError):
            replica.put_async("T", b"x")
        with pytest.raises(rmqstore.ReplicaStoreError):
            replica.put_batch("T", [b"x"], queue_id=0)
        with pytest.raises(rmqstore.ReplicaStoreError):
            replica.put_encoded_batch("T", encode_batch([(b"x", 0, b"")]), queue_id=0)
        assert replica.commitlog.max_offset == 0
    with rmqstore.open(tmp_path / "m", **CFG) as master, pytest.raises(rmqstore.ReplicaStoreError):
        master.replica  # noqa: B018 - a master has no replica side


@pytest.mark.parametrize("frame", [32 * 1024, 1000, 97])
def test_the_replica_is_its_masters_copy(tmp_path, frame: int) -> None:
    with open_pair(tmp_path) as (master, replica):
        mixed_traffic(master, 300 if frame == 97 else 600)
        assert len(master.commitlog.files.files) >= 3  # BLANK-closed segments included
        stream(master, replica, frame)
        end = master.commitlog.max_offset
        assert replica.replica.end == replica.replica.dispatched == end
        assert log_digest(replica, 0) == log_digest(master, 0)
        mine, theirs = units(replica), units(master)
        assert mine.keys() == theirs.keys()
        for key in theirs:  # a delayed unit's code too: its store time + the level's delay
            assert mine[key] == theirs[key], key
        for topic, qid in master.topics_and_queues():
            a, b = master.get(topic, qid, 0, 100), replica.get(topic, qid, 0, 100)
            assert (a.status, a.min_offset, a.max_offset, a.next_offset) == \
                (b.status, b.min_offset, b.max_offset, b.next_offset)
            assert [m.body for m in a.messages] == [m.body for m in b.messages]
        for topic, key in [("T1", "k7"), ("T2", "shared2"), ("T0", "U00000003"), ("E", "E50-3"),
                           ("B", "bk")]:
            want = sorted(m.commitlog_offset for m in master.query(topic, key, max_count=64))
            assert want, (topic, key)
            assert sorted(m.commitlog_offset for m in replica.query(topic, key,
                                                                    max_count=64)) == want


def index_bytes(store) -> list[bytes]:
    return [bytes(f.seg.view) for f in store.index.files]


@pytest.mark.parametrize("frame", [32 * 1024, 97])
def test_the_replicas_index_files_are_its_masters_byte_for_byte(tmp_path, frame: int) -> None:
    """The native dispatch puts a record's keys while it dispatches the next one (their hash
    slots prefetched): each key still goes in the master's order, so every entry, chain link,
    slot and header field is the master's, across full files and rolls."""
    with open_pair(tmp_path, index_entries=400) as (master, replica):
        mixed_traffic(master, 300 if frame == 97 else 600)
        for i in range(30):  # more keys than a record's keys wait for: put at once
            master.put("M", b"many %d" % i, keys=[f"m{i}-{j}" for j in range(11)],
                       properties={"UNIQ_KEY": f"M{i:04d}"})
        stream(master, replica, frame)
        theirs = index_bytes(master)
        assert len(theirs) >= 3  # a file filled up and the index rolled
        assert index_bytes(replica) == theirs


def test_a_delayed_unit_holds_its_store_time_plus_the_delay_on_both_sides(tmp_path) -> None:
    """computeDeliverTimestamp(level, storeTimestamp): the master's put stamps a delayed
    message's unit as the replica's dispatch does, from the record's store time and the
    scheduler's ladder (not the store's default one), whatever the scheduler's clock says."""
    with open_pair(tmp_path) as (master, replica):
        sched = ScheduleService(master, LADDER, clock=lambda: 5)
        for i in range(20):
            sched.put_delayed("D", b"later %d" % i, 1 + i % 2, queue_id=0)
        sched.close()
        stream(master, replica, 1000)
        for qid, delay in enumerate((1000, 2000)):
            stamps = [m.store_timestamp for m in master.get(SCHEDULE_TOPIC, qid, 0, 64).messages]
            codes = [code for _, _, code in units(master)[SCHEDULE_TOPIC, qid]]
            assert len(codes) == 10 and codes == [ts + delay for ts in stamps]
            assert units(replica)[SCHEDULE_TOPIC, qid] == units(master)[SCHEDULE_TOPIC, qid]


def test_a_property_named_twice_counts_with_its_last_value(tmp_path) -> None:
    """A batch entry naming TAGS, UNIQ_KEY or KEYS twice: the master's put keeps the last
    value (as Java's string2messageProperties fills a HashMap); so does the replica's
    dispatch, which finds them all in one pass."""
    from rmqstore.protocol.message import encode_batch

    twice = (b"TAGS\x01first\x02KEYS\x01k-first\x02UNIQ_KEY\x01U-first\x02"
             b"TAGS\x01last\x02KEYS\x01k-last\x02UNIQ_KEY\x01U-last\x02")
    with open_pair(tmp_path) as (master, replica):
        master.put_encoded_batch("Twice", encode_batch([(b"x", 0, twice)]), queue_id=0)
        stream(master, replica, 4096)
        assert units(replica)[("Twice", 0)] == units(master)[("Twice", 0)]
        for key in ("k-last", "U-last"):
            assert [m.body for m in replica.query("Twice", key, max_count=4)] == [b"x"], key


def test_many_queues_each_get_their_own_units(tmp_path) -> None:
    """Enough queues that the native dispatch's queue map grows and its probes collide: every
    unit still lands in its own queue."""
    with open_pair(tmp_path) as (master, replica):
        master.create_topic("Wide", 300)
        master.create_topic("Wide2", 300)
        for n in range(3):
            for q in range(300):
                for topic in ("Wide", "Wide2"):
                    master.put(topic, b"%s %d %d" % (topic.encode(), q, n), queue_id=q)
        stream(master, replica, 32 * 1024)
        assert units(replica) == units(master)


def vm_flags(path) -> set[str]:
    """The VmFlags of this process's mapping of ``path`` (/proc/self/smaps)."""
    lines = Path("/proc/self/smaps").read_text().splitlines()
    for i, line in enumerate(lines):
        if line.endswith(" " + str(path)):
            flags = next(x for x in lines[i + 1:] if x.startswith("VmFlags:"))
            return set(flags.split()[1:])
    raise AssertionError(f"{path} is not mapped")


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="Linux's smaps")
def test_a_replica_reads_ahead_only_in_written_out_segments(tmp_path) -> None:
    """No readahead ("rr", MADV_RANDOM) on the segment a replica appends to with pwrite (it
    would allocate and zero the pages ahead of its appends), the kernel's default again once
    the segment is written out; a master's segments keep the default."""
    with open_pair(tmp_path) as (master, replica):
        mixed_traffic(master, 600)
        stream(master, replica, 32 * 1024)
        *old, last = replica.commitlog.files.files
        assert old and "rr" in vm_flags(last.path)
        assert all("rr" not in vm_flags(seg.path) for seg in old)
        assert all("rr" not in vm_flags(seg.path) for seg in master.commitlog.files.files)


def test_a_cut_record_waits_for_the_rest(tmp_path) -> None:
    with open_pair(tmp_path) as (master, replica):
        master.put("T", b"a" * 300)
        second = master.put("T", b"b" * 300).commitlog_offset
        data = master.read_log(0, 1 << 20)
        # record 1 whole and one byte of record 2: only record 1 goes in
        assert replica.replica.append(0, data[:second + 1]) == second
        for cut in range(second + 1, len(data)):  # record 2 cut at every byte: nothing
            assert replica.replica.append(second, data[second:cut]) == 0
        assert replica.replica.end == second
        replica.replica.dispatch()
        assert replica.max_offset("T", 0) == 1
        assert replica.replica.append(second, data[second:]) == len(data) - second
        replica.replica.dispatch()
        assert replica.replica.end == master.commitlog.max_offset
        assert replica.max_offset("T", 0) == 2


def corrupt_at(data: bytearray, pos: int) -> bytearray:
    out = bytearray(data)
    out[pos] ^= 0x40
    return out


@pytest.mark.parametrize("what", ["body", "magic", "size", "physical offset", "topic",
                                  "properties"])
def test_a_bad_record_is_refused_after_the_good_ones(tmp_path, what: str) -> None:
    with open_pair(tmp_path) as (master, replica):
        puts = [master.put("T", b"%d" % i * 50, tags="x") for i in range(5)]
        data = master.read_log(0, 1 << 20)
        third = puts[2].commitlog_offset
        size = puts[3].commitlog_offset - third
        # the record ends ... body, 1 byte topic length, "T", 2 bytes properties length,
        # "TAGS\x01x\x02"
        end = third + size
        where = {"body": end - 30, "magic": third + 5, "size": third + 3,
                 "physical offset": third + 35, "topic": end - 10, "properties": end - 1}[what]
        with pytest.raises(rmqstore.ReplicaDataError) as info:
            replica.replica.append(0, corrupt_at(data, where))
        assert info.value.appended == third
        assert replica.replica.end == third  # the good records went in, nothing after them
        replica.replica.dispatch()
        assert replica.max_offset("T", 0) == 2
        # the same bytes, sound, carry on from there: no gap, nothing twice
        assert replica.replica.append(third, data[third:]) == len(data) - third
        replica.replica.dispatch()
        assert [m.body for m in replica.get("T", 0, 0).messages] == [b"%d" % i * 50
                                                                     for i in range(5)]


def test_bytes_must_start_where_the_replica_ends(tmp_path) -> None:
    with open_pair(tmp_path) as (master, replica):
        puts = [master.put("T", b"x" * 100) for _ in range(3)]
        data = master.read_log(0, 1 << 20)
        with pytest.raises(rmqstore.ReplicaDataError, match="start at offset 7"):
            replica.replica.append(7, data)  # an empty replica takes segment starts only
        second = puts[1].commitlog_offset
        replica.replica.append(0, data[:second])
        for wrong in (0, second - 1, second + 1, puts[2].commitlog_offset):
            with pytest.raises(rmqstore.ReplicaDataError, match=f"ends at {second}"):
                replica.replica.append(wrong, data[wrong:])
        assert replica.replica.end == second


def test_an_empty_replica_starts_at_the_masters_last_segment(tmp_path) -> None:
    """HAConnection sends an empty slave the master's last segment, not its whole log: the
    replica's log then starts there, and its queues start at the queue offsets found there."""
    with open_pair(tmp_path) as (master, replica):
        mixed_traffic(master, 400)
        start = master.commitlog.max_offset // SEG * SEG
        assert start > 0
        stream(master, replica, 32 * 1024, start=start)
        assert replica.commitlog.min_offset == start
        assert log_digest(replica, start) == log_digest(master, start)
        cq_m, cq_r = master.consume_queues.get("T1", 0), replica.consume_queues.get("T1", 0)
        assert cq_r.max_offset == cq_m.max_offset and cq_r.min_offset > 0
        first = replica.get("T1", 0, cq_r.min_offset, 1).messages[0]
        assert first.commitlog_offset >= start
        assert master.get("T1", 0, cq_r.min_offset, 1).messages[0].body == first.body
        assert replica.get("T1", 0, 0, 1).status.name == "OFFSET_TOO_SMALL"


def test_a_replica_a_power_loss_emptied_starts_at_the_masters_last_segment(tmp_path) -> None:
    """A power loss can leave a replica its segment file and none of its bytes: its log ends
    at 0, so its master feeds it from its last segment's start, which the empty file must not
    refuse (the slave would reconnect and be refused for ever)."""
    master = rmqstore.open(tmp_path / "m", **CFG)
    replica = rmqstore.open(tmp_path / "r", replica=True, delay_levels=LADDER, **CFG)
    try:
        mixed_traffic(master, 400)
        assert replica.replica.append(0, master.read_log(0, 4096)) > 0  # not yet synced
        replica.close()
        for seg in (tmp_path / "r" / "commitlog").iterdir():  # the power loss
            seg.write_bytes(bytes(seg.stat().st_size))
        replica = rmqstore.open(tmp_path / "r", replica=True, delay_levels=LADDER, **CFG)
        assert replica.replica.end == 0 and list((tmp_path / "r" / "commitlog").iterdir())
        start = master.commitlog.max_offset // SEG * SEG
        stream(master, replica, 32 * 1024, start=start)
        assert replica.commitlog.min_offset == start
        assert log_digest(replica, start) == log_digest(master, start)
    finally:
        master.close()
        replica.close()


def test_a_reopened_replica_resumes_at_its_end(tmp_path) -> None:
    master = rmqstore.open(tmp_path / "m", **CFG)
    replica = rmqstore.open(tmp_path / "r", replica=True, delay_levels=LADDER, **CFG)
    try:
        mixed_traffic(master, 200)
        half = master.commitlog.max_offset
        stream(master, replica, 4096)
        replica.close()
        replica = rmqstore.open(tmp_path / "r", replica=True, delay_levels=LADDER, **CFG)
        assert replica.replica.end == replica.replica.dispatched == half
        for i in range(100):
            master.put("T0", b"more %d" % i, keys=[f"m{i}"])
        stream(master, replica, 4096)
        assert log_digest(replica, 0) == log_digest(master, 0)
        assert replica.max_offset("T0", 0) == master.max_offset("T0", 0)
        assert [m.body for m in replica.query("T0", "m99")] == [b"more 99"]
    finally:
        master.close()
        replica.close()


def test_read_log_stays_in_its_segment(tmp_path) -> None:
    with rmqstore.open(tmp_path, **CFG) as master:
        mixed_traffic(master, 300)
        first = master.commitlog.files.files[0]
        assert first.wrote == SEG  # closed by a BLANK, which read_log hands out too
        tail = master.read_log(SEG - 100, 1 << 20)
        assert len(tail) == 100
        assert bytes(tail) == bytes(first.view[SEG - 100:SEG])
        frame = master.read_log(SEG, 500, head_room=12)
        assert len(frame) == 512 and bytes(frame[12:]) == bytes(master.read_log(SEG, 500))
        end = master.commitlog.max_offset
        assert master.read_log(end, 100) == bytearray()
        assert master.read_log(end + 1, 100) is None
        assert master.holds_boundary(0) and master.holds_boundary(SEG) and \
            master.holds_boundary(end)
        assert not master.holds_boundary(1) and not master.holds_boundary(end + 1)
