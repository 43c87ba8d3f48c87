"""Several processes on one store (shared=True), with real processes: writers that put at
once, writers and readers SIGKILLed at random under load, readers woken by another process's
put. Set RMQ_MP_SEED to replay a kill run (the seed is in every failure message)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import rmqstore
from tests.shared.check import check_writers, commitlog_records
from tests.shared.worker import CONFIG, GROUP, QUEUES, TOPIC

ROOT = Path(__file__).resolve().parents[2]
WRITERS = 4
PER_WRITER = int(os.environ.get("RMQ_MP_PER_WRITER", 100_000))
KILL_ROUNDS = int(os.environ.get("RMQ_MP_KILL_ROUNDS", 8))
PROGRESS_TIMEOUT_S = 20.0


def spawn(role: str, store_dir: Path, name: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.shared.worker", role, str(store_dir),
                             name, *args], cwd=ROOT)


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    d = tmp_path / "store"
    with rmqstore.open(d, **CONFIG) as store:
        store.create_topic(TOPIC, QUEUES)
    return d


def test_four_writers_each_message_once_in_order(store_dir: Path) -> None:
    names = [f"w{i}" for i in range(WRITERS)]
    procs = [spawn("writer", store_dir, name, str(PER_WRITER)) for name in names]
    for p in procs:
        assert p.wait(timeout=240) == 0
    with rmqstore.open(store_dir, **CONFIG) as store:
        assert check_writers(store, store_dir, names, dict.fromkeys(names, PER_WRITER)) \
            == WRITERS * PER_WRITER
    # and once no process has it open, a single process recovers the same (a clean close)
    single = {k: v for k, v in CONFIG.items() if k != "shared"}
    with rmqstore.open(store_dir, **single) as store:
        assert store.recovery.skipped == ()
        check_writers(store, store_dir, names, dict.fromkeys(names, PER_WRITER))


def _queued(store_dir: Path) -> int:
    with rmqstore.open(store_dir, **CONFIG) as store:  # never the last: others hold it
        return sum(store.max_offset(TOPIC, q) for q in range(QUEUES))


@pytest.mark.parametrize("end", ["last-closes", "all-killed"])
def test_sigkill_writers_and_readers_under_load(store_dir: Path, end: str) -> None:
    """Writers (async and sync flush) and readers SIGKILLed at random under load: nothing
    acknowledged lost, no offset twice, no deadlock. Then either the last process closes the
    store, or every process is killed too: the next opener recovers it as after a crash."""
    seed = int(os.environ.get("RMQ_MP_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    holder = spawn("idle", store_dir, "holder")  # keeps the store open through every kill
    names: list[str] = []
    writers: dict[str, subprocess.Popen] = {}
    readers: list[subprocess.Popen] = []
    try:
        for _ in range(KILL_ROUNDS):
            while len(writers) < 3:
                name = f"w{len(names)}"
                names.append(name)
                writers[name] = spawn("writer", store_dir, name, "1000000",
                                      rng.choice(("async", "sync")))
            while len(readers) < 2:
                readers.append(spawn("reader", store_dir, "r"))
            time.sleep(rng.uniform(0.2, 0.6))
            victim = rng.choice([*writers, "reader"])
            proc = readers.pop(rng.randrange(len(readers))) if victim == "reader" \
                else writers.pop(victim)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            assert proc.returncode == -signal.SIGKILL, f"seed {seed}: exit {proc.returncode}"
        # no deadlock: the survivors go on writing after every kill (a loaded machine may
        # take seconds to start the last ones)
        before = _queued(store_dir)
        deadline = time.monotonic() + PROGRESS_TIMEOUT_S
        while _queued(store_dir) < before + 100:
            assert time.monotonic() < deadline, f"seed {seed}: writes stopped after the kills"
            time.sleep(0.05)
    finally:
        for proc in [*writers.values(), *readers]:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        if end == "all-killed":
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=10)
    if end == "all-killed":
        assert (store_dir / "abort").exists()
    # all-killed: the first opener, which recovers the store as after a crash
    with rmqstore.open(store_dir, **CONFIG) as store:
        if end == "last-closes":
            holder.send_signal(signal.SIGTERM)  # it closes as it exits: this one is last
            assert holder.wait(timeout=10) == 0
        total = check_writers(store, store_dir, names)
        assert total > 0
    single = {k: v for k, v in CONFIG.items() if k != "shared"}
    with rmqstore.open(store_dir, **single) as store:
        assert store.recovery.skipped == (), f"seed {seed}"
        assert check_writers(store, store_dir, names) == total, f"seed {seed}"
        assert commitlog_records(store) == total


def _woken(store_dir: Path, script: str) -> tuple[float, list[str]]:
    """Run a reader script in another process; once it prints "ready", put one message:
    (seconds from the put to the time it printed, the rest of its line)."""
    with rmqstore.open(store_dir, **CONFIG) as store:
        proc = subprocess.Popen([sys.executable, "-c", script, str(store_dir)], cwd=ROOT,
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "ready"
            time.sleep(0.3)  # let it reach its wait
            sent = time.time()
            store.put(TOPIC, b"wake", queue_id=0)
            line = proc.stdout.readline().split()
            assert proc.wait(timeout=10) == 0
        finally:
            proc.kill()
    return float(line[0]) - sent, line[1:]


def test_a_put_wakes_a_reader_in_another_process(store_dir: Path) -> None:
    """get(timeout) blocks on a futex the writer's release wakes: well within the timeout,
    and without polling (a 10 s timeout would otherwise show)."""
    late, rest = _woken(store_dir, (
        "import sys, time, rmqstore\n"
        "from tests.shared.worker import CONFIG\n"
        f"q = rmqstore.Queue(sys.argv[1], {TOPIC!r}, **CONFIG)\n"
        f"c = q.consumer({GROUP!r})\n"
        "print('ready', flush=True)\n"
        "m = c.get(timeout=10)\n"
        "print(time.time(), m.body.decode(), flush=True)\n"
        "q.close()\n"))
    assert rest == ["wake"]
    assert late < 0.5


def test_a_put_wakes_an_asyncio_reader_in_another_process(store_dir: Path) -> None:
    """The asyncio form: aget() waits off the loop (a ticker keeps running) and wakes at the
    put, as get() does."""
    late, rest = _woken(store_dir, (
        "import asyncio, sys, time, rmqstore\n"
        "from tests.shared.worker import CONFIG\n"
        "async def main():\n"
        f"    q = rmqstore.Queue(sys.argv[1], {TOPIC!r}, **CONFIG)\n"
        f"    c = q.consumer({GROUP!r})\n"
        "    ticks = 0\n"
        "    async def ticker():\n"
        "        nonlocal ticks\n"
        "        while True:\n"
        "            await asyncio.sleep(0.01)\n"
        "            ticks += 1\n"
        "    t = asyncio.create_task(ticker())\n"
        "    print('ready', flush=True)\n"
        "    m = await c.aget(timeout=10)\n"
        "    print(time.time(), m.body.decode(), ticks, flush=True)\n"
        "    t.cancel()\n"
        "    q.close()\n"
        "asyncio.run(main())\n"))
    assert rest[0] == "wake"
    assert late < 0.5
    assert int(rest[1]) >= 5, "the event loop was blocked while waiting"
