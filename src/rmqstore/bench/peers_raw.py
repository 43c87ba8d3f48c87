"""The two reference points that are not stores: the raw floor (what pure Python can append
into an mmap with no index at all) and the disk limit (os.write of the same number of bytes).

Both write 20-byte-header records (size, magic, queue offset, queue id) + body, as
research/peers-embedded.md's `mmap` and `oswrite` peers did.
"""

from __future__ import annotations

import mmap
import os
import random
import struct
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from .systems import Msg
from .workloads import WINDOW_QUEUE, body_pool

HEADER_BYTES = 20
MAGIC = 0x0BAD5EED
FLOOR_SEGMENT_BYTES = 1 << 30  # sparse files, like the notes' 1 GiB mmap
CHUNK_BYTES = 1 << 20
PAGE = mmap.PAGESIZE


class MmapFloor:
    name = "floor"
    role = "floor"
    mapping = ("struct.pack_into of header + body into a sparse 1 GiB file mmap (a new file when "
               "full), no index; sync = mmap.flush (msync) of the dirty pages per call; read = "
               "one sequential scan of the log; random read = slice at a record's position")

    def open(self, root: Path, sync: bool, size: int) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root, self.sync, self.size = root, sync, size
        self.rec = struct.Struct(f">iiqi{size}s")
        self.per_seg = FLOOR_SEGMENT_BYTES // self.rec.size
        self.segs: list[mmap.mmap] = []
        self.records = 0
        self._lock = threading.Lock()

    def _reserve(self, n: int) -> int:
        """Claim n record numbers (thread-safe) and map the segments they need."""
        with self._lock:
            r0 = self.records
            self.records += n
            while len(self.segs) <= (r0 + n - 1) // self.per_seg:
                path = self.root / f"{len(self.segs):06d}.log"
                with open(path, "w+b") as f:
                    f.truncate(FLOOR_SEGMENT_BYTES)
                    self.segs.append(mmap.mmap(f.fileno(), FLOOR_SEGMENT_BYTES))
        return r0

    def _msync(self, mm: mmap.mmap, pos: int, length: int) -> None:
        start = pos - pos % PAGE
        mm.flush(start, pos + length - start)

    def put_each(self, msgs: Sequence[Msg]) -> None:
        r0 = self._reserve(len(msgs))
        s, k = divmod(r0, self.per_seg)
        pack, size, recsz = self.rec.pack_into, self.size, self.rec.size
        if k + len(msgs) <= self.per_seg and not self.sync:  # the common case
            mm, pos = self.segs[s], k * recsz
            for q, off, body in msgs:
                pack(mm, pos, size, MAGIC, off, q, body)
                pos += recsz
            return
        for j, (q, off, body) in enumerate(msgs):
            s, k = divmod(r0 + j, self.per_seg)
            pack(self.segs[s], k * recsz, size, MAGIC, off, q, body)
            if self.sync:
                self._msync(self.segs[s], k * recsz, recsz)

    def put_batch(self, queue: int, offset: int, bodies: list[bytes]) -> None:
        r0 = self._reserve(len(bodies))
        pack, size, recsz = self.rec.pack_into, self.size, self.rec.size
        touched: dict[int, list[int]] = {}
        for j, body in enumerate(bodies):
            s, k = divmod(r0 + j, self.per_seg)
            pack(self.segs[s], k * recsz, size, MAGIC, offset + j, queue, body)
            touched.setdefault(s, [k, k])[1] = k
        if self.sync:
            for s, (k0, k1) in touched.items():
                self._msync(self.segs[s], k0 * recsz, (k1 - k0 + 1) * recsz)

    def put_window(self, offset: int, bodies: list[bytes]) -> None:
        self.put_batch(WINDOW_QUEUE, offset, bodies)

    def finish(self) -> None:
        for mm in self.segs:
            mm.flush()

    def read_in_order(self, counts: list[int], deadline: float, limit: int) -> tuple[int, int]:
        n = nbytes = 0
        recsz = self.rec.size
        unpack = struct.Struct(">i").unpack_from
        total = min(self.records, limit)
        for mm in self.segs:
            pos = 0
            for _ in range(min(self.per_seg, total - n)):
                (blen,) = unpack(mm, pos)
                nbytes += len(mm[pos + HEADER_BYTES:pos + HEADER_BYTES + blen])
                pos += recsz
                n += 1
                if not n & 1023 and time.perf_counter() >= deadline:
                    return n, nbytes
        return n, nbytes

    def random_handles(self, samples: list[tuple[int, int]], rng: random.Random) -> list:
        return [divmod(rng.randrange(self.records), self.per_seg) for _ in samples]

    def read_random(self, handles: list) -> int:
        segs, recsz, size = self.segs, self.rec.size, self.size
        total = 0
        for s, k in handles:
            pos = k * recsz + HEADER_BYTES
            total += len(segs[s][pos:pos + size])
        return total

    def close(self) -> None:
        for mm in self.segs:
            mm.close()


