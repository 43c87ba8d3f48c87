"""The power-loss simulation (tests/power_loss.py) drops what was not synced, and only that:
the tests that rely on it (test_kill9.py, tests/client/test_sync_flush_serve.py) could not
see a missing sync otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import rmqstore
from rmqstore import sync_journal
from rmqstore.checkpoint import StoreCheckpoint
from rmqstore.filenames import temp_of
from rmqstore.metadata import read_json, write_json
from tests import power_loss

CONFIG = dict(flush="async", background=False, commitlog_segment_bytes=1 << 16,
              consumequeue_units=64, index_slots=64, index_entries=256)

# Puts `synced` messages and makes them durable, then `unsynced` more, then dies the way
# SIGKILL makes it die: no close, no flush.
CHILD = textwrap.dedent("""
    import os, sys
    import rmqstore
    store = rmqstore.open(sys.argv[1], **eval(sys.argv[2]))
    for i in range(int(sys.argv[3])):
        store.put("T", b"synced %d" % i)
    store.flush()
    store.commit_offset("G", "T", 0, 7)
    store.offsets.persist()
    for i in range(int(sys.argv[4])):
        store.put("T", b"unsynced %d" % i)
    store.commit_offset("G", "T", 0, 9)
    os._exit(0)
""")


def _crash(root: Path, journal: Path, synced: int, unsynced: int) -> None:
    subprocess.run([sys.executable, "-c", CHILD, str(root), repr(CONFIG), str(synced),
                    str(unsynced)], env=power_loss.env(journal), check=True, timeout=60)


def _bodies(root: Path) -> list[bytes]:
    with rmqstore.open(root, **CONFIG) as store:
        return [m.body for m in store.get("T", 0, 0, 1000).messages]


def test_synced_data_survives_and_unsynced_data_does_not(tmp_path):
    journal = tmp_path / "journal"
    _crash(tmp_path / "store", journal, synced=50, unsynced=30)
    # A kill alone keeps the page cache: the unsynced messages are all there ...
    killed_only = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(tmp_path / "store"), str(killed_only)], check=True)
    assert len(_bodies(killed_only)) == 80
    # ... a power loss keeps exactly what was synced.
    loss = power_loss.apply(journal, tmp_path / "store")
    assert loss.zeroed, loss
    with power_loss.journaling(journal), rmqstore.open(tmp_path / "store", **CONFIG) as store:
        assert [m.body for m in store.get("T", 0, 0, 1000).messages] == \
            [b"synced %d" % i for i in range(50)]
        assert store.committed_offset("G", "T", 0) == 7  # 9 was never persisted


def _second_version_in_temporary(path: Path) -> Path:
    """path durably holds {"v": 1}; its temporary holds {"v": 2}, not synced. Journaling."""
    write_json(path, {"v": 1})
    tmp = temp_of(path)
    tmp.write_text('{"v":2}')
    return tmp


def test_a_rename_without_its_directory_fsync_is_undone(tmp_path):
    journal = tmp_path / "journal"
    path = tmp_path / "config" / "x.json"
    with power_loss.journaling(journal):
        tmp = _second_version_in_temporary(path)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            sync_journal.fsync_whole(fd, tmp)
        finally:
            os.close(fd)
        sync_journal.replace(tmp, path)  # and no fsync_dir
    assert read_json(path) == {"v": 2}
    power_loss.apply(journal, tmp_path)
    assert read_json(path) == {"v": 1}


def test_a_renamed_file_that_was_never_synced_is_empty(tmp_path):
    journal = tmp_path / "journal"
    path = tmp_path / "config" / "x.json"
    with power_loss.journaling(journal):
        tmp = _second_version_in_temporary(path)  # and no fsync_whole
        sync_journal.replace(tmp, path)
        sync_journal.fsync_dir(path.parent)
    power_loss.apply(journal, tmp_path)
    assert path.read_bytes() == b""


def test_a_checkpoint_rewritten_but_not_synced_goes_back(tmp_path):
    journal = tmp_path / "journal"
    with power_loss.journaling(journal):
        cp = StoreCheckpoint(tmp_path / "checkpoint")
        cp.physic_ts = 1000
        cp.flush()
        cp.physic_ts = 2000
        os.pwrite(cp.fd, b"\x00" * 7 + b"\x07", 0)  # written, never synced
        cp.close()
    power_loss.apply(journal, tmp_path)
    assert StoreCheckpoint(tmp_path / "checkpoint").physic_ts == 1000


def test_a_config_journal_keeps_its_synced_lines_only(tmp_path):
    """Config journals (config/*.journal) grow as written: cut to what their syncs covered."""
    from rmqstore.config_journal import ConfigJournal

    journal = tmp_path / "journal"
    path = tmp_path / "store" / "config" / "topics.json"
    with power_loss.journaling(journal):
        changes = ConfigJournal(path)
        for i in range(3):
            changes.append("T%d" % i, {"topicName": "T%d" % i})
        changes.sync()
        for i in range(3, 5):
            changes.append("T%d" % i, {"topicName": "T%d" % i})
        changes.close()
    loss = power_loss.apply(journal, tmp_path / "store")
    assert loss.zeroed, loss
    _, kept = ConfigJournal(path).load()
    assert [k for k, _ in kept] == ["T0", "T1", "T2"]
