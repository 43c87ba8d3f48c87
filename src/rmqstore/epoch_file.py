"""The epoch file of a store in controller mode: which master epoch wrote which range of the
commit log (RocketMQ 5's EpochFileCache on CheckpointFile; store/.../ha/autoswitch/
EpochFileCache.java, common/.../utils/CheckpointFile.java).

File <root>/epochFileCheckpoint, text, "\\n" line ends:

    line 1  the number of entries                       2
    line 2  CRC32 of the entry lines (with their "\\n"),  773307083
            masked to 31 bits (UtilAll.crc32); 0: not checked
    then    one "epoch-startOffset" line per entry, in   7-7000
            ascending epoch order                        8-8000

An entry's range ends where the next one starts; the last one's at the log's end. Every write
is atomic (temp file, fsync, rename; metadata.write_atomic) and keeps the previous content as
epochFileCheckpoint.bak, which a read falls back to when the file is missing or fails its count
or CRC check (CheckpointFile.read; Java also falls back when the file has no entry, and never
writes one without: here a log truncated to nothing says so, "0\n0\n").

Not thread-safe: the broker's role changes and its HA link use it from one event loop.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from pathlib import Path

from .filenames import backup_of, epoch_file
from .metadata import write_atomic

log = logging.getLogger(__name__)

NOT_CHECKED = 0  # CheckpointFile.NOT_CHECK_CRC_MAGIC_CODE

Entry = tuple[int, int]  # (epoch, start offset)


class EpochFileError(ValueError):
    """An epoch file whose count or CRC does not check out (its .bak is read instead)."""


def encode(entries: Sequence[Entry]) -> bytes:
    lines = "".join(f"{epoch}-{start}\n" for epoch, start in entries)
    crc = zlib.crc32(lines.encode()) & 0x7FFFFFFF
    return f"{len(entries)}\n{crc}\n{lines}".encode()


def decode(data: bytes) -> list[Entry]:
    """The entries of a file's bytes; EpochFileError if they do not check out. Lines that are
    not "epoch-start" are skipped, as the Java serializer skips them (and then the count
    check fails)."""
    lines = data.decode("utf-8", "replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) < 2:
        raise EpochFileError("fewer than two lines")
    try:
        count, crc = int(lines[0]), int(lines[1])
    except ValueError:
        raise EpochFileError("the count or CRC line is not a number") from None
    entries: list[Entry] = []
    for line in lines[2:]:
        epoch, sep, start = line.partition("-")
        if sep and epoch.isdigit() and start.isdigit():
            entries.append((int(epoch), int(start)))
    if len(entries) != count:
        raise EpochFileError(f"expected {count} entries, found {len(entries)}")
    body = "".join(line + "\n" for line in lines[2:]).encode()
    if crc != NOT_CHECKED and zlib.crc32(body) & 0x7FFFFFFF != crc:
        raise EpochFileError("the entries' CRC does not match")
    return entries


def consistent_point(local: Sequence[Entry], local_end: int, master: Sequence[Entry],
                     master_end: int) -> int:
    """Where a slave's log stops agreeing with its master's (EpochFileCache.findConsistentPoint):
    the newest local epoch the master has with the same start offset; the point is the
    smaller of the two ends of that epoch's range.

    Example: slave {1@0, 2@5000} ending at 9000, master {1@0, 2@5000, 3@8000} ending at 12000:
    epoch 2 matches; it ends at 9000 here and at 8000 there, so the slave keeps [0, 8000).

    Where RocketMQ gives up (no epoch in common: -1, a person repairs the slave), the slave's
    log is cut where its oldest epoch starts: every byte it holds came from masters this one
    never followed, so none of it was acknowledged by a clean election's chain (a slave
    admitted to the in-sync set before its first transfer, then elected, leaves such a
    peer). An empty log needs no cut (0); a log without an epoch file cannot be judged (-1)."""
    if local_end == 0:
        return 0
    if not local:
        return -1
    master_ranges = {e: (s, end) for e, s, end in ranges(master, master_end)}
    for epoch, start, end in reversed(ranges(local, local_end)):
        theirs = master_ranges.get(epoch)
        if theirs is not None and theirs[0] == start:
            return min(end, theirs[1])
    log.warning("no epoch in common with the master (here %s, there %s): the log is cut at "
                "%d, where its oldest epoch starts", list(local), list(master), local[0][1])
    return local[0][1]


def ranges(entries: Sequence[Entry], end: int) -> list[tuple[int, int, int]]:
    """(epoch, start, end) of each entry: a range ends where the next one starts."""
    out = []
    for i, (epoch, start) in enumerate(entries):
        out.append((epoch, start, entries[i + 1][1] if i + 1 < len(entries) else end))
    return out


class EpochFile:
    """The entries of one store's epoch file, in memory and on disk."""

    def __init__(self, root: Path) -> None:
        self.path = epoch_file(root)
        self.entries: list[Entry] = self._read()

    @property
    def last_epoch(self) -> int:
        """The newest epoch, -1 when there is none (EpochFileCache.lastEpoch)."""
        return self.entries[-1][0] if self.entries else -1

    def start_of(self, epoch: int) -> int | None:
        for e, start in self.entries:
            if e == epoch:
                return start
        return None

    def at(self, offset: int, log_end: int) -> tuple[int, int, int] | None:
        """(epoch, start, end) of the range holding ``offset`` (findEpochEntryByOffset); the
        last range also holds the log's end, where the next bytes go."""
        found = ranges(self.entries, log_end)
        for epoch, start, end in found:
            if start <= offset < end:
                return epoch, start, end
        if found and offset == log_end:
            return found[-1]
        return None

    def append(self, epoch: int, start: int) -> bool:
        """Add an epoch that starts at ``start``; False (logged) unless it is newer than the
        last one and starts no earlier (EpochFileCache.appendEntry). Java also refuses one
        that starts where the last one does, so a master whose previous epoch wrote nothing
        serves on under that epoch's entry; here both stay, the older one an empty range, and
        the file names the epoch that writes (the heartbeat's epoch, which the lease checks)."""
        if self.entries:
            last_epoch, last_start = self.entries[-1]
            if (last_epoch, last_start) == (epoch, start):
                return True  # known already (a slave's link sees it again after a reconnect)
            if last_epoch >= epoch or last_start > start:
                log.error("epoch %d@%d is not after the last entry %d@%d: not appended", epoch,
                          start, last_epoch, last_start)
                return False
        self.entries.append((epoch, start))
        self._write()
        return True

    def truncate_from_epoch(self, epoch: int) -> None:
        """Drop the entries of ``epoch`` and later (truncateSuffixByEpoch)."""
        self._keep([e for e in self.entries if e[0] < epoch])

    def truncate_from_offset(self, offset: int) -> None:
        """Drop the entries that start at or after ``offset`` (truncateSuffixByOffset): the
        log was cut there."""
        self._keep([e for e in self.entries if e[1] < offset])

    def truncate_before_offset(self, offset: int, log_end: int) -> None:
        """Drop the entries whose range ends at or before ``offset`` (truncatePrefixByOffset):
        retention deleted the log below it."""
        self._keep([(e, s) for e, s, end in ranges(self.entries, log_end) if end > offset])

    def _keep(self, entries: list[Entry]) -> None:
        if entries != self.entries:
            self.entries = entries
            self._write()

    def _read(self) -> list[Entry]:
        for candidate in (self.path, backup_of(self.path)):
            try:
                data = candidate.read_bytes()
            except FileNotFoundError:
                continue
            try:
                entries = decode(data)
            except EpochFileError as exc:
                log.warning("%s: %s; trying its backup", candidate, exc)
                continue
            return entries  # valid, even with no entry (a log truncated to nothing)
        return []

    def _write(self) -> None:
        # CheckpointFile.write writes nothing for no entries: the old file stays. An empty
        # list is still written here, so that a truncated epoch never comes back at a restart.
        write_atomic(self.path, encode(self.entries))
