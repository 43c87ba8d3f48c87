"""A store whose role moves in place (controller mode): a master becomes a replica, its
divergent tail is cut (commit log, consume queues and index together), it follows its new
master byte for byte and becomes master again; a replica's reads stop at its confirm offset."""

from __future__ import annotations

import os

import pytest

import rmqstore
from tests.engine.test_replica import CFG, stream, units
from tests.log_digest import log_digest


def put_some(store, tag: str, n: int, start: int = 0) -> list[int]:
    """n messages over two queues of T with keys tag<i>; their commit-log offsets."""
    store.create_topic("T", 2)
    return [store.put("T", os.urandom(40 + i * 13 % 300), queue_id=i % 2, tags=tag,
                      keys=[f"{tag}{i}"]).commitlog_offset for i in range(start, start + n)]


def test_an_old_master_drops_its_divergent_tail_and_follows(tmp_path) -> None:
    old = rmqstore.open(tmp_path / "old", **CFG)
    new = rmqstore.open(tmp_path / "new", replica=True, **CFG)
    try:
        offsets = put_some(old, "m", 300)  # several segments
        stream(old, new, 4096)  # the new master holds m0..m299
        common = old.commitlog.max_offset
        put_some(old, "m", 40, start=300)  # m300..m339: only the old master has them
        assert old.query("T", "m320") and old.max_offset("T", 0) == 170

        new.become_master()
        put_some(new, "n", 25)
        old.become_replica()
        with pytest.raises(rmqstore.ReplicaStoreError):
            old.put("T", b"x")
        old.truncate(common)
        assert old.commitlog.max_offset == common
        assert old.max_offset("T", 0) == 150 and old.max_offset("T", 1) == 150
        assert old.query("T", "m320") == [] and old.query("T", "m299")
        assert old.get_by_commitlog_offset(common) is None
        stream(new, old, 3000, start=common)

        assert log_digest(old, 0) == log_digest(new, 0)
        assert units(old) == units(new)
        assert [m.keys for m in old.query("T", "n7")] == [["n7"]]
        assert old.query("T", "m320") == []
        old.become_master()
        more = old.put("T", b"after", queue_id=0, keys=["again"])
        assert more.commitlog_offset == new.commitlog.max_offset
        assert offsets[0] == 0
    finally:
        old.close()
        new.close()
    with rmqstore.open(tmp_path / "old", **CFG) as reopened:  # recovery agrees
        assert reopened.query("T", "again") and reopened.query("T", "m320") == []
        assert reopened.max_offset("T", 0) == 150 + 13 + 1


def test_truncating_inside_one_index_file_keeps_older_chains(tmp_path) -> None:
    cfg = dict(CFG, index_entries=100_000, commitlog_segment_bytes=1 << 20)
    with rmqstore.open(tmp_path / "s", **cfg) as store:
        store.create_topic("T", 1)
        cut = None
        for i in range(200):
            r = store.put("T", b"x" * 50, queue_id=0, keys=[f"k{i % 7}", f"u{i}"])
            if i == 150:
                cut = r.commitlog_offset
        store.become_replica()
        store.truncate(cut)
        # every key's chain now starts at its newest entry below the cut
        for k in range(7):
            got = sorted(m.commitlog_offset for m in store.query("T", f"k{k}", max_count=64))
            assert got and got[-1] < cut and len(got) == len([i for i in range(150)
                                                              if i % 7 == k])
        assert store.query("T", "u160") == []
        store.become_master()
        again = store.put("T", b"y" * 50, queue_id=0, keys=["u160"])
        assert [m.commitlog_offset for m in store.query("T", "u160")] == \
            [again.commitlog_offset]


def test_truncating_reaches_queues_not_loaded_since_the_open(tmp_path) -> None:
    """A reopen loads only the queues written in the checkpoint's segment: the divergent
    tail's units in a queue written only in an older segment go with the tail all the same."""
    with rmqstore.open(tmp_path / "s", **CFG) as store:
        store.create_topic("T", 2)
        store.put("T", b"a", queue_id=0)
        cut = store.put("T", b"b", queue_id=1).commitlog_offset
        store.put("T", b"c", queue_id=1)
        while store.commitlog.max_offset < 2 * CFG["commitlog_segment_bytes"]:  # a later one
            store.put("T", b"x" * 500, queue_id=0)
    with rmqstore.open(tmp_path / "s", **CFG) as store:
        assert ("T", 1) not in {(c.topic, c.queue_id) for c in store.consume_queues.loaded()}
        store.become_replica()
        store.truncate(cut)
        assert (store.max_offset("T", 0), store.max_offset("T", 1)) == (1, 0)
    with rmqstore.open(tmp_path / "s", **CFG) as store:  # and so it stays
        assert (store.max_offset("T", 0), store.max_offset("T", 1)) == (1, 0)


def test_reads_stop_at_the_confirm_offset(tmp_path) -> None:
    with rmqstore.open(tmp_path / "m", **CFG) as master, \
            rmqstore.open(tmp_path / "r", replica=True, **CFG) as replica:
        offsets = put_some(master, "m", 10)
        master.set_confirm_offset(offsets[6])  # m0..m5 held by every in-sync replica
        got = master.get("T", 0, 0, 32)
        assert [m.keys for m in got.messages] == [["m0"], ["m2"], ["m4"]]
        assert got.next_offset == 3
        master.set_confirm_offset(None)
        assert len(master.get("T", 0, 0, 32).messages) == 5

        replica.set_confirm_offset(offsets[4])  # the master said so in its transfer
        stream(master, replica, 4096)  # dispatch stops there
        assert replica.max_offset("T", 0) == 2 and replica.max_offset("T", 1) == 2
        replica.set_confirm_offset(master.commitlog.max_offset)
        while replica.replica.pending():
            replica.replica.dispatch()
        assert replica.max_offset("T", 0) == 5
