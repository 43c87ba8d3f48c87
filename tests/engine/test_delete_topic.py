"""MessageStore.delete_topic: the topic's config, consume-queue files and offsets go, other
topics stay, a later put starts the topic anew, and no recovery, clean or after a crash,
brings the deleted records back into a queue."""

from __future__ import annotations

import rmqstore
from rmqstore import filenames


def fill(store, topic: str, n: int, queues: int = 2) -> None:
    store.create_topic(topic, queues)
    for i in range(n):
        store.put(topic, b"%s-%d" % (topic.encode(), i), queue_id=i % queues)


def test_delete_removes_files_config_and_offsets_only_of_that_topic(tmp_path, small_config):
    with rmqstore.open(tmp_path, **small_config) as s:
        fill(s, "Keep", 50)
        fill(s, "Gone", 120)  # several consume-queue files per queue
        s.commit_offset("G", "Gone", 0, 10)
        s.commit_offset("G", "Keep", 0, 5)
        assert s.delete_topic("Gone")
        assert s.topics.get("Gone") is None and s.committed_offset("G", "Gone", 0) is None
        assert not (filenames.consumequeue_root(tmp_path) / "Gone").exists()
        assert [t for t, _ in s.topics_and_queues()] == ["Keep", "Keep"]
        assert s.committed_offset("G", "Keep", 0) == 5
        assert [m.body for m in s.get("Keep", 1, 0, 2).messages] == [b"Keep-1", b"Keep-3"]
        assert not s.delete_topic("Gone")  # nothing left to delete
        r = s.put("Gone", b"anew")
        assert (r.queue_id, r.queue_offset) == (0, 0)


def test_deleted_records_stay_deleted_through_recovery(tmp_path, small_config):
    """The deleted topic's records are the last in the log: a recovery that re-dispatched
    records past every queue's end (RocketMQ's reput start) would file them again."""
    with rmqstore.open(tmp_path, **small_config) as s:
        fill(s, "Keep", 10)
        fill(s, "Gone", 30)
        s.delete_topic("Gone")
    for abnormal in (False, True):
        if abnormal:  # a crash: recovery scans from the checkpoint's safe point
            filenames.abort_file(tmp_path).touch()
        with rmqstore.open(tmp_path, **small_config) as s:
            assert s.max_offset("Gone", 0) == 0 and s.topics.get("Gone") is None
            assert s.max_offset("Keep", 0) == 5
    with rmqstore.open(tmp_path, **small_config) as s:
        s.put("Gone", b"new one", queue_id=0)
    filenames.abort_file(tmp_path).touch()
    with rmqstore.open(tmp_path, **small_config) as s:  # the new record is not deleted
        assert [m.body for m in s.get("Gone", 0, 0).messages] == [b"new one"]


def test_a_put_naming_its_queue_after_a_delete_goes_to_the_new_queue(tmp_path, small_config):
    """Puts to a queue seen before skip the queue table (the writer keeps their targets):
    a delete must drop those, or the next put lands in the deleted queue."""
    with rmqstore.open(tmp_path, **small_config) as s:
        fill(s, "Gone", 20)
        s.delete_topic("Gone")
        r = s.put("Gone", b"anew", queue_id=0)
        assert (r.queue_id, r.queue_offset) == (0, 0)
        assert [m.body for m in s.get("Gone", 0, 0).messages] == [b"anew"]
