"""RocketMQ's JSON config files (config/*.json): read tolerantly, written atomically.

RocketMQ writes them with fastjson, which leaves integer map keys unquoted ({0:12}); we read that
form and write it back the same way (protocol/fastjson.py), so either broker reads the other's
files. A write goes to
<file>.tmp, is fsynced, the old file is kept as <file>.bak, the tmp is renamed over the file, and
the directory is fsynced (the rename is durable only then); a reader falls back to .bak when the
file is missing or unreadable (ConfigManager.load).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from . import sync_journal
from .filenames import backup_of, temp_of
from .protocol import fastjson

log = logging.getLogger(__name__)


def read_json(path: Path):
    """The file's object, the .bak's when the file is missing or corrupt, or None."""
    for candidate in (path, backup_of(path)):
        try:
            text = candidate.read_text()
        except FileNotFoundError:
            continue
        if not text.strip():
            continue
        try:
            return fastjson.loads(text)
        except ValueError:
            log.warning("%s is not valid JSON; trying its backup", candidate)
    return None


def write_json(path: Path, obj) -> None:
    """Atomic replace: tmp + fsync + rename + directory fsync, the previous content kept as
    .bak. Durable when it returns."""
    write_atomic(path, fastjson.dumps_config(obj).encode())


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """``data`` as the new content of ``path`` (created with ``mode``), as write_json writes
    (config files, the epoch file, the broker identity); OSError leaves ``path`` as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_of(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        sync_journal.fsync_whole(fd, tmp)  # the content is on disk before any name points at it
    finally:
        os.close(fd)
    bak = backup_of(path)
    if path.exists():  # keep the previous content as .bak; path itself never goes missing
        try:
            os.unlink(bak)
        except FileNotFoundError:
            pass
        os.link(path, bak)
    sync_journal.replace(tmp, path)
    sync_journal.fsync_dir(path.parent)  # the rename itself is durable only after this
