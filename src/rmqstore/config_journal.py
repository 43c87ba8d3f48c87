"""A config table of RocketMQ's (config/topics.json, config/subscriptionGroup.json: fastjson's
{"dataVersion": ..., "<table>": {key: object}}) kept current by a journal of its changes.

RocketMQ rewrites the whole file on every change (ConfigManager.persist): at 16,000 topics
that is a 3 MB write, and here an fsync, per topic created. Instead a change is one line
appended to <file>.journal:

    {"k":"TopicA","v":{"order":false,"perm":6,...}}      the key's object, whole
    {"k":"TopicA"}                                       the key deleted

each written with one os.write on an O_APPEND descriptor (a kill can tear only the last line,
which load() drops) and made durable by sync(). compact() writes the file whole, as before
(metadata.write_json: temporary, fsync, rename, directory fsync), then empties the journal. The
file alone is complete after a clean close; after a crash, the file and then the journal
replayed in order give every change synced (every change, after a kill alone): the journal's
last line for a key is its newest value, so replaying lines the file holds already is harmless.

No change waits for a disk: a sync or a compaction holds the lock that appends take only to
note positions, never through an fsync or the file's serialization (at 16,000 topics a
compaction under it stalled a create for half a second). A compaction's snapshot holds every
line appended before it began; lines appended while the file is written stay in the journal,
which is emptied by the first compaction that no change overlaps (at the latest at close).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import sync_journal
from .filenames import journal_of
from .metadata import read_json, write_json
from .protocol import fastjson

log = logging.getLogger(__name__)


class ConfigJournal:
    """Thread-safe: appends note their bytes under a short lock; syncs serialize among
    themselves and compactions among themselves, each outside that lock for its slow part."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.journal = journal_of(path)
        self._lock = threading.Lock()  # the descriptor and the counts below
        self._sync_lock = threading.Lock()  # one fsync of the journal at a time
        self._compact_lock = threading.Lock()  # one compaction at a time
        self._fd = -1
        self._written = 0  # bytes appended to the journal
        self._synced = 0  # of them durable
        self._background: threading.Thread | None = None
        self.lines = 0  # changes in the journal, not yet in the file

    def load(self) -> tuple[Any, list[tuple[str, Any]]]:
        """The file's object (its .bak's when it is unreadable; None when neither is there)
        and the journal's changes in order, (key, object or None for a deletion)."""
        changes: list[tuple[str, Any]] = []
        try:  # the journal before the file: a compaction in between leaves both complete
            data = self.journal.read_bytes()
        except FileNotFoundError:
            data = b""
        table = read_json(self.path)
        for n, line in enumerate(data.split(b"\n")[:-1]):  # the part after the last \n: torn
            try:
                entry = fastjson.loads(line)
                changes.append((str(entry["k"]), entry.get("v")))
            except (ValueError, KeyError, TypeError):
                log.warning("%s: line %d is not a change; skipped", self.journal, n + 1)
        self.lines = len(changes)
        return table, changes

    def append(self, key: str, value: Any) -> None:
        """Journal key's new object (None: key deleted); durable after sync()."""
        line = fastjson.dumps({"k": key} if value is None else {"k": key, "v": value}) + b"\n"
        with self._lock:
            if self._fd < 0:
                self._open()
            os.write(self._fd, line)
            self._written += len(line)
            self.lines += 1

    def sync(self) -> None:
        """Make every change appended so far durable."""
        with self._sync_lock:
            with self._lock:
                if self._fd < 0 or self._synced >= self._written:
                    return
                fd, written = self._fd, self._written
            # Appends go on meanwhile; a truncation or a close waits (they take _sync_lock).
            sync_journal.fdatasync_upto(fd, self.journal, written)
            with self._lock:
                self._synced = max(self._synced, written)

    def compact(self, snapshot) -> None:
        """Write the file whole with snapshot() when the journal holds changes not in it
        (snapshot() must hold every change appended before it is called), then empty the
        journal unless changes came meanwhile (they stay in it, for the next compaction)."""
        with self._compact_lock:
            with self._lock:
                if not self.lines:
                    return
                if self._fd < 0:  # lines load() found: the journal is emptied below
                    self._open()
                upto, lines = self._written, self.lines
            write_json(self.path, snapshot())
            with self._sync_lock:  # no sync of the lines truncated below may record after
                with self._lock:
                    self.lines -= lines
                    if self._written != upto:
                        return
                    os.ftruncate(self._fd, 0)
                    self._written = self._synced = 0
                    fd = self._fd
                sync_journal.fdatasync_cut(fd, self.journal, 0)

    def compact_soon(self, persist: Callable[[], object]) -> None:
        """persist() (which compacts) on a thread of its own, unless one is at it already: for
        a caller that must not wait for the file's write."""
        with self._lock:
            if self._background is not None and self._background.is_alive():
                return
            self._background = threading.Thread(target=persist, daemon=True,
                                                name=f"compact-{self.path.name}")
            self._background.start()

    def rewrite(self, snapshot) -> None:
        """Write the file whole with snapshot() (taken under the lock, so that it holds every
        change appended), then empty the journal."""
        with self._compact_lock, self._sync_lock, self._lock:
            write_json(self.path, snapshot())
            if self._fd < 0:
                self._open()
            os.ftruncate(self._fd, 0)
            sync_journal.fdatasync_cut(self._fd, self.journal, 0)
            self._written = self._synced = 0
            self.lines = 0

    def close(self) -> None:
        """Let go of the descriptor once a compaction on its own thread is done."""
        background = self._background
        if background is not None:
            background.join()
        with self._compact_lock, self._sync_lock, self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        exists = self.journal.exists()
        self._fd = os.open(self.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._written = os.fstat(self._fd).st_size  # what a crash left: synced with the rest
        self._synced = 0
        if not exists and sync_journal.ON:
            sync_journal.created(self.journal)
