"""The syncs of the store's files, and a journal of what each one made durable, for tests
that simulate a power loss (tests/power_loss.py reads it).

A SIGKILL leaves the page cache intact, so a kill -9 test proves recovery, not durability.
LevelDB's fault-injection tests (google/leveldb:db/fault_injection_test.cc) drop whatever was
not synced before they reopen; to know what that is, the syncs go through the functions below,
and each one, when the journal is on, appends what it made durable after the sync returned
and before its caller goes on to acknowledge anything that depends on it. A record therefore
never claims a sync that did not happen: leave out a sync and its record goes with it.

Off unless RMQSTORE_SYNC_JOURNAL names a file when this module is imported (a test's child
processes), or a test calls start(path) in its own process. Off, a function here costs its
sync plus one flag test, and the notes (created, synced_upto) are behind `if ON:` at their
call sites.

One JSON object per line, each written with one os.write on an O_APPEND descriptor, so lines
from several threads and processes never interleave; a kill in mid-write can leave a torn last
line, which readers drop (its sync was never acknowledged). Paths are absolute.

    {"op": "created", "path": P}            a new zero-filled segment: none of it durable yet
    {"op": "upto", "path": P, "n": N}       the first N bytes of P are durable (append-only)
    {"op": "cut", "path": P, "n": N}        P is durable and holds only zeros past N
    {"op": "whole", "path": P, "ino": I, "data": B64}
                                            inode I (P's) durably holds exactly these bytes
    {"op": "replace", "src": S, "dst": D, "ino": I, "was": W}
                                            S (inode I) renamed over D (inode W before, or
                                            null): not durable until a "dir" of D's directory
    {"op": "dir", "path": P}                P's entries (the renames in it) are durable

An inode I is [st_dev, st_ino].
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable
from pathlib import Path

from . import _native

ENV = "RMQSTORE_SYNC_JOURNAL"

ON = False  # journaling: read at every call, so start() and stop() take effect at once
_fd = -1


def start(path: str | os.PathLike) -> None:
    """Append records to the journal at path from now on (created if missing)."""
    global ON, _fd
    stop()
    _fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    ON = True


def stop() -> None:
    global ON, _fd
    ON = False
    if _fd >= 0:
        os.close(_fd)
        _fd = -1


# -- the syncs ---------------------------------------------------------------------------------
def fdatasync_upto(fd: int, path: Path, length: int) -> None:
    """fdatasync an append-only file of which `length` bytes were written before the call."""
    os.fdatasync(fd)
    if ON:
        _append({"op": "upto", "path": _abs(path), "n": length})


def msync_upto(mapping, path: Path, synced: int, length: int) -> None:
    """msync [synced, length) of a mapped append-only file whose first `synced` bytes were
    durable already (a _native.Mapping, which needs no descriptor)."""
    mapping.msync(synced, length)
    if ON:
        _append({"op": "upto", "path": _abs(path), "n": length})


def syncfs_upto(root: Path, lengths: Iterable[tuple[Path, int]]) -> None:
    """syncfs the file system holding root: one call makes everything written to it durable,
    among it the first n bytes of each append-only (path, n) given (written before the call),
    where thousands of fdatasyncs would each wait for the disk."""
    _on_directory(root, _native.syncfs)
    if ON:
        for path, n in lengths:
            _append({"op": "upto", "path": _abs(path), "n": n})


def fdatasync_cut(fd: int, path: Path, length: int) -> None:
    """fdatasync an append-only file just truncated to `length` bytes (zeros past them)."""
    os.fdatasync(fd)
    if ON:
        _append({"op": "cut", "path": _abs(path), "n": length})


def fdatasync_whole(fd: int, path: Path) -> None:
    """fdatasync a small file rewritten in place (a checkpoint)."""
    os.fdatasync(fd)
    if ON:
        _append_whole(fd, path)


def fsync_whole(fd: int, path: Path) -> None:
    """fsync a small file written whole (a config file's temporary, before its rename)."""
    os.fsync(fd)
    if ON:
        _append_whole(fd, path)


def fsync_dir(path: Path) -> None:
    """fsync a directory: the renames into it become durable."""
    _on_directory(path, os.fsync)
    if ON:
        _append({"op": "dir", "path": _abs(path)})


def replace(src: Path, dst: Path) -> None:
    """os.replace; durable once dst's directory is fsynced (fsync_dir)."""
    if not ON:
        os.replace(src, dst)
        return
    ino, was = _inode(src), _inode(dst)
    os.replace(src, dst)
    _append({"op": "replace", "src": _abs(src), "dst": _abs(dst), "ino": ino, "was": was})


# -- notes of syncs made elsewhere (callers test ON first) --------------------------------------
def created(path: Path) -> None:
    """A new segment file: whatever an older file of that name made durable is gone."""
    _append({"op": "created", "path": _abs(path)})


def synced_upto(path: Path, length: int) -> None:
    """A sync made on another thread (the native syncer) made `length` bytes of path durable:
    recorded when its completion is seen, which is after the sync itself (conservative)."""
    _append({"op": "upto", "path": _abs(path), "n": length})


def native_upto(path: Path) -> tuple[int, bytes]:
    """For a native sync of path that journals itself (shared_commit.c): the journal's
    descriptor (-1: off) and its "upto" record up to the length, which the C appends with "}"
    and a newline."""
    fd = _fd
    if fd < 0:
        return -1, b""
    prefix = json.dumps({"op": "upto", "path": _abs(path), "n": 0})[:-len("0}")].encode()
    if len(prefix) > NATIVE_PREFIX_MAX:
        return -1, b""  # the sync goes through Python then
    return fd, prefix


NATIVE_PREFIX_MAX = 4096  # shared_commit.c's line buffer


# -- internals ---------------------------------------------------------------------------------
def _on_directory(path: Path, sync) -> None:
    """sync(fd) on a descriptor of the directory path, held for the call."""
    fd = os.open(path, os.O_RDONLY)
    try:
        sync(fd)
    finally:
        os.close(fd)


def _append(record: dict) -> None:
    fd = _fd
    if fd >= 0:  # stop() may have run on another thread since ON was read
        os.write(fd, (json.dumps(record) + "\n").encode())


def _append_whole(fd: int, path: Path) -> None:
    st = os.fstat(fd)
    with open(f"/proc/self/fd/{fd}", "rb") as f:  # the same inode, also when fd is write-only
        data = f.read()
    _append({"op": "whole", "path": _abs(path), "ino": [st.st_dev, st.st_ino],
             "data": base64.b64encode(data).decode("ascii")})


def _inode(path: Path) -> list[int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return [st.st_dev, st.st_ino]


def _abs(path: Path) -> str:
    return os.path.abspath(path)


if os.environ.get(ENV):
    start(os.environ[ENV])
