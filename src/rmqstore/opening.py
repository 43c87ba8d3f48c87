"""What opening a store checks first: that no other process has it open alone (RocketMQ's
`lock` file), and that its files were written with the sizes the config asks for."""

from __future__ import annotations

import fcntl
import itertools
import os
from pathlib import Path

from . import filenames
from .config import StoreConfig
from .errors import StoreLayoutError, StoreLockedError

PAGE_BYTES = 4096
CQ_UNIT_BYTES = 20
CQ_SAMPLE = 16  # consume-queue files check_sizes looks at


def check_sizes(root: Path, config: StoreConfig) -> None:
    """StoreLayoutError if the files under root were written with other sizes than config
    asks for, which would otherwise make every segment read as corrupt: every commit-log
    segment (or every consume-queue file) has one size, a whole number of pages (of units),
    and not the one configured. A lone file of an odd size stays the loader's corruption to
    report."""
    cq_glob = "*/*/" + "[0-9]" * 20
    for name, setting, files, unit, grain in (
            ("commitlog_segment_bytes", "mappedFileSizeCommitLog",
             filenames.commitlog_dir(root, config.commitlog_path).glob("[0-9]" * 20), 1,
             PAGE_BYTES),
            ("consumequeue_units", "mappedFileSizeConsumeQueue / 20",
             # a sample: opening must not cost a stat per idle queue
             itertools.islice(filenames.consumequeue_root(root).glob(cq_glob), CQ_SAMPLE),
             CQ_UNIT_BYTES, CQ_UNIT_BYTES)):
        sizes = {f.stat().st_size for f in files}
        wanted = getattr(config, name) * unit
        if len(sizes) == 1 and (size := sizes.pop()) != wanted and size % grain == 0:
            raise StoreLayoutError(
                f"{root} was written with {name}={size // unit}, not {wanted // unit}: "
                f"open it with that size ({setting}), or use another directory")


def take_lock(path: Path) -> int:
    """RocketMQ's `lock` file: an exclusive lock held while the store is open."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StoreLockedError(f"{path.parent} is open in another process (processes share "
                               f"a store when each opens it with shared=True)") from None
    os.pwrite(fd, b"lock", 0)
    return fd
