"""A compaction of a config journal (config/topics.json written whole) never makes a change
wait for it: appends and syncs go on while the file is written, the changes that came
meanwhile stay in the journal, and a put that fills the journal leaves the write to a thread
of its own."""

from __future__ import annotations

import threading

from rmqstore import config_journal, topics
from rmqstore.config_journal import ConfigJournal
from rmqstore.topics import TopicConfig, TopicConfigManager

WAIT_S = 10.0


def _blocked_writes(monkeypatch) -> tuple[threading.Event, threading.Event]:
    """write_json waits for `release` once `started` is set: a compaction stuck on its disk."""
    started, release = threading.Event(), threading.Event()
    real = config_journal.write_json

    def slow(path, obj):
        started.set()
        assert release.wait(WAIT_S)
        real(path, obj)

    monkeypatch.setattr(config_journal, "write_json", slow)
    return started, release


def test_changes_go_on_while_a_compaction_writes_the_file(tmp_path, monkeypatch):
    started, release = _blocked_writes(monkeypatch)
    journal = ConfigJournal(tmp_path / "topics.json")
    table = {}

    def change(key: str) -> None:
        table[key] = {"n": key}  # the table first, then the journal, as the managers do
        journal.append(key, table[key])

    for key in ("A", "B"):
        change(key)
    compaction = threading.Thread(target=journal.compact, args=(lambda: dict(table),))
    compaction.start()
    assert started.wait(WAIT_S)
    done = threading.Event()

    def during() -> None:
        change("C")
        journal.sync()
        done.set()

    threading.Thread(target=during, daemon=True).start()
    try:
        assert done.wait(WAIT_S), "an append or a sync waited for the compaction's write"
    finally:
        release.set()
        compaction.join(WAIT_S)
    on_disk, changes = ConfigJournal(tmp_path / "topics.json").load()
    assert on_disk == {"A": {"n": "A"}, "B": {"n": "B"}}
    assert ("C", {"n": "C"}) in changes  # came during the write: kept in the journal
    assert journal.lines == 1
    journal.compact(lambda: dict(table))  # nothing overlaps this one: the journal is emptied
    journal.close()
    on_disk, changes = ConfigJournal(tmp_path / "topics.json").load()
    assert on_disk == table and changes == []


def test_a_full_journal_is_compacted_off_the_creating_thread(tmp_path, monkeypatch):
    started, release = _blocked_writes(monkeypatch)
    monkeypatch.setattr(topics, "COMPACT_AFTER_CHANGES", 5)
    configs = TopicConfigManager(tmp_path)
    configs.load()
    done = threading.Event()

    def create() -> None:
        for i in range(8):
            configs.put(TopicConfig(f"T{i}", 4, 4))
        done.set()

    threading.Thread(target=create, daemon=True).start()
    try:
        assert started.wait(WAIT_S)
        assert done.wait(WAIT_S), "a create waited for topics.json to be written"
    finally:
        release.set()
    configs.close()
    again = TopicConfigManager(tmp_path)
    again.load()
    assert sorted(again.topics) == [f"T{i}" for i in range(8)]
    assert not config_journal.journal_of(configs.path).read_bytes()  # all in the file
