"""Topic configs are journaled, not rewritten whole per change: config/topics.json is complete
(in fastjson's shape) after a clean close, and the file with its journal holds every topic
after a kill, and every one a durable create returned, after a power loss."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import rmqstore
from rmqstore import config_journal
from rmqstore.filenames import journal_of
from rmqstore.metadata import read_json
from rmqstore.topics import TopicConfigManager
from tests import power_loss

CFG = dict(commitlog_segment_bytes=1 << 20, index_enable=False)


def _table(root) -> dict:
    return (read_json(root / "config" / "topics.json") or {}).get("topicConfigTable", {})


def test_topics_json_is_complete_after_a_clean_close(tmp_path):
    with rmqstore.open(tmp_path, **CFG) as s:
        for i in range(300):
            s.create_topic("T%03d" % i, 1 + i % 8)
        s.create_topic("T007", 16)  # a change of one already there
        s.put("ByPut", b"x")  # made by its first put
    table = _table(tmp_path)
    assert len(table) == 301
    assert table["T005"]["writeQueueNums"] == 6 and table["T007"]["readQueueNums"] == 16
    assert table["ByPut"]["topicName"] == "ByPut"
    journal = journal_of(tmp_path / "config" / "topics.json")
    assert not journal.exists() or journal.stat().st_size == 0
    counter = read_json(tmp_path / "config" / "topics.json")["dataVersion"]["counter"]
    assert counter >= 302  # every change counted, the update too


def test_creating_topics_does_not_rewrite_the_file(tmp_path, monkeypatch):
    writes = []
    real = config_journal.write_json
    monkeypatch.setattr(config_journal, "write_json",
                        lambda path, obj: writes.append(path) or real(path, obj))
    with rmqstore.open(tmp_path, background=False, **CFG) as s:
        for i in range(2000):
            s.create_topic("T%04d" % i, 4)
        assert writes == []  # journaled only
    assert len(writes) == 1  # written whole once, at close
    assert len(_table(tmp_path)) == 2000


KILLED = textwrap.dedent("""
    import os, sys
    import rmqstore
    s = rmqstore.open(sys.argv[1], flush=sys.argv[2], commitlog_segment_bytes=1 << 20,
                      index_enable=False)
    for i in range(500):
        s.create_topic("T%03d" % i, 1 + i % 8)
        print("created", i, flush=True)
    for i in range(0, 500, 50):
        s.create_topic("T%03d" % i, 32)
    print("updated", flush=True)
    os._exit(0)  # killed: no close, no flush
""")


def _killed(root, flush: str, env=None) -> str:
    return subprocess.run([sys.executable, "-c", KILLED, str(root), flush], env=env,
                          check=True, capture_output=True, text=True, timeout=120).stdout


def _configs(root) -> TopicConfigManager:
    configs = TopicConfigManager(root)
    configs.load()
    return configs


def test_topic_configs_survive_a_kill(tmp_path):
    assert "updated" in _killed(tmp_path, "async")
    with rmqstore.open(tmp_path, **CFG) as s:
        for i in range(500):
            want = 32 if i % 50 == 0 else 1 + i % 8
            assert s.topics.get("T%03d" % i).write_queue_nums == want, i
    assert len(_table(tmp_path)) == 500  # and the clean close wrote them into the file


def test_durable_topic_configs_survive_a_power_loss(tmp_path):
    """With sync flush a create returns once its config is durable: every one the killed
    process saw return is there after a power loss drops whatever was not synced."""
    journal = tmp_path / "sync-journal"
    out = _killed(tmp_path / "store", "sync", power_loss.env(journal))
    created = [int(line.split()[1]) for line in out.splitlines() if line.startswith("created")]
    assert created == list(range(500))
    loss = power_loss.apply(journal, tmp_path / "store")
    configs = _configs(tmp_path / "store")
    for i in created:
        assert configs.get("T%03d" % i) is not None, (i, loss)
    assert configs.get("T050").write_queue_nums == 32


def test_async_topic_configs_are_durable_after_a_flush(tmp_path):
    journal = tmp_path / "sync-journal"
    child = textwrap.dedent("""
        import os, sys
        import rmqstore
        s = rmqstore.open(sys.argv[1], commitlog_segment_bytes=1 << 20, index_enable=False)
        for i in range(100):
            s.create_topic("Before%d" % i, 2)
        s.flush()
        for i in range(100):
            s.create_topic("After%d" % i, 2)
        os._exit(0)
    """)
    subprocess.run([sys.executable, "-c", child, str(tmp_path / "store")],
                   env=power_loss.env(journal), check=True, timeout=120)
    power_loss.apply(journal, tmp_path / "store")
    configs = _configs(tmp_path / "store")
    assert all(configs.get("Before%d" % i) is not None for i in range(100))
    with rmqstore.open(tmp_path / "store", **CFG) as s:  # what is left opens and is used
        s.create_topic("Later", 3)
    assert _table(tmp_path / "store")["Later"]["writeQueueNums"] == 3


def test_a_torn_journal_line_is_dropped(tmp_path):
    with rmqstore.open(tmp_path, background=False, **CFG) as s:
        s.create_topic("Kept", 2)
        s.topics.sync()
        path = s.topics._journal.journal
        # what a kill in the middle of a write can leave: a line without its end
        with open(path, "ab") as f:
            f.write(b'{"k":"Torn","v":{"topicName":"Torn","writeQu')
        configs = _configs(tmp_path)
        assert configs.get("Kept").write_queue_nums == 2 and configs.get("Torn") is None


def test_a_change_after_a_torn_line_is_kept(tmp_path):
    """A kill in the middle of a journal write leaves a line without its end; the next change
    must start a line of its own, not be glued onto the torn one and dropped with it."""
    with rmqstore.open(tmp_path, background=False, **CFG) as s:
        s.create_topic("Kept", 2)
        s.topics.sync()
        path = s.topics._journal.journal
    # the journal as a kill left it (the store closed above wrote the file whole: put the torn
    # line back in a journal that also holds a change, as after a kill before any compaction)
    path.write_bytes(b'{"gen":0}\n{"k":"Kept2","v":{"topicName":"Kept2","readQueueNums":2,'
                     b'"writeQueueNums":2,"perm":6,"topicFilterType":"SINGLE_TAG",'
                     b'"topicSysFlag":0,"order":false,"attributes":{}}}\n'
                     b'{"k":"Torn","v":{"topicName":"Torn","writeQu')
    with rmqstore.open(tmp_path, background=False, **CFG) as s:
        s.create_topic("After", 4)
        s.topics.sync()
        journal = path.read_bytes()
        configs = _configs(tmp_path)  # what a kill now would leave
    assert configs.get("After") is not None and configs.get("After").write_queue_nums == 4
    assert configs.get("Kept2").write_queue_nums == 2 and configs.get("Torn") is None
    assert journal.count(b"\n") == 4  # gen, Kept2, the torn line ended, After
