"""The machine a run happened on: CPUs, memory, the data directory's file system, software."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sqlite3
from pathlib import Path

LIBRARIES = ("rmqstore", "cffi", "lmdb", "rocksdict", "matplotlib", "rich", "click")


def describe(data_dir: Path) -> dict:
    from .. import _native
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_bytes": _memory_bytes(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "data_dir": str(data_dir),
        "file_system": _file_system(data_dir),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "native_backend": getattr(_native, "backend", "?"),
        "sqlite": sqlite3.sqlite_version,
        "libraries": {name: _version(name) for name in LIBRARIES},
    }


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return None


def _file_system(path: Path) -> dict:
    """The mount holding path (longest matching mount point in /proc/mounts)."""
    path = path.resolve()
    best = {"mount_point": "/", "type": "?", "device": "?"}
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return best
    best_len = -1
    for line in lines:
        parts = line.split()
        if len(parts) < 3:
            continue
        device, mount, fstype = parts[0], parts[1].replace("\\040", " "), parts[2]
        if (path == Path(mount) or Path(mount) in path.parents) and len(mount) > best_len:
            best, best_len = {"mount_point": mount, "type": fstype, "device": device}, len(mount)
    st = os.statvfs(path)
    best["free_bytes"] = st.f_bavail * st.f_frsize
    return best
