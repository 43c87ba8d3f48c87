"""Processes of a shared store, for the tests in this folder and benches/many_procs.py.

    python -m tests.shared.worker ROLE STORE_DIR NAME [COUNT] [FLUSH [GO DELAY_US]]

Every role opens STORE_DIR with CONFIG (shared=True) and runs until it is done or killed:

    writer    puts COUNT messages "NAME:seq" (seq from 0) to TOPIC, queue seq % QUEUES, one put
              at a time, and appends "seq\\n" to STORE_DIR/../acks/NAME once put returned (with
              FLUSH=sync: once the message is durable); exits 0. With GO, once the store is
              open it first writes STORE_DIR/../ready/NAME and waits (at most 60 s) until the
              file GO exists; DELAY_US is its group_commit_delay_us
    reader    consumes queue 0 in group GROUP (Consumer iteration, acks every message) until
              killed; a message out of order exits 3
    work      a consumer of work-sharing group WORK_GROUP on queue 0 (visibility timeout
              COUNT seconds): appends "offset\n" to STORE_DIR/../handled/NAME for each message,
              then acknowledges it; exits 0 after 2 s without a message
    hold      as work, but takes HOLD messages, never acknowledges them, and sleeps until
              killed; each offset taken is appended to STORE_DIR/../handled/NAME
    services  runs the store's housekeeping, a ScheduleService and a TimerService (thread
              runners) until killed; appends "<service>\n" to STORE_DIR/../leads/NAME when
              it starts running one (MessageStore.leads)
    retain    holds the store open, its retention deleting every segment but the last
              (retention_hours ~ 0) ten times a second, until killed
    idle      holds the store open until killed (SIGTERM: closes it, then exits 0)
    flusher   puts one message with flush=sync and, holding the flush mutex as the group
              commit's flusher, waits (at most 60 s) before its fdatasync until the file
              STORE_DIR/../release exists; writes STORE_DIR/../flushing/NAME once it holds the
              mutex; exits 0 once the put returned PUT_OK
    slow-sync as flusher, but it waits after its fdatasync (a long one, which covers only
              what was published before it began)
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import rmqstore

TOPIC = "mp"
QUEUES = 2
GROUP = "mp-readers"
WORK_GROUP = "mp-workers"
HOLD = 5  # messages a holding consumer takes
# Small files: records cross commit-log and consume-queue files often.
CONFIG = dict(shared=True, commitlog_segment_bytes=256 << 10, consumequeue_units=1000,
              index_slots=1000, index_entries=4000, flush_interval_ms=50,
              consumequeue_flush_interval_ms=100)


def _open_log(store_dir: Path, kind: str, name: str) -> int:
    """A process's log of numbers (one os.write per line: a kill tears at most the last)."""
    path = store_dir.parent / kind / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)


def _logged(store_dir: Path, kind: str, name: str) -> list[int]:
    try:
        text = (store_dir.parent / kind / name).read_text()
    except FileNotFoundError:
        return []
    return [int(line) for line in text.split("\n")[:-1]]  # a torn last line is not one


def acked(store_dir: Path, name: str) -> list[int]:
    """The seqs a writer acknowledged."""
    return _logged(store_dir, "acks", name)


def handled(store_dir: Path, name: str) -> list[int]:
    """The queue offsets a work-group consumer handled (or, holding, took)."""
    return _logged(store_dir, "handled", name)


def writer(store_dir: Path, name: str, count: int, flush: str, go: Path | None = None,
           delay_us: int = 200) -> None:
    fd = _open_log(store_dir, "acks", name)
    with rmqstore.open(store_dir, flush=flush, group_commit_delay_us=delay_us,
                       **CONFIG) as store:
        if go is not None:
            os.close(_open_log(store_dir, "ready", name))
            _wait_for(go)
        for seq in range(count):
            result = store.put(TOPIC, b"%s:%d" % (name.encode(), seq), queue_id=seq % QUEUES)
            if result.status is not rmqstore.PutStatus.PUT_OK:
                sys.exit(f"put {seq} answered {result.status}")
            if flush == "sync" and store.durable_offset <= result.commitlog_offset:
                sys.exit(f"sync put {seq} returned before it was durable")
            os.write(fd, b"%d\n" % seq)


