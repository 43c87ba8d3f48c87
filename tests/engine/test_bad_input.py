"""Bad input gets a specific error and loses nothing."""

from __future__ import annotations

import pytest

import rmqstore
from rmqstore.protocol import fastjson
from rmqstore.protocol.message import encode_batch
from tests.prerequisites import missing


@pytest.mark.parametrize("topic", ["", "a/b", "..", "../etc", "a b", "a.b", "t" * 128, "тема",
                                   "a\x00b", "a\\b"])
def test_invalid_topics_are_refused_and_touch_no_path(tmp_path, small_config, topic):
    with rmqstore.open(tmp_path / "s", **small_config) as s:
        s.put("ok", b"kept")
        with pytest.raises(rmqstore.InvalidTopicError):
            s.put(topic, b"x")
        with pytest.raises(rmqstore.InvalidTopicError):
            s.put_batch(topic, [b"x"])
        assert s.get("ok", 0, 0).messages[0].body == b"kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]
    assert sorted(p.name for p in (tmp_path / "s" / "consumequeue").iterdir()) == ["ok"]


def test_longest_valid_topic_and_rocketmq_alphabet(tmp_path, small_config):
    with rmqstore.open(tmp_path, **small_config) as s:
        for topic in ("t" * 127, "%RETRY%group-1", "a|b_c-D9"):
            r = s.put(topic, b"x")
            assert s.get(topic, 0, r.queue_offset).messages[0].topic == topic


def test_oversized_body_writes_nothing(tmp_path, small_config):
    cfg = dict(small_config, commitlog_segment_bytes=65536, max_message_size=1000)
    with rmqstore.open(tmp_path, **cfg) as s:
        s.put("T", b"a" * 1000)
        end = s.commitlog.max_offset
        with pytest.raises(rmqstore.MessageTooLargeError):
            s.put("T", b"a" * 1001)
        with pytest.raises(rmqstore.MessageTooLargeError):
            s.put_batch("T", [b"ok", b"a" * 1001])
        assert s.commitlog.max_offset == end
        assert s.max_offset("T", 0) == 1


def test_body_larger_than_a_segment_is_refused(tmp_path, small_config):
    with rmqstore.open(tmp_path, **dict(small_config, compression=None)) as s:
        s.put("T", b"a")
        with pytest.raises(rmqstore.MessageTooLargeError):
            s.put("T", b"a" * 5000)
        with pytest.raises(rmqstore.MessageTooLargeError):
            s.put_batch("T", [b"a" * 5000])
        assert s.max_offset("T", 0) == 1
        assert s.put("T", b"b").queue_offset == 1


@pytest.mark.parametrize("props", [{"a\x01": "v"}, {"a": "v\x02"}, {"": "v"}, {"k": "x" * 40000}])
def test_bad_properties_are_refused(tmp_path, small_config, props):
    with rmqstore.open(tmp_path, **small_config) as s:
        with pytest.raises(rmqstore.InvalidPropertyError):
            s.put("T", b"x", properties=props)
        assert s.max_offset("T", 0) == 0


def test_bad_tags_and_keys_are_refused(tmp_path, small_config):
    with rmqstore.open(tmp_path, **small_config) as s:
        with pytest.raises(rmqstore.InvalidPropertyError):
            s.put("T", b"x", tags="a\x02b")
        with pytest.raises(rmqstore.InvalidPropertyError):
            s.put("T", b"x", keys=["k\x01"])


def test_second_process_gets_a_lock_error(tmp_path, small_config):
    import subprocess
    import sys
    with rmqstore.open(tmp_path, **small_config) as s:
        s.put("T", b"x")
        code = ("import rmqstore, sys\n"
                "try:\n    rmqstore.open(sys.argv[1])\nexcept rmqstore.StoreLockedError as e:\n"
                "    print('locked:', e); sys.exit(3)\n")
        res = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                             text=True, timeout=60)
        assert res.returncode == 3, res.stderr
        assert "another process" in res.stdout
        assert s.get("T", 0, 0).messages[0].body == b"x"


