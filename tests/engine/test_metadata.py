"""Config files (config/*.json): the order of the syscalls that makes a replace durable.

A power loss can keep a rename and lose the data of the file renamed (ext4 without
auto_da_alloc, xfs), or keep neither: the new content must be fsynced before the rename points
the name at it, and the directory fsynced after the rename, before write_json returns."""

from __future__ import annotations

import os

import pytest

from rmqstore.filenames import backup_of, temp_of
from rmqstore.metadata import read_json, write_json


@pytest.fixture
def syscalls(monkeypatch):
    """The syncs and renames made, in order: ("sync", path, content) and ("replace", src, dst),
    content being the file's bytes at the sync (None for a directory)."""
    events: list[tuple] = []

    def syncing(real):
        def sync(fd: int) -> None:
            real(fd)
            path = os.readlink(f"/proc/self/fd/{fd}")
            content = None
            if not os.path.isdir(path):
                with open(f"/proc/self/fd/{fd}", "rb") as f:
                    content = f.read()
            events.append(("sync", path, content))
        return sync

    def replacing(real):
        def replace(src, dst) -> None:
            real(src, dst)
            events.append(("replace", os.fspath(src), os.fspath(dst)))
        return replace

    for name in ("fsync", "fdatasync"):
        monkeypatch.setattr(os, name, syncing(getattr(os, name)))
    for name in ("replace", "rename"):
        monkeypatch.setattr(os, name, replacing(getattr(os, name)))
    return events


@pytest.mark.parametrize("existing", [False, True], ids=["new", "replacing"])
def test_content_fsynced_before_the_rename_and_the_directory_after(tmp_path, syscalls,
                                                                   existing):
    path = tmp_path / "config" / "consumerOffset.json"
    if existing:
        write_json(path, {"counter": 1})
        syscalls.clear()
    write_json(path, {"counter": 2})
    tmp, directory = str(temp_of(path)), str(path.parent)
    assert syscalls == [
        ("sync", tmp, path.read_bytes()),  # the whole new content, under the temporary name
        ("replace", tmp, str(path)),
        ("sync", directory, None),
    ]
    assert read_json(path) == {"counter": 2}
    if existing:
        assert read_json(backup_of(path)) == {"counter": 1}