def reader(store_dir: Path) -> None:
    last: dict[str, int] = {}
    with rmqstore.Queue(store_dir, TOPIC, **CONFIG) as q, \
            q.consumer(GROUP) as consumer:
        for msg in consumer:
            name, seq = msg.body.decode().rsplit(":", 1)
            if int(seq) <= last.get(name, -1):
                sys.exit(3)
            last[name] = int(seq)
            consumer.ack(msg)


def work(store_dir: Path, name: str, visibility_s: float, acks: bool) -> None:
    fd = _open_log(store_dir, "handled", name)
    with rmqstore.Queue(store_dir, TOPIC, **CONFIG) as q, \
            q.workers(WORK_GROUP, visibility_timeout_s=visibility_s) as w:
        taken = 0
        while acks or taken < HOLD:
            msg = w.get(timeout=2.0 if acks else 3600)
            if msg is None:
                return
            os.write(fd, b"%d\n" % msg.queue_offset)
            taken += 1
            if acks:
                w.ack(msg)
        time.sleep(3600)  # holding: takes no more, not even its own expired leases


SERVICES = ("store", "delay-levels", "timer")


def services(store_dir: Path, name: str) -> None:
    fd = _open_log(store_dir, "leads", name)
    with rmqstore.open(store_dir, **CONFIG) as store:
        sched = rmqstore.ScheduleService(store, "1s 2s")
        timer = rmqstore.TimerService(store)
        sched.start()
        timer.start()
        led: set[str] = set()
        while True:
            for service in SERVICES:
                if service not in led and store._sharing.membership.leading(service):
                    led.add(service)
                    os.write(fd, service.encode() + b"\n")
            time.sleep(0.05)


def leads(store_dir: Path, name: str) -> list[str]:
    try:
        return (store_dir.parent / "leads" / name).read_text().split()
    except FileNotFoundError:
        return []


def retain(store_dir: Path) -> None:
    with rmqstore.open(store_dir, retention_hours=1e-6, clean_interval_ms=100, **CONFIG):
        time.sleep(3600)


def idle(store_dir: Path) -> None:
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # exits through close()
    with rmqstore.open(store_dir, **CONFIG):
        time.sleep(3600)


def flusher(store_dir: Path, name: str, wait_first: bool) -> None:
    with rmqstore.open(store_dir, flush="sync", **CONFIG) as store:
        commit = store._group_commit
        sync = commit._flush_all

        def held_flush() -> int:
            durable = -1 if wait_first else sync()
            os.close(_open_log(store_dir, "flushing", name))
            _wait_for(store_dir.parent / "release")
            return sync() if wait_first else durable

        commit._flush_all = held_flush
        commit._last_segment = lambda: None  # the native wait hands the sync to held_flush
        if store.put(TOPIC, b"flusher", queue_id=0).status is not rmqstore.PutStatus.PUT_OK:
            sys.exit("the flusher's put was not durable")


def _wait_for(path: Path) -> None:
    """Until path exists (at most 60 s)."""
    deadline = time.monotonic() + 60
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)


def main() -> None:
    role, store_dir, name = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    if role == "writer":
        extra = (Path(sys.argv[6]), int(sys.argv[7])) if len(sys.argv) > 7 else ()
        writer(store_dir, name, int(sys.argv[4]), sys.argv[5] if len(sys.argv) > 5 else "async",
               *extra)
    elif role == "reader":
        reader(store_dir)
    elif role in ("work", "hold"):
        work(store_dir, name, float(sys.argv[4]), role == "work")
    elif role == "services":
        services(store_dir, name)
    elif role == "retain":
        retain(store_dir)
    elif role == "idle":
        idle(store_dir)
    elif role in ("flusher", "slow-sync"):
        flusher(store_dir, name, role == "flusher")
    else:
        sys.exit(f"unknown role {role}")


if __name__ == "__main__":
    main()