def test_closed_store_refuses_writes(tmp_path, small_config):
    s = rmqstore.open(tmp_path, **small_config)
    s.close()
    with pytest.raises(rmqstore.StoreClosedError):
        s.put("T", b"x")
    s.close()  # idempotent


def test_disk_over_full_ratio_refuses_writes_and_keeps_data(tmp_path, small_config):
    """The periodic disk check (run by the housekeeper) refuses writes above disk_full_ratio;
    a ratio below this disk's real usage makes it trip."""
    with rmqstore.open(tmp_path, **dict(small_config, disk_full_ratio=1e-9)) as s:
        s.put("T", b"before")
        s._check_disk()
        with pytest.raises(rmqstore.DiskFullError):
            s.put("T", b"x")
        with pytest.raises(rmqstore.DiskFullError):
            s.put("T", b"x", tags="a")
        assert [m.body for m in s.get("T", 0, 0).messages] == [b"before"]
    with rmqstore.open(tmp_path, **small_config) as s:
        s.put("T", b"after")
        assert [m.body for m in s.get("T", 0, 0).messages] == [b"before", b"after"]


def test_invalid_config_is_refused(tmp_path):
    with pytest.raises(ValueError):
        rmqstore.open(tmp_path, flush="sometimes")
    with pytest.raises(TypeError):
        rmqstore.open(tmp_path, no_such_option=1)


