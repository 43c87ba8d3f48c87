"""The first touch of a queue after an open recovers it: its last queue file is scanned for
the end of its units. Cold, that file is read in large requests asked for ahead of the scan,
not a page per fault (queue files are mapped MADV_RANDOM: each fault would read 4 KiB, waited
for alone, a thousand of them for 4 MB of units, on the first read of the queue)."""

from __future__ import annotations

import ctypes
import mmap
import os
import resource

import rmqstore

from .test_readahead import drop_files

CFG = dict(index_enable=False, background=False)
UNITS = 200_000  # 4 MB of units in the queue's one file (300,000 units a file)


def test_a_cold_queue_is_recovered_without_a_fault_per_page(tmp_path):
    with rmqstore.open(tmp_path, **CFG) as s:
        s.create_topic("Q", 1)
        for _ in range(UNITS // 1000):
            s.put_batch("Q", [b"m"] * 1000, queue_id=0)
    drop_files(tmp_path / "consumequeue")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_majflt
    with rmqstore.open(tmp_path, **CFG) as s:  # the queue is recovered at open or first touch
        assert s.max_offset("Q", 0) == UNITS  # the queue's recovery: its file scanned
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_majflt - before
    pages = UNITS * 20 // 4096
    print(f"{faults} major faults recovering {pages} pages of units")
    assert faults < pages // 10, f"{faults} major faults for {pages} pages of units"



def _resident_pages(path) -> int:
    """Pages of the file at path in the page cache (mincore(2) on a fresh mapping of it)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    size = os.path.getsize(path)
    vec = ctypes.create_string_buffer((size + mmap.PAGESIZE - 1) // mmap.PAGESIZE)
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if addr == ctypes.c_void_p(-1).value:
            raise OSError(ctypes.get_errno(), "mmap")
        try:
            if libc.mincore(addr, size, vec) != 0:
                raise OSError(ctypes.get_errno(), "mincore")
        finally:
            libc.munmap(addr, size)
    finally:
        os.close(fd)
    return sum(b & 1 for b in vec.raw)


def test_recovering_a_small_queue_asks_for_little_more_than_its_units(tmp_path):
    """A new queue's file is sparse: an ask reaching far past its last unit would fill the
    page cache with its holes' zeros (many queues, each recovered on first touch)."""
    with rmqstore.open(tmp_path, **CFG) as s:
        s.create_topic("Q", 1)
        s.put_batch("Q", [b"m"] * 10, queue_id=0)
    drop_files(tmp_path / "consumequeue")
    with rmqstore.open(tmp_path, **CFG) as s:
        assert s.max_offset("Q", 0) == 10
        qfile = next((tmp_path / "consumequeue" / "Q" / "0").iterdir())
        pages = _resident_pages(qfile)
    assert pages <= 2, f"{pages} pages of a queue file holding 200 bytes of units"
