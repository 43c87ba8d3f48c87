"""A config table of RocketMQ's (config/topics.json, config/subscriptionGroup.json: fastjson's
{"dataVersion": ..., "<table>": {key: object}}) kept current by a journal of its changes.

RocketMQ rewrites the whole file on every change (ConfigManager.persist): at 16,000 topics
that is a 3 MB write, and here an fsync, per topic created. Instead a change is one line
appended to <file>.journal:

    {"k":"TopicA","v":{"order":false,"perm":6,...}}      the key's object, whole
    {"k":"TopicA"}                                       the key deleted

each written with one os.write on an O_APPEND descriptor (a kill can tear only the last line,
which load() drops; the next append starts a line of its own after it) and made durable by
sync(). compact() writes the file whole, as before
(metadata.write_json: temporary, fsync, rename, directory fsync), then empties the journal. The
file alone is complete after a clean close; after a crash, the file and then the journal
replayed in order give every change synced (every change, after a kill alone): the journal's
last line for a key is its newest value, so replaying lines the file holds already is harmless.

No change waits for a disk: a sync or a compaction holds the lock that appends take only to
note positions, never through an fsync or the file's serialization (at 16,000 topics a
compaction under it stalled a create for half a second). A compaction's snapshot holds every
line appended before it began; lines appended while the file is written are not in it. So
that continuous changes cannot grow a journal without bound, there are two, <file>.journal and
<file>.alt.journal, each starting with its generation when it holds anything:

    {"gen":7}

A compaction that changes overlapped leaves them in the journal they went to and sends the
next ones to the other (emptied first: what it held came before this compaction began); one
that nothing overlapped empties both. The journals hold at most the changes of the last two
compactions' spans; load() replays the lower generation first. A store several processes
share never turns (shared/metadata.py: its compactions and changes hold one mutex, so nothing
overlaps), which keeps every process's descriptor on the journal in use.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import sync_journal
from .filenames import alt_journal_of, journal_of
from .metadata import read_json, write_json
from .protocol import fastjson

log = logging.getLogger(__name__)


GEN_KEY = "gen"


class _File:
    """One of the two journals: its descriptor (opened on first use), the bytes appended to it
    and how many of them are durable, and its generation (higher: written later)."""

    __slots__ = ("path", "fd", "written", "synced", "gen")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = -1
        self.written = 0
        self.synced = 0
        self.gen = 0


class ConfigJournal:
    """Thread-safe: appends note their bytes under a short lock; syncs serialize among
    themselves and compactions among themselves, each outside that lock for its slow part."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.journal = journal_of(path)
        self._files = (_File(self.journal), _File(alt_journal_of(path)))
        self._cur = self._files[0]  # where appends go
        self._lock = threading.Lock()  # the descriptors, _cur and the counts below
        self._sync_lock = threading.Lock()  # one fsync of the journals at a time
        self._compact_lock = threading.Lock()  # one compaction at a time
        self._background: threading.Thread | None = None
        self.lines = 0  # changes in the journals, not yet in the file

    def load(self) -> tuple[Any, list[tuple[str, Any]]]:
        """The file's object (its .bak's when it is unreadable; None when neither is there)
        and the journals' changes in order, (key, object or None for a deletion)."""
        found = []
        for f in self._files:  # the journals before the file: a compaction in between
            try:  # leaves both complete
                data = f.path.read_bytes()
            except FileNotFoundError:
                data = b""
            gen, changes = self._parse(f.path, data)
            found.append((gen, bool(data), f, changes))
        table = read_json(self.path)
        # Appends go on in the newest; when both are empty, in <file>.journal.
        found.sort(key=lambda item: (item[0], item[1], item[2] is self._files[0]))
        for gen, _, f, _ in found:
            f.gen = gen
        self._cur = found[-1][2]
        changes = [change for *_, some in found for change in some]
        self.lines = len(changes)
        return table, changes

    @staticmethod
    def _parse(path: Path, data: bytes) -> tuple[int, list[tuple[str, Any]]]:
        gen, changes = 0, []
        for n, line in enumerate(data.split(b"\n")[:-1]):  # the part after the last \n: torn
            try:
                entry = fastjson.loads(line)
                if not changes and GEN_KEY in entry and "k" not in entry:  # after a torn
                    # first line, the generation comes on the next one
                    gen = int(entry[GEN_KEY])
                    continue
                changes.append((str(entry["k"]), entry.get("v")))
            except (ValueError, KeyError, TypeError):
                log.warning("%s: line %d is not a change; skipped", path, n + 1)
        return gen, changes

    def append(self, key: str, value: Any) -> None:
        """Journal key's new object (None: key deleted); durable after sync()."""
        line = fastjson.dumps({"k": key} if value is None else {"k": key, "v": value}) + b"\n"
        with self._lock:
            f = self._cur
            if f.fd < 0:
                self._open(f)
            line = self._after_what_is_there(f) + line
            os.write(f.fd, line)
            f.written += len(line)
            self.lines += 1

    def _after_what_is_there(self, f: _File) -> bytes:
        """What an append writes before its line: the generation into an empty journal, and a
        line end after a torn last line (a process killed in its write, even another process's
        of a shared store, or a power loss), which would otherwise swallow this change."""
        size = os.fstat(f.fd).st_size
        if not size:
            return fastjson.dumps({GEN_KEY: f.gen}) + b"\n"
        if os.pread(f.fd, 1, size - 1) == b"\n":
            return b""
        log.warning("%s: a torn last line; the next change starts a line of its own", f.path)
        whole = b"\n" in os.pread(f.fd, size, 0)  # rare: read it all to see if a gen line is
        return b"\n" if whole else b"\n" + fastjson.dumps({GEN_KEY: f.gen}) + b"\n"

    def sync(self) -> None:
        """Make every change appended so far durable."""
        with self._sync_lock:
            with self._lock:
                due = [(f, f.written) for f in self._files if f.fd >= 0 and f.synced < f.written]
            # Appends go on meanwhile; a truncation or a close waits (they take _sync_lock).
            for f, written in due:
                sync_journal.fdatasync_upto(f.fd, f.path, written)
            with self._lock:
                for f, written in due:
                    f.synced = max(f.synced, written)

    def compact(self, snapshot) -> None:
        """Write the file whole with snapshot() when the journals hold changes not in it
        (snapshot() must hold every change appended before it is called), then empty them but
        for the changes that came meanwhile (kept for the next compaction, the next ones
        going to the other journal)."""
        with self._compact_lock:
            with self._lock:
                if not self.lines:
                    return
                cur = self._cur
                if cur.fd < 0:  # lines load() found: the journal is emptied below
                    self._open(cur)
                upto, lines = cur.written, self.lines
            write_json(self.path, snapshot())
            with self._sync_lock:  # no sync of the lines truncated below may record after
                with self._lock:
                    self.lines -= lines
                    other = self._files[1] if cur is self._files[0] else self._files[0]
                    turn = cur.written != upto  # changes overlapped: they stay in cur
                    if turn or other.fd >= 0 or other.path.exists():
                        if other.fd < 0:
                            self._open(other)
                        cut = [other] if turn else [other, cur]
                    else:
                        cut = [cur]
                    for f in cut:  # all it holds came before this compaction began
                        os.ftruncate(f.fd, 0)
                        f.written = f.synced = 0
                    if turn:
                        other.gen = cur.gen + 1
                        self._cur = other
                for f in cut:
                    sync_journal.fdatasync_cut(f.fd, f.path, 0)

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
        change appended), then empty the journals."""
        with self._compact_lock, self._sync_lock, self._lock:
            write_json(self.path, snapshot())
            for f in self._files:
                if f.fd < 0 and f is not self._cur and not f.path.exists():
                    continue
                if f.fd < 0:
                    self._open(f)
                os.ftruncate(f.fd, 0)
                sync_journal.fdatasync_cut(f.fd, f.path, 0)
                f.written = f.synced = 0
            self.lines = 0

    def close(self) -> None:
        """Let go of the descriptors once a compaction on its own thread is done."""
        background = self._background
        if background is not None:
            background.join()
        with self._compact_lock, self._sync_lock, self._lock:
            for f in self._files:
                if f.fd >= 0:
                    os.close(f.fd)
                    f.fd = -1

    def _open(self, f: _File) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        exists = f.path.exists()
        # read too: an append looks at the last byte for a torn line
        f.fd = os.open(f.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        f.written = os.fstat(f.fd).st_size  # what a crash left: synced with the rest
        f.synced = 0
        if not exists and sync_journal.ON:
            sync_journal.created(f.path)