@pytest.fixture
def tiny_disk(tmp_path):
    """A 512 KiB tmpfs, so the disk really fills up (needs root, as CI runs; skipped where
    mounting is not allowed, except in CI)."""
    import subprocess
    mnt = tmp_path / "disk"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mnt)],
                         capture_output=True)
    if res.returncode != 0:
        missing(f"cannot mount a tmpfs here: {res.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_full_disk_gives_disk_full_error_and_keeps_acknowledged_data(tiny_disk, small_config):
    cfg = dict(small_config, commitlog_segment_bytes=65536, flush="sync")
    acked = []
    s = rmqstore.open(tiny_disk / "store", **cfg)
    with pytest.raises(rmqstore.DiskFullError):
        for i in range(100_000):
            s.put("T", b"%06d" % i + b"x" * 500)
            acked.append(i)
    assert len(acked) > 100
    got = s.get("T", 0, 0, len(acked) + 10).messages
    assert [m.body[:6] for m in got] == [b"%06d" % i for i in acked]
    s.close()
    with rmqstore.open(tiny_disk / "store", **cfg) as s2:
        got = []
        off = 0
        while True:
            res = s2.get("T", 0, off, 1000)
            if not res.messages:
                break
            got += res.messages
            off = res.next_offset
        assert [m.body[:6] for m in got] == [b"%06d" % i for i in acked]


@pytest.mark.parametrize("queue_id", [-1, 1, 4, 1 << 40, True, "0"])
def test_a_queue_outside_the_topic_is_refused_and_nothing_is_lost(tmp_path, small_config,
                                                                  queue_id):
    """A put to queue -1 used to be acknowledged and then lost at the next open (only queue
    directories named by digits are loaded); every put path refuses a queue the topic does
    not have, before writing anything."""
    with rmqstore.open(tmp_path, **small_config) as s:
        kept = s.put("T", b"kept")
        end = s.commitlog.max_offset
        for put in (lambda: s.put("T", b"x", queue_id=queue_id),
                    lambda: s.put_async("T", b"x", queue_id=queue_id, tags="a"),
                    lambda: s.put_batch("T", [b"x"], queue_id=queue_id),
                    lambda: s.put_encoded_batch("T", encode_batch([(b"x", 0, "")]),
                                                queue_id=queue_id)):
            with pytest.raises(rmqstore.InvalidQueueError):
                put()
        assert s.commitlog.max_offset == end
        assert [q for t, q in s.topics_and_queues() if t == "T"] == [0]
    with rmqstore.open(tmp_path, **small_config) as s:
        assert s.get("T", 0, 0).messages[0].commitlog_offset == kept.commitlog_offset


def test_a_topic_made_with_more_queues_takes_them_across_a_reopen(tmp_path, small_config):
    with rmqstore.open(tmp_path, **small_config) as s:
        s.create_topic("T", 4)
        puts = [s.put("T", b"q%d" % q, queue_id=q) for q in range(4)]
        with pytest.raises(rmqstore.InvalidQueueError):
            s.put("T", b"x", queue_id=4)
    with rmqstore.open(tmp_path, **small_config) as s:
        assert [s.get("T", q, 0).messages[0].body for q in range(4)] == [b"q0", b"q1", b"q2",
                                                                        b"q3"]
        assert all(p.queue_offset == 0 for p in puts)


def test_a_batch_over_max_message_size_in_all_is_refused(tmp_path, small_config):
    """Each entry fits, the batch does not: refused whole, as DefaultMessageStore.putMessages
    (a probe stored 2 x 3 MiB under a 4 MiB limit)."""
    cfg = dict(small_config, commitlog_segment_bytes=1 << 16, max_message_size=4096)
    with rmqstore.open(tmp_path, **cfg) as s:
        data = encode_batch([(b"a" * 3000, 0, ""), (b"b" * 3000, 0, "")])
        with pytest.raises(rmqstore.MessageTooLargeError):
            s.put_encoded_batch("T", data, queue_id=0)
        assert s.max_offset("T", 0) == 0
        assert len(s.put_encoded_batch("T", encode_batch([(b"a" * 1000, 0, "")] * 3),
                                       queue_id=0).batch) == 3


@pytest.mark.parametrize("group,topic,queue_id,offset,error", [
    ("g", "T", 0, -5, rmqstore.InvalidQueueError),
    ("g", "T", 0, 10 ** 30, rmqstore.InvalidQueueError),
    ("g", "T", 0, 3, rmqstore.InvalidQueueError),  # past the queue's 2 messages
    ("g", "T", 10 ** 40, 0, rmqstore.InvalidQueueError),
    ("g", "T", -1, 0, rmqstore.InvalidQueueError),
    ("g", "Nope", 0, 0, rmqstore.InvalidTopicError),
    ("../g", "T", 0, 0, rmqstore.InvalidTopicError),
    ("g@x", "T", 0, 0, rmqstore.InvalidTopicError),  # "topic@group" keys the offsets file
])
def test_a_commit_outside_the_queue_is_refused_and_never_written(tmp_path, small_config, group,
                                                                 topic, queue_id, offset, error):
    with rmqstore.open(tmp_path, **dict(small_config, flush="sync")) as s:
        s.put("T", b"a")
        s.put("T", b"b")
        s.commit_offset("g", "T", 0, 2)
        with pytest.raises(error):
            s.commit_offset(group, topic, queue_id, offset)
    text = (tmp_path / "config" / "consumerOffset.json").read_text()
    assert {k: dict(v) for k, v in fastjson.loads(text)["offsetTable"].items()} == \
        {"T@g": {"0": 2}}


def test_a_store_of_other_sizes_is_a_layout_error_not_corruption(tmp_path, small_config):
    """Opened with other segment or consume-queue sizes than it was written with, a store is
    refused as a setting to change (StoreLayoutError, naming it), with nothing opened."""
    with rmqstore.open(tmp_path, **small_config) as s:
        for _ in range(200):
            s.put("T", b"x" * 50)  # several commit-log segments and consume-queue files
    for change, name in (({"commitlog_segment_bytes": 8192}, "commitlog_segment_bytes=4096"),
                         ({"consumequeue_units": 32}, "consumequeue_units=16")):
        with pytest.raises(rmqstore.StoreLayoutError, match=f"written with {name}, not"):
            rmqstore.open(tmp_path, **{**small_config, **change})
    with rmqstore.open(tmp_path, **small_config) as s:  # the lock was released
        assert s.max_offset("T", 0) == 200
