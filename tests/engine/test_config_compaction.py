"""A compaction of a config journal (config/topics.json written whole) never makes a change
wait for it: appends and syncs go on while the file is written, the changes that came
meanwhile stay in the journal, a put that fills the journal leaves the write to a thread of
its own, and changes that never stop cannot grow the journals without bound."""

from __future__ import annotations

import threading
import time

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


def _changes_held(path) -> int:
    """Changes in a config file's journals (their generation lines aside)."""
    held = 0
    for journal in (config_journal.journal_of(path), config_journal.alt_journal_of(path)):
        if journal.exists():
            held += sum(1 for line in journal.read_bytes().splitlines() if b'"k"' in line)
    return held


def test_continuous_changes_during_compactions_keep_the_journals_bounded(tmp_path, monkeypatch):
    """Every compaction overlaps changes (its write is slowed); the journals still hold only
    the changes since the compaction before the last began, and a kill (nothing closed)
    leaves every change, the newest value of a key changed in both journals last."""
    real = config_journal.write_json
    monkeypatch.setattr(config_journal, "write_json",
                        lambda path, obj: time.sleep(0.005) or real(path, obj))
    configs = TopicConfigManager(tmp_path)
    configs.load()
    puts = [0]
    stop = threading.Event()

    def create() -> None:
        deadline = time.monotonic() + 20.0
        while not stop.is_set() and puts[0] < 100_000 and time.monotonic() < deadline:
            i = puts[0]
            name = f"T{i % 2000}"  # a table of bounded size: compactions of like length
            configs.put(TopicConfig(name, 4, 4) if i % 2 else TopicConfig("Hot", 1, 1 + i))
            puts[0] += 1

    creator = threading.Thread(target=create, daemon=True)
    creator.start()
    begun: list[int] = []  # puts done when each compaction began
    over: list[tuple[int, int, int]] = []  # (compaction, changes held after it, puts by then)
    try:
        while len(begun) < 20 and creator.is_alive():
            begun.append(puts[0])
            configs.persist()
            held = _changes_held(configs.path)
            if len(begun) >= 2 and held > puts[0] + 1 - begun[-2]:
                over.append((len(begun), held, puts[0]))
    finally:
        stop.set()
        creator.join(WAIT_S)
    assert len(begun) == 20, "the creator stopped before 20 compactions"
    assert not over, f"journals held changes older than the compaction before last: {over}"
    killed = TopicConfigManager(tmp_path)  # what a kill leaves: the files as they are
    killed.load()
    topics_ = killed.topics
    assert len(topics_) == 1 + len({i % 2000 for i in range(1, puts[0], 2)})
    last_hot = max(i for i in range(puts[0]) if i % 2 == 0)
    assert topics_["Hot"].write_queue_nums == 1 + last_hot
    configs.close()
    again = TopicConfigManager(tmp_path)
    again.load()
    assert again.topics == topics_ and _changes_held(configs.path) == 0
