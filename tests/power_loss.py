"""A power loss, simulated on a store directory from its sync journal (rmqstore/sync_journal.py).

A SIGKILL leaves every write in the page cache; a power loss keeps only what was synced.
``apply(journal, root)`` turns the first into the second, as LevelDB's fault-injection test
drops unsynced data (google/leveldb:db/fault_injection_test.cc), once every process writing
``root`` is dead and before anything reopens it. The rules, by kind of file:

1. Append-only segments (commitlog/, consumequeue/<topic>/<queue>/, timerlog/) are zeroed past
   the length the journal says is durable: the largest "upto" since the file was "created" or
   last "cut" (a "cut" sets it), and 0 for a file with no record. Their size stays: it was
   reserved when the file was made.
   Config journals (config/*.journal: appended, never pre-sized) are cut to that length.
2. A rename with no fsync of its directory after it is undone: the name gets back the inode it
   had before the first such rename, or goes away if it had none.
3. Files synced whole (checkpoint, timercheck, config/*.json and their .bak: the paths the
   journal shows synced whole or renamed over, and their backups) hold the content their inode
   was last synced with; an inode a rename put in place and no sync ever covered (a config
   file written without its fsync) is left empty.
4. Anything else stays as the kill left it: index files (hash slots rewritten in place and
   synced whole), the timer wheel (msync), lock and abort. That is one outcome a power loss can
   have (the kernel writes dirty pages back whenever it likes), though not the worst.

Not modelled, and why:
- A name created (not renamed) since its directory was last fsynced survives. Like RocketMQ,
  the engine fsyncs neither commitlog/ nor consumequeue/<topic>/<queue>/ after creating a
  segment, nor the store root after creating consumequeue/ or config/; ext4 and xfs commit a
  creation with the journal transaction that the new file's own fsync forces, which is what
  this relies on, but POSIX does not promise it.
- Torn or reordered page write-back (a later page on disk, an earlier one not): unsynced bytes
  are all dropped, the loss that costs acknowledged data most.
- Deleted files coming back, and os.link (the .bak) not yet durable.
- Small files are told apart by inode number; a number freed by one and reused by another
  that was never synced would give it the old file's last synced content. Only a missing sync
  gets there, and then either content is stale.

What survives is what is on disk from then on: apply() ends the journal with "whole" records
of the files it rewrote and "dir" records of the directories whose renames it settled, and
drops a torn last line (a record whose sync was never acknowledged).
"""

from __future__ import annotations

import base64
import json
import os
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rmqstore import sync_journal
from rmqstore.filenames import backup_of, parse_offset_name

APPEND_ONLY = {"commitlog": 2, "timerlog": 2, "consumequeue": 4}  # top directory: path depth
ZERO_CHUNK = 1 << 20


@dataclass
class Loss:
    """What apply() dropped, for failure messages."""

    zeroed: dict[str, int] = field(default_factory=dict)  # segment -> bytes zeroed
    reverted: list[str] = field(default_factory=list)  # small files given older content
    removed: list[str] = field(default_factory=list)  # names whose rename was undone

    def __str__(self) -> str:
        return (f"power loss: {sum(self.zeroed.values())} unsynced bytes zeroed in "
                f"{len(self.zeroed)} segments, reverted {self.reverted}, removed {self.removed}")


def env(journal: Path) -> dict[str, str]:
    """The environment of a child process that journals its syncs into `journal`."""
    return {**os.environ, sync_journal.ENV: str(journal)}


@contextmanager
def journaling(journal: Path) -> Iterator[None]:
    """Journal this process's syncs too (a store reopened by the test itself)."""
    sync_journal.start(journal)
    try:
        yield
    finally:
        sync_journal.stop()


def apply(journal: Path, root: Path) -> Loss:
    """Drop from the store at root whatever the journal does not show durable (rules above)."""
    records = _read(journal)
    root = Path(os.path.abspath(root))
    loss = Loss()
    settled: list[dict] = []
    durable = _durable_lengths(records)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if _append_only(root, path):
            dropped = _zero_past(path, durable.get(str(path), 0))
        elif _config_journal(root, path):
            dropped = _cut_past(path, durable.get(str(path), 0))
        else:
            continue
        if dropped:
            loss.zeroed[str(path.relative_to(root))] = dropped
    small = _SmallFiles(records, root)
    for dst, was in small.pending.items():
        path = Path(dst)
        if was is None:
            if path.exists():
                path.unlink()
                loss.removed.append(str(path.relative_to(root)))
            continue
        settled += _set_content(path, small.whole.get(was, b""), root, loss)
    for name in sorted(small.names - small.pending.keys()):
        path = Path(name)
        if not path.exists():
            continue
        st = path.stat()
        ino = (st.st_dev, st.st_ino)
        if ino in small.whole:
            settled += _set_content(path, small.whole[ino], root, loss)
        elif ino in small.placed:
            settled += _set_content(path, b"", root, loss)
    for directory in sorted({os.path.dirname(dst) for dst in small.pending}):
        settled.append({"op": "dir", "path": directory})
    with open(journal, "a") as out:
        out.writelines(json.dumps(r) + "\n" for r in settled)
    return loss


