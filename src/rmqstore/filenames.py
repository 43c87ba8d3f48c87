"""Every on-disk name of a store, formatted and parsed in one place.

Layout under the store root (RocketMQ 4.x, StorePathConfigHelper):
    commitlog/<20-digit start offset>
    consumequeue/<topic>/<queueId>/<20-digit start byte offset>
    index/<yyyyMMddHHmmssSSS>            (creation time, local time zone)
    checkpoint, abort, lock
    epochFileCheckpoint (+ .bak)         controller mode: the epochs this log holds (RocketMQ 5)
    brokerIdentity, brokerIdentity-temp  controller mode: the broker's id in its set (RocketMQ 5)
    config/topics.json, config/consumerOffset.json (+ .bak, transient .tmp; topics.json and
        subscriptionGroup.json also + .journal and + .alt.journal, the changes not yet written
        into them)
and ours, beside RocketMQ's, for a store several processes open (shared=True):
    shared/control, shared/gate, shared/leader-<service>, and in the
    directory work under shared: <group>@<topic>@<queueId>
"""

from __future__ import annotations

import os
import time
from pathlib import Path

OFFSET_NAME_DIGITS = 20


def offset_name(offset: int) -> str:
    """RocketMQ's UtilAll.offset2FileName: the offset zero-padded to 20 digits."""
    return f"{offset:020d}"


def parse_offset_name(name: str) -> int | None:
    """The start offset a segment file name encodes, or None for a foreign file."""
    if len(name) != OFFSET_NAME_DIGITS or not name.isdigit():
        return None
    return int(name)


def index_name(epoch_ms: int) -> str:
    """An index file's name: its creation time as yyyyMMddHHmmssSSS in local time."""
    t = time.localtime(epoch_ms // 1000)
    return time.strftime("%Y%m%d%H%M%S", t) + f"{epoch_ms % 1000:03d}"


def is_index_name(name: str) -> bool:
    return len(name) == 17 and name.isdigit()


def commitlog_dir(root: Path, override: str | os.PathLike[str] | None = None) -> Path:
    """<root>/commitlog, or the directory storePathCommitLog names."""
    return Path(override) if override is not None else root / "commitlog"


def consumequeue_root(root: Path) -> Path:
    return root / "consumequeue"


def consumequeue_dir(root: Path, topic: str, queue_id: int) -> Path:
    """Topic names are validated before they get here (record.check_topic), so a topic can never
    climb out of the store."""
    return root / "consumequeue" / topic / str(queue_id)


def index_dir(root: Path) -> Path:
    return root / "index"


def checkpoint_file(root: Path) -> Path:
    return root / "checkpoint"


def abort_file(root: Path) -> Path:
    return root / "abort"


def sync_failed_file(root: Path) -> Path:
    """Beyond RocketMQ: where the commit log was last durable when a sync of it failed
    (sync_failure.py); the next open ends the log there."""
    return root / "syncFailed"


def lock_file(root: Path) -> Path:
    return root / "lock"


def epoch_file(root: Path) -> Path:
    """MessageStoreConfig.getStorePathEpochFile (RocketMQ 5)."""
    return root / "epochFileCheckpoint"


def broker_identity_file(root: Path) -> Path:
    """MessageStoreConfig.getStorePathBrokerIdentity (RocketMQ 5)."""
    return root / "brokerIdentity"


def temp_broker_identity_file(root: Path) -> Path:
    """ReplicasManager's tempBrokerMetadata: the id applied for, not yet granted."""
    return root / "brokerIdentity-temp"


def shared_dir(root: Path) -> Path:
    return root / "shared"


def control_file(root: Path) -> Path:
    """The control file of a shared store (shared/control.py)."""
    return root / "shared" / "control"


def leader_file(root: Path, service: str) -> Path:
    """Held (flock) by the process running a shared store's background service."""
    return root / "shared" / f"leader-{service}"


def work_file(root: Path, group: str, topic: str, queue_id: int) -> Path:
    """A work-sharing group's lease table (workgroup.py); names are checked before."""
    return root / "shared" / "work" / f"{group}@{topic}@{queue_id}"


def config_file(root: Path, name: str) -> Path:
    return root / "config" / name


def temp_of(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def aside_of(path: Path) -> Path:
    """A second temporary name, for a file made beside a writer that may make it too."""
    return path.with_name(path.name + ".new")


def journal_of(path: Path) -> Path:
    """The journal of changes kept beside a config file (config_journal.py)."""
    return path.with_name(path.name + ".journal")


def alt_journal_of(path: Path) -> Path:
    """The journal a config file's changes go to in turn with journal_of's."""
    return path.with_name(path.name + ".alt.journal")


def backup_of(path: Path) -> Path:
    return path.with_name(path.name + ".bak")


def list_offset_files(directory: Path) -> list[tuple[int, Path]]:
    """Segment files in a directory, sorted by start offset; foreign names are skipped."""
    if not directory.is_dir():
        return []
    found = []
    for entry in os.scandir(directory):
        start = parse_offset_name(entry.name)
        if start is not None and entry.is_file():
            found.append((start, Path(entry.path)))
    found.sort()
    return found