class DiskLimit:
    name = "disk"
    role = "limit"
    mapping = ("sequential os.write of the same number of bytes (header + body per message) from "
               "a prepared buffer, 1 MiB writes for async rows; sync rows: os.write of each call's "
               "records + fdatasync; read = os.pread in 1 MiB chunks; random read = os.pread of "
               "one record")

    def open(self, root: Path, sync: bool, size: int) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.sync, self.size = sync, size
        self.recsz = HEADER_BYTES + size
        hdr = struct.Struct(">iiqi")
        pool = body_pool(size)
        self.pool_n = len(pool)
        self.block = memoryview(b"".join(hdr.pack(size, MAGIC, i, i % 4) + b
                                         for i, b in enumerate(pool)))
        self.fd = os.open(root / "limit.log", os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        self.pending = 0  # async rows: records not yet written (write-behind in 1 MiB writes)
        self.next_rec = 0

    def _write(self, n: int) -> None:
        """os.write n records' bytes, taken from the prepared block (cycling)."""
        fd, block, recsz = self.fd, self.block, self.recsz
        while n:
            r = self.next_rec % self.pool_n
            k = min(n, self.pool_n - r, max(1, CHUNK_BYTES // recsz))
            os.write(fd, block[r * recsz:(r + k) * recsz])
            self.next_rec += k
            n -= k

    def put_each(self, msgs: Sequence[Msg]) -> None:
        if self.sync:
            for _ in msgs:
                self._write(1)
                os.fdatasync(self.fd)
            return
        self.pending += len(msgs)
        if self.pending * self.recsz >= CHUNK_BYTES:
            self._write(self.pending)
            self.pending = 0

    def put_batch(self, queue: int, offset: int, bodies: list[bytes]) -> None:
        if self.sync:
            self._write(len(bodies))
            os.fdatasync(self.fd)
        else:
            self.put_each(bodies)  # only the count matters

    def put_window(self, offset: int, bodies: list[bytes]) -> None:
        self.put_batch(WINDOW_QUEUE, offset, bodies)

    def finish(self) -> None:
        if self.pending:
            self._write(self.pending)
            self.pending = 0
        os.fdatasync(self.fd)

    def read_in_order(self, counts: list[int], deadline: float, limit: int) -> tuple[int, int]:
        pos, end = 0, min(os.fstat(self.fd).st_size, limit * self.recsz)
        while pos < end and time.perf_counter() < deadline:
            pos += len(os.pread(self.fd, min(CHUNK_BYTES, end - pos), pos))
        n = pos // self.recsz
        return n, n * self.size

    def random_handles(self, samples: list[tuple[int, int]], rng: random.Random) -> list:
        records = os.fstat(self.fd).st_size // self.recsz
        return [rng.randrange(records) * self.recsz for _ in samples]

    def read_random(self, handles: list) -> int:
        fd, recsz = self.fd, self.recsz
        return sum(len(os.pread(fd, recsz, pos)) - HEADER_BYTES for pos in handles)

    def close(self) -> None:
        os.close(self.fd)