def _read(journal: Path) -> list[dict]:
    """The journal's records; a torn last line is dropped from the file too."""
    if not journal.exists():
        return []
    data = journal.read_bytes()
    complete = data[:data.rfind(b"\n") + 1]
    if len(complete) != len(data):
        os.truncate(journal, len(complete))
    return [json.loads(line) for line in complete.splitlines()]


def _append_only(root: Path, path: Path) -> bool:
    parts = path.relative_to(root).parts
    return (APPEND_ONLY.get(parts[0]) == len(parts)
            and parse_offset_name(parts[-1]) is not None)


def _config_journal(root: Path, path: Path) -> bool:
    parts = path.relative_to(root).parts
    return len(parts) == 2 and parts[0] == "config" and parts[1].endswith(".journal")


def _cut_past(path: Path, durable: int) -> int:
    """Truncate path to `durable` bytes; returns how many went."""
    size = path.stat().st_size
    if size > durable:
        os.truncate(path, durable)
    return max(0, size - durable)


def _durable_lengths(records: list[dict]) -> dict[str, int]:
    """Segment path -> bytes durable from its start (rule 1)."""
    durable: dict[str, int] = {}
    for r in records:
        _track(durable, r)
    return durable


def _track(durable: dict[str, int], r: dict) -> None:
    op = r["op"]
    if op == "created":
        durable[r["path"]] = 0
    elif op == "upto":
        durable[r["path"]] = max(durable.get(r["path"], 0), r["n"])
    elif op == "cut":
        durable[r["path"]] = r["n"]


class JournalTail:
    """Follows a journal that a live process appends to: how far its segments are durable
    now, for a test that checks each acknowledgement as it arrives (every sync is journaled
    before what it covers is acknowledged)."""

    def __init__(self, journal: Path) -> None:
        self.journal = journal
        self._read_to = 0
        self.durable: dict[str, int] = {}

    def covers(self, directory: Path, offset: int) -> bool:
        """Whether the record at global `offset` of the log whose segments are in
        `directory` (named by start offset) is durable: a durable length ends at a record
        boundary, so one past the offset covers the record."""
        self._refresh()
        for path, n in self.durable.items():
            head, name = os.path.split(path)
            start = parse_offset_name(name)
            if head == str(directory) and start is not None and start <= offset < start + n:
                return True
        return False

    def _refresh(self) -> None:
        with open(self.journal, "rb") as f:
            f.seek(self._read_to)
            data = f.read()
        complete = data[:data.rfind(b"\n") + 1]
        self._read_to += len(complete)
        for line in complete.splitlines():
            _track(self.durable, json.loads(line))


def _zero_past(path: Path, durable: int) -> int:
    """Zero the bytes of path from `durable` on; returns how many were not zero already."""
    dropped = 0
    with open(path, "r+b") as f:
        size = os.fstat(f.fileno()).st_size
        pos = durable
        while pos < size:
            f.seek(pos)
            chunk = f.read(min(ZERO_CHUNK, size - pos))
            nonzero = len(chunk) - chunk.count(0)
            if nonzero:
                dropped += nonzero
                f.seek(pos)
                f.write(bytes(len(chunk)))
            pos += len(chunk)
    return dropped


class _SmallFiles:
    """What the journal says of the small files (rules 2 and 3)."""

    def __init__(self, records: list[dict], root: Path) -> None:
        """Only records of files and directories within root count (another store in the same
        process may journal too)."""
        self.whole: dict[tuple[int, int], bytes] = {}  # inode -> content last synced
        self.placed: set[tuple[int, int]] = set()  # inodes a rename put in place
        # name -> the inode it gets back when its renames are undone: the "was" of the first
        # rename since its directory's last fsync
        self.pending: dict[str, tuple[int, int] | None] = {}
        # every path synced whole, renamed over, or kept as the .bak of one: the files rule 3
        # looks at (by name, since an inode number freed by one file is soon another's)
        self.names: set[str] = set()
        pending_by_dir: dict[str, set[str]] = defaultdict(set)
        for r in records:
            op = r["op"]
            if os.path.commonpath([str(root), r.get("dst") or r["path"]]) != str(root):
                continue
            if op == "whole":
                self.whole[tuple(r["ino"])] = base64.b64decode(r["data"])
                self.names.add(r["path"])
            elif op == "replace":
                self.placed.add(tuple(r["ino"]))
                self.names |= {r["dst"], str(backup_of(Path(r["dst"])))}
                if r["dst"] not in self.pending:
                    self.pending[r["dst"]] = tuple(r["was"]) if r["was"] else None
                    pending_by_dir[os.path.dirname(r["dst"])].add(r["dst"])
            elif op == "dir":
                for dst in pending_by_dir.pop(r["path"], ()):
                    del self.pending[dst]


def _set_content(path: Path, content: bytes, root: Path, loss: Loss) -> list[dict]:
    """Give path `content` through a new inode (another name may share the old one), unless it
    holds it already; returns the records saying so."""
    if path.exists() and path.read_bytes() == content:
        return []
    tmp = path.with_name(path.name + ".power-loss")
    tmp.write_bytes(content)
    os.replace(tmp, path)
    loss.reverted.append(str(path.relative_to(root)))
    st = path.stat()
    return [{"op": "whole", "path": str(path), "ino": [st.st_dev, st.st_ino],
             "data": base64.b64encode(content).decode("ascii")}]
