"""A disk whose writes really fail, for the sync paths' error handling: ext4 on a loop device
whose backing file lives on a small tmpfs. Every block of the backing file is allocated but
those a test takes away (``starve``: the blocks under part of one file, punched out, and the
tmpfs filled up), so the kernel's write-back of exactly those pages fails (EIO from
fdatasync), the file system's journal and metadata stay writable, and ``feed`` makes room
again. ``remount`` drops the file system's page cache, as a power loss would: what the disk
never got reads as it was.

Needs root, a loop device and mkfs.ext4 (CI has them; elsewhere the tests skip).
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import shutil
import struct
import subprocess
from pathlib import Path

from tests.prerequisites import missing

IMAGE_MIB = 40
FS_IOC_FIEMAP = 0xC020660B
FIEMAP_FLAG_SYNC = 1
EXTENT = struct.Struct("=QQQ16xI12x")  # struct fiemap_extent: logical, physical, length, flags
PAGE = 4096
FALLOC_PUNCH = 0x02 | 0x01  # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE


def _run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True)


def extents(path: Path) -> list[tuple[int, int, int]]:
    """(logical, physical, length) of each extent of path, in bytes (FIEMAP)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        count = 64
        buf = bytearray(struct.pack("=QQIIII", 0, 2**64 - 1, FIEMAP_FLAG_SYNC, 0, count, 0))
        buf += bytes(EXTENT.size * count)
        fcntl.ioctl(fd, FS_IOC_FIEMAP, buf)
        mapped = struct.unpack_from("=I", buf, 20)[0]
        assert EXTENT.size == 56
        return [EXTENT.unpack_from(buf, 32 + EXTENT.size * i)[:3] for i in range(mapped)]
    finally:
        os.close(fd)


class FailingDisk:
    def __init__(self, root: Path) -> None:
        self.ram = root / "ram"
        self.mnt = root / "disk"
        self.image = self.ram / "image"
        self.filler = self.ram / "filler"
        self.loop = ""
        self._mounted: list[Path] = []

    def setup(self) -> None:
        for tool in ("mount", "losetup", "mkfs.ext4", "fallocate"):
            if shutil.which(tool) is None:
                missing(f"{tool} is not installed")
        self.ram.mkdir()
        self.mnt.mkdir()
        res = _run("mount", "-t", "tmpfs", "-o", f"size={IMAGE_MIB + 8}m", "tmpfs", str(self.ram))
        if res.returncode != 0:
            missing(f"cannot mount a tmpfs here: {res.stderr.strip()}")
        self._mounted.append(self.ram)
        with open(self.image, "wb") as f:
            f.truncate(IMAGE_MIB << 20)
        # Nothing left for the kernel to zero later (zeroing a loop device's blocks punches
        # them out of the backing file, and the file system's own writes there would fail).
        lazy = "lazy_itable_init=0,lazy_journal_init=0,nodiscard"
        for cmd in (("mkfs.ext4", "-q", "-F", "-b", str(PAGE), "-E", lazy, str(self.image)),
                    # every block backed, the journal's too: only what starve() takes fails
                    ("fallocate", "-l", f"{IMAGE_MIB}m", str(self.image))):
            res = _run(*cmd)
            assert res.returncode == 0, (cmd, res.stderr)
        res = _run("losetup", "-f", "--show", str(self.image))
        if res.returncode != 0:
            missing(f"no loop device here: {res.stderr.strip()}")
        self.loop = res.stdout.strip()
        self.mount()

    def mount(self) -> None:
        res = _run("mount", "-o", "errors=continue,noinit_itable,nodiscard", self.loop,
                   str(self.mnt))
        assert res.returncode == 0, res.stderr
        self._mounted.append(self.mnt)

    def remount(self) -> None:
        """Unmount and mount again: the page cache goes, what the disk holds stays."""
        self._umount(self.mnt)
        self.mount()

    def starve(self, path: Path, start: int) -> None:
        """Make the write-back of path's pages from byte ``start`` (rounded up to a page)
        fail: their blocks are taken from the backing file and the tmpfs is filled."""
        start = -(-start // PAGE) * PAGE
        libc = ctypes.CDLL(None, use_errno=True)
        img = os.open(self.image, os.O_RDWR)
        try:
            for logical, physical, length in extents(path):
                lo = max(logical, start)
                if lo >= logical + length:
                    continue
                at, n = physical + (lo - logical), logical + length - lo
                rc = libc.fallocate(img, FALLOC_PUNCH, ctypes.c_long(at), ctypes.c_long(n))
                assert rc == 0, os.strerror(ctypes.get_errno())
        finally:
            os.close(img)
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            for chunk in (1 << 16, PAGE):
                while True:
                    try:
                        os.write(fd, bytes(chunk))
                    except OSError:
                        break
        finally:
            os.close(fd)

    def feed(self) -> None:
        """Room again: the next write-backs succeed."""
        self.filler.unlink()

    def _umount(self, path: Path) -> None:
        res = _run("umount", str(path))
        assert res.returncode == 0, res.stderr
        self._mounted.remove(path)

    def teardown(self) -> None:
        if self.mnt in self._mounted:
            _run("umount", "-l", str(self.mnt))
        if self.loop:
            _run("losetup", "-d", self.loop)
        if self.ram in self._mounted:
            _run("umount", "-l", str(self.ram))
        self._mounted.clear()
