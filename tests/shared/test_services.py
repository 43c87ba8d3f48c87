"""The background services of a shared store run in one process at a time, and another takes
each over when that process dies: the store's housekeeping (here: persisting consumer
offsets), the delay levels and the timer, with real processes and SIGKILL."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import rmqstore
from rmqstore.metadata import read_json
from tests.shared.worker import CONFIG, SERVICES, leads

ROOT = Path(__file__).resolve().parents[2]
TAKEOVER_S = 20.0  # bound for a takeover plus a delivery on a loaded machine


def spawn(store_dir: Path, name: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.shared.worker", "services",
                             str(store_dir), name], cwd=ROOT)


def wait_for(what, timeout_s: float = TAKEOVER_S):
    deadline = time.monotonic() + timeout_s
    while not (found := what()):
        assert time.monotonic() < deadline, f"not within {timeout_s} s"
        time.sleep(0.05)
    return found


def _delivered(store: rmqstore.MessageStore, topic: str, body: bytes) -> bool:
    return _count(store, topic, body) > 0


def _count(store: rmqstore.MessageStore, topic: str, body: bytes) -> int:
    res = store.get(topic, 0, 0, 1000)
    return sum(m.body == body for m in res.messages)


def test_each_service_runs_in_one_process_and_moves_on_its_death(tmp_path: Path) -> None:
    d = tmp_path / "store"
    # this process never runs a service: no housekeeping thread, and it ticks no service
    store = rmqstore.open(d, background=False, **CONFIG)
    procs = {}
    try:
        store.create_topic("D", 1)
        procs = {name: spawn(d, name) for name in ("a", "b")}
        wait_for(lambda: set(SERVICES) <= {s for n in procs for s in leads(d, n)})
        time.sleep(0.5)
        led = {n: set(leads(d, n)) for n in procs}
        assert not led["a"] & led["b"], f"two processes run the same service: {led}"
        leader = "a" if "delay-levels" in led["a"] else "b"
        other = "b" if leader == "a" else "a"
        sched = rmqstore.ScheduleService(store, "1s 2s")  # to put with; never ticked here
        timer = rmqstore.TimerService(store)  # the timer is led elsewhere: files not opened
        assert timer.schedule is None
        sched.put_delayed("D", b"before", 1)
        wait_for(lambda: _delivered(store, "D", b"before"))
        # its progress persisted: the next leader starts past it (a kill between the delivery
        # and that write delivers it again: at least once, as RocketMQ)
        wait_for(lambda: (read_json(sched.path) or {}).get("offsetTable"))

        procs[leader].send_signal(signal.SIGKILL)
        procs[leader].wait(timeout=10)
        sched.put_delayed("D", b"after", 1)
        timer.put("D", b"timed", delay_ms=300)
        store.commit_offset("g", "D", 0, 1)
        wait_for(lambda: set(SERVICES) <= set(leads(d, other)))
        wait_for(lambda: _delivered(store, "D", b"after"))
        wait_for(lambda: _delivered(store, "D", b"timed"))
        offsets = rmqstore.filenames.config_file(d, "consumerOffset.json")
        wait_for(lambda: (read_json(offsets) or {}).get("offsetTable", {}).get("D@g"), 15)
        time.sleep(1.5)  # a second deliverer would have delivered by now
        assert [_count(store, "D", b) for b in (b"before", b"after", b"timed")] == [1, 1, 1]
        timer.close()
        sched.close()
    finally:
        for p in procs.values():
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=10)
        store.close()


def test_retention_in_one_process_is_seen_by_the_others(tmp_path: Path) -> None:
    """The process running the store's services deletes old segments and consume-queue files;
    another process's reads then start at the new minimum and read everything after it."""
    d = tmp_path / "store"
    store = rmqstore.open(d, background=False, **CONFIG)  # never runs the services itself
    proc = None
    try:
        store.create_topic("R", 1)
        bodies = [b"r%05d:" % i + b"x" * 500 for i in range(4000)]  # ~8 segments of 256 KiB
        for i in range(0, len(bodies), 100):
            store.put_batch("R", bodies[i:i + 100], queue_id=0)
        segments = len(list((d / "commitlog").iterdir()))
        assert segments >= 8
        proc = subprocess.Popen([sys.executable, "-m", "tests.shared.worker", "retain", str(d),
                                 "keeper"], cwd=ROOT)
        low = wait_for(lambda: store.min_offset("R", 0))
        assert len(list((d / "commitlog").iterdir())) < segments
        assert store.get("R", 0, 0).status is rmqstore.GetStatus.OFFSET_TOO_SMALL
        got = []
        offset = low
        while (res := store.get("R", 0, offset, 500)).messages:
            got.extend(m.body for m in res.messages)
            offset = res.next_offset
        assert got == bodies[low:]
        assert store.max_offset("R", 0) == len(bodies)
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        store.close()
