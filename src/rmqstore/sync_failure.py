"""What a failed sync of the commit log leaves behind, and how the next open deals with it.

When fdatasync fails, Linux marks the pages it could not write clean: the next fdatasync
succeeds without writing them, so a store that went on would acknowledge records behind a
hole in the log ("fsyncgate", PostgreSQL 2018). Writing the pages again does not mend it on
ext4: the blocks of a preallocated segment stay unwritten extents, which read as zeros after
a power loss however often the page is rewritten (tests/crash/test_failed_sync.py shows both
on a real disk). So, as PostgreSQL does, the store stops: it takes no writes and acknowledges
no sync from the first failure on, and leaves this mark with the offset up to which the log
was durable. The next open cuts the log there before anything else (recovery.py), which
punches the blocks after it out of the segment and drops its cached pages, and removes the
mark once the cut is durable. Records past the mark were never acknowledged as durable.
In a shared store the control file's sync_failed word stops the other processes too
(shared/control.py): a file reports a failed write-back once, and one opened after it never.

The mark: one line, the decimal commit-log offset, written atomically (metadata.write_atomic).
"""

from __future__ import annotations

from pathlib import Path

from . import filenames, sync_journal
from .metadata import write_atomic


def mark(root: Path, durable: int) -> None:
    """Leave the mark: the commit log is durable up to ``durable`` and must end there. A mark
    already there is kept (the earliest failure bounds it); OSError if it cannot be written."""
    path = filenames.sync_failed_file(root)
    if path.exists():
        return
    write_atomic(path, b"%d\n" % durable)


def read(root: Path) -> int | None:
    """The offset a mark gives, or None without one. A mark that does not parse is an error:
    the store would otherwise keep bytes it cannot vouch for."""
    path = filenames.sync_failed_file(root)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"{path}: not a commit-log offset: {text[:40]!r}") from None


def clear(root: Path) -> None:
    """The cut is durable: the mark goes."""
    filenames.sync_failed_file(root).unlink(missing_ok=True)
    # durable before the log takes a write: a mark back after a crash would cut it again
    sync_journal.fsync_dir(root)
