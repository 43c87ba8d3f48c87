"""The key-value peers, mapped as research/peers-embedded.md measured them: key = queue id
(4 bytes) + queue offset (8 bytes), big-endian, so that a range scan reads a queue in order."""

from __future__ import annotations

import random
import sqlite3
import struct
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from .systems import Msg
from .workloads import WINDOW_QUEUE

_KEY = struct.Struct(">IQ")
key = _KEY.pack
LMDB_MAP_BYTES = 64 << 30  # a sparse reservation; LMDB fails once the map is full


class Lmdb:
    name = "lmdb"
    role = "peer"
    mapping = ("one env; async rows: sync=False, metasync=False, env.sync(True) at the end; sync "
               "rows: sync=True (every commit fsyncs); put = one write txn per message; batch = "
               "one txn; read = cursor range scan")

    def open(self, root: Path, sync: bool, size: int) -> None:
        import lmdb
        self.env = lmdb.open(str(root), map_size=LMDB_MAP_BYTES, sync=sync, metasync=sync,
                             max_spare_txns=4)

    def put_each(self, msgs: Sequence[Msg]) -> None:
        begin = self.env.begin
        for q, off, body in msgs:
            with begin(write=True) as txn:
                txn.put(key(q, off), body)

    def put_batch(self, queue: int, offset: int, bodies: list[bytes]) -> None:
        with self.env.begin(write=True) as txn:
            put = txn.put
            for j, body in enumerate(bodies):
                put(key(queue, offset + j), body)

    def put_window(self, offset: int, bodies: list[bytes]) -> None:
        self.put_batch(WINDOW_QUEUE, offset, bodies)

    def finish(self) -> None:
        self.env.sync(True)

    def read_in_order(self, counts: list[int], deadline: float, limit: int) -> tuple[int, int]:
        n = nbytes = 0
        with self.env.begin(buffers=False) as txn:
            cur = txn.cursor()
            for q, count in enumerate(counts):
                if not count or not cur.set_range(key(q, 0)):
                    continue
                end = key(q, count)
                for k, v in cur:
                    if k >= end or n >= limit:
                        break
                    nbytes += len(v)
                    n += 1
                    if not n & 1023 and time.perf_counter() >= deadline:
                        return n, nbytes
        return n, nbytes

    def random_handles(self, samples: list[tuple[int, int]], rng: random.Random) -> list:
        return [key(q, off) for q, off in samples]

    def read_random(self, handles: list) -> int:
        with self.env.begin() as txn:
            get = txn.get
            return sum(len(get(k)) for k in handles)

    def close(self) -> None:
        self.env.close()


class RocksDb:
    name = "rocksdb"
    role = "peer"
    mapping = ("rocksdict raw_mode, default options, WAL on; async rows: WriteOptions.sync=False;"
               " sync rows: sync=True; batch = one WriteBatch; end = flush_wal(sync) + memtable "
               "flush; read = iterator from the queue's first key")

    def open(self, root: Path, sync: bool, size: int) -> None:
        import rocksdict
        self.db = rocksdict.Rdict(str(root), options=rocksdict.Options(raw_mode=True))
        self.wo = rocksdict.WriteOptions()
        self.wo.sync = sync
        self._batch = rocksdict.WriteBatch

    def put_each(self, msgs: Sequence[Msg]) -> None:
        put, wo = self.db.put, self.wo
        for q, off, body in msgs:
            put(key(q, off), body, write_opt=wo)

    def put_batch(self, queue: int, offset: int, bodies: list[bytes]) -> None:
        wb = self._batch(raw_mode=True)
        for j, body in enumerate(bodies):
            wb.put(key(queue, offset + j), body)
        self.db.write(wb, write_opt=self.wo)

    def put_window(self, offset: int, bodies: list[bytes]) -> None:
        self.put_batch(WINDOW_QUEUE, offset, bodies)

    def finish(self) -> None:
        self.db.flush_wal(True)
        self.db.flush(True)

    def read_in_order(self, counts: list[int], deadline: float, limit: int) -> tuple[int, int]:
        n = nbytes = 0
        it = self.db.iter()
        for q, count in enumerate(counts):
            it.seek(key(q, 0))
            end = key(q, count)
            while it.valid() and n < limit:
                if it.key() >= end:
                    break
                nbytes += len(it.value())
                n += 1
                it.next()
                if not n & 1023 and time.perf_counter() >= deadline:
                    return n, nbytes
        return n, nbytes

    def random_handles(self, samples: list[tuple[int, int]], rng: random.Random) -> list:
        return [key(q, off) for q, off in samples]

    def read_random(self, handles: list) -> int:
        get = self.db.get
        return sum(len(get(k)) for k in handles)

    def close(self) -> None:
        self.db.close()


class Sqlite:
    name = "sqlite"
    role = "peer"
    mapping = ("WAL; m(q, off, body) PRIMARY KEY(q, off) WITHOUT ROWID; async rows: "
               "synchronous=NORMAL, sync rows: FULL; put = autocommit INSERT; batch = BEGIN / "
               "executemany / COMMIT; read = SELECT ... WHERE q=? ORDER BY off; one connection "
               "per thread")

    def open(self, root: Path, sync: bool, size: int) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.path = str(root / "m.db")
        self.sync = sync
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._conn().execute("CREATE TABLE m(q INTEGER, off INTEGER, body BLOB, "
                             "PRIMARY KEY(q, off)) WITHOUT ROWID")

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={'FULL' if self.sync else 'NORMAL'}")
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    def put_each(self, msgs: Sequence[Msg]) -> None:
        execute = self._conn().execute
        for q, off, body in msgs:
            execute("INSERT INTO m VALUES (?, ?, ?)", (q, off, body))

    def put_batch(self, queue: int, offset: int, bodies: list[bytes]) -> None:
        conn = self._conn()
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO m VALUES (?, ?, ?)",
                         [(queue, offset + j, b) for j, b in enumerate(bodies)])
        conn.execute("COMMIT")

    def put_window(self, offset: int, bodies: list[bytes]) -> None:
        self.put_batch(WINDOW_QUEUE, offset, bodies)

    def finish(self) -> None:
        self._conn().execute("PRAGMA wal_checkpoint(FULL)")

    def read_in_order(self, counts: list[int], deadline: float, limit: int) -> tuple[int, int]:
        n = nbytes = 0
        conn = self._conn()
        for q, count in enumerate(counts):
            rows = conn.execute("SELECT body FROM m WHERE q=? AND off<? ORDER BY off", (q, count))
            for (body,) in rows:
                nbytes += len(body)
                n += 1
                if n >= limit or (not n & 1023 and time.perf_counter() >= deadline):
                    return n, nbytes
        return n, nbytes

    def random_handles(self, samples: list[tuple[int, int]], rng: random.Random) -> list:
        return samples

    def read_random(self, handles: list) -> int:
        execute = self._conn().execute
        sql = "SELECT body FROM m WHERE q=? AND off=?"
        return sum(len(execute(sql, qo).fetchone()[0]) for qo in handles)

    def close(self) -> None:
        for conn in self._conns:
            conn.close()
