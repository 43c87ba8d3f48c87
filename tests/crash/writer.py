"""Writer process for the kill -9 and power-loss crash tests (tests/crash/test_kill9.py); with
RMQSTORE_SYNC_JOURNAL in its environment it journals its syncs (rmqstore/sync_journal.py).

    python writer.py STORE_DIR MODE SEED

Opens the store with synchronous flush and appends to NQUEUES queues of TOPIC until it is
killed (or, as a safety net, until MAX_RUN_S pass, when it closes cleanly and exits). The body
stored at (queue, queue offset) is the pure function expected_body(queue, offset), so a
verifier can recompute every message; a restarted writer resumes at each queue's max_offset.

MODE: "single" - one thread, single puts and put_batch calls to random queues;
      "threads" - one thread per queue, all putting concurrently (group commit).

Protocol on stdout, one line per os.write (atomic on a pipe, written only after the call
returned, i.e. after the fdatasync in sync mode):
    S <max0> <max1> ...        the queues' max offsets seen at open (after recovery)
    A <queue> <offset> <count> acknowledged: offsets [offset, offset+count) are durable
    O <queue> <offset>         GROUP's committed offset of queue is durable (commit_offset
                               persists config/consumerOffset.json before returning)
    T <queue> <offset> <count> returned FLUSH_DISK_TIMEOUT (not acknowledged)
    E <text>                   the store handed back something unexpected (the writer exits 3)
    D                          clean exit after MAX_RUN_S
"""

from __future__ import annotations

import hashlib
import os
import random
import sys
import threading
import time

TOPIC = "crash"
GROUP = "crash-group"
NQUEUES = 4
COMMIT_SHARE = 0.1  # of acknowledged writes, followed by a commit of the consumer offset
MAX_RUN_S = 20.0

# Small files so that records and batches cross commit-log and consume-queue segments often;
# tiny index files so that creating one is cheap. background=True (the default) keeps the
# housekeeping thread and the segment pre-allocator running, as in production.
CONFIG = dict(
    flush="sync",
    commitlog_segment_bytes=65536,
    consumequeue_units=64,
    index_slots=256,
    index_entries=2048,
    consumequeue_flush_interval_ms=100,  # checkpoint written often: abnormal recovery may
    consumequeue_flush_thorough_interval_ms=100,  # start past the first segment
    background=True,
)

_FILLER = b"RocketMQ commit log crash test filler. " * 8


def expected_body(queue: int, offset: int) -> bytes:
    """The one body that may ever be stored at (queue, offset). Mostly 1..2000 bytes of
    pseudo-random data; about one in twelve is 4.5..12 KB and partly compressible, so single
    puts of it go through zlib compression."""
    seed = hashlib.blake2b(b"%d/%d" % (queue, offset), digest_size=16).digest()
    prefix = b"%d:%d:" % (queue, offset)
    pick = seed[0] % 12
    if pick == 0:
        n = 4500 + int.from_bytes(seed[1:3], "big") % 7500
        rnd = hashlib.shake_128(seed).digest(n // 2)
        rep = (_FILLER * (n // len(_FILLER) + 1))[: n - n // 2]
        return prefix + rnd + rep
    n = 1 + int.from_bytes(seed[1:3], "big") % 2000
    return prefix + hashlib.shake_128(seed).digest(n)


_out_lock = threading.Lock()


def emit(line: str) -> None:
    data = (line + "\n").encode()
    with _out_lock:
        os.write(1, data)


class Failed(Exception):
    pass


def write_some(store, rng: random.Random, queue: int, next_off: int) -> int:
    """One put or put_batch to queue at next_off; emits the ack; returns the new next_off."""
    import rmqstore

    if rng.random() < 0.55:
        body = expected_body(queue, next_off)
        kw = {}
        r = rng.random()
        if r < 0.2:
            kw["tags"] = "tag%d" % rng.randrange(3)
        elif r < 0.3:
            kw["keys"] = ["k%d" % next_off, "q%d" % queue]
        res = store.put(TOPIC, body, queue_id=queue, **kw)
        if res.queue_id != queue or res.queue_offset != next_off:
            raise Failed(f"put to {queue}: expected offset {next_off}, got {res!r}")
        count = 1
        status = res.status
    else:
        count = rng.choice((1, 2, 3, 5, 8, 13, 21, 40))
        bodies = [expected_body(queue, next_off + i) for i in range(count)]
        res = store.put_batch(TOPIC, bodies, queue_id=queue)
        if res.queue_id != queue or res.first_queue_offset != next_off or len(res) != count:
            raise Failed(f"put_batch to {queue}: expected {count} at {next_off}, got {res!r}")
        status = res.status
    kind = "A" if status == rmqstore.PutStatus.PUT_OK else "T"
    emit(f"{kind} {queue} {next_off} {count}")
    if kind == "A" and rng.random() < COMMIT_SHARE:
        store.commit_offset(GROUP, TOPIC, queue, next_off + count)
        emit(f"O {queue} {next_off + count}")
    return next_off + count


def main() -> int:
    path, mode, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    import rmqstore

    store = rmqstore.open(path, **CONFIG)
    if store.topics.get(TOPIC) is None:
        store.create_topic(TOPIC, NQUEUES)
    start = [store.max_offset(TOPIC, q) for q in range(NQUEUES)]
    emit("S " + " ".join(map(str, start)))
    deadline = time.monotonic() + MAX_RUN_S
    errors: list[str] = []

    def run(queues: list[int], rng: random.Random) -> None:
        nxt = {q: start[q] for q in queues}
        try:
            while time.monotonic() < deadline and not errors:
                q = rng.choice(queues)
                nxt[q] = write_some(store, rng, q, nxt[q])
        except BaseException as exc:  # report, then let main exit non-zero
            errors.append(f"{type(exc).__name__}: {exc}")

    if mode == "single":
        run(list(range(NQUEUES)), random.Random(seed))
    elif mode == "threads":
        threads = [threading.Thread(target=run, args=([q], random.Random(seed * 31 + q)))
                   for q in range(NQUEUES)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    if errors:
        emit("E " + " | ".join(errors).replace("\n", " "))
        os._exit(3)
    store.close()
    emit("D")
    return 0


if __name__ == "__main__":
    sys.exit(main())
