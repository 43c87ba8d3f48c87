"""Byte surgery on store files, for recovery tests."""

from __future__ import annotations

import os
from pathlib import Path


def commitlog_segments(root: Path) -> list[Path]:
    return sorted((root / "commitlog").iterdir())


def flip_bit(path: Path, pos: int, bit: int = 0) -> None:
    with open(path, "r+b") as f:
        f.seek(pos)
        byte = f.read(1)[0]
        f.seek(pos)
        f.write(bytes([byte ^ (1 << bit)]))


def zero_range(path: Path, start: int, end: int) -> None:
    with open(path, "r+b") as f:
        f.seek(start)
        f.write(bytes(end - start))


def write_at(path: Path, pos: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(pos)
        f.write(data)


def mark_crashed(root: Path) -> None:
    """Leave the abort marker a killed store leaves."""
    (root / "abort").touch()


def read(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def size(path: Path) -> int:
    return os.path.getsize(path)


def set_sysflag(path: Path, record_pos: int, sysflag: int) -> None:
    """Rewrite the SYSFLAG of the record at record_pos (offset 36; the CRC covers only the
    body, so the record stays valid): how a test plants a body flagged compressed that the
    store's put would refuse."""
    write_at(path, record_pos + 36, sysflag.to_bytes(4, "big"))


def segment_of(root: Path, commitlog_offset: int, segment_bytes: int) -> tuple[Path, int]:
    """(segment file, position in it) of a commit-log offset."""
    return (root / "commitlog" / f"{commitlog_offset // segment_bytes * segment_bytes:020d}",
            commitlog_offset % segment_bytes)
