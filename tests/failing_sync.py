"""A commit-log fdatasync that fails when told to (sync_journal.fdatasync_upto patched), as a
disk's failed write-back reports itself, for the sync paths that run in Python."""

from __future__ import annotations

import errno

import pytest

from rmqstore import sync_journal


class FailingSync:
    """Set ``failing`` and every fdatasync of a commit-log segment raises EIO."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.failing = False
        real = sync_journal.fdatasync_upto

        def fdatasync_upto(fd, path, length) -> None:
            if self.failing and path.parent.name == "commitlog":
                raise OSError(errno.EIO, "Input/output error")
            real(fd, path, length)

        monkeypatch.setattr(sync_journal, "fdatasync_upto", fdatasync_upto)
