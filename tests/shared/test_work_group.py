"""Work sharing with real processes: the consumers of one group share a queue's messages, each
handled by one of them; a killed consumer's messages go to the others; a message not
acknowledged within the visibility timeout goes to another consumer."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import rmqstore
from rmqstore.errors import StoreError
from tests.shared.worker import CONFIG, QUEUES, TOPIC, WORK_GROUP, handled

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = 3000


def spawn(role: str, store_dir: Path, name: str, visibility_s: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.shared.worker", role, str(store_dir),
                             name, str(visibility_s)], cwd=ROOT)


@pytest.fixture
def store(tmp_path: Path):
    with rmqstore.open(tmp_path / "store", **CONFIG) as store:
        store.create_topic(TOPIC, QUEUES)
        store.put_batch(TOPIC, [b"job-%d" % i for i in range(MESSAGES)], queue_id=0)
        yield store


def _wait_floor(store: rmqstore.MessageStore, target: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while store.committed_offset(WORK_GROUP, TOPIC, 0) != target:
        assert time.monotonic() < deadline, store.committed_offset(WORK_GROUP, TOPIC, 0)
        time.sleep(0.05)


def test_each_message_handled_once_when_nothing_dies(store: rmqstore.MessageStore) -> None:
    d = store.root
    names = [f"k{i}" for i in range(3)]
    procs = [spawn("work", d, name, 30.0) for name in names]
    _wait_floor(store, MESSAGES, 60)
    for p in procs:
        assert p.wait(timeout=30) == 0
    got = [off for name in names for off in handled(d, name)]
    assert sorted(got) == list(range(MESSAGES)), "a message handled twice, or never"


def test_a_killed_consumers_messages_go_to_the_others(store: rmqstore.MessageStore) -> None:
    d = store.root
    # the visibility timeout is far longer than the test: only the death can free its leases
    holder = spawn("hold", d, "holder", 600.0)
    deadline = time.monotonic() + 30
    while len(handled(d, "holder")) < 5:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    held = handled(d, "holder")
    workers = [spawn("work", d, f"k{i}", 600.0) for i in range(2)]
    time.sleep(0.3)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    _wait_floor(store, MESSAGES, 60)
    for p in workers:
        assert p.wait(timeout=30) == 0
    redone = [off for i in range(2) for off in handled(d, f"k{i}")]
    assert set(held) <= set(redone), "a message the killed consumer held was never handled"
    assert sorted(set(redone)) == list(range(MESSAGES))
    assert len(redone) == MESSAGES, "a message handled twice by live consumers"


def test_unacknowledged_message_goes_to_another_after_the_timeout(
        store: rmqstore.MessageStore) -> None:
    d = store.root
    holder = spawn("hold", d, "holder", 0.5)  # alive, never acknowledging
    try:
        deadline = time.monotonic() + 30
        while not handled(d, "holder"):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        first = handled(d, "holder")[0]
        w = rmqstore.WorkConsumer(store, WORK_GROUP, TOPIC, 0, visibility_timeout_s=30)
        taken = time.monotonic()
        seen = []
        while first not in seen:
            msg = w.get(timeout=5)
            assert msg is not None
            seen.append(msg.queue_offset)
            w.ack(msg)
        assert time.monotonic() - taken < 5
        assert w.stats()["redelivered"] >= 1
        w.close()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)


def test_work_sharing_needs_a_shared_store(tmp_path: Path) -> None:
    single = {k: v for k, v in CONFIG.items() if k != "shared"}
    with rmqstore.open(tmp_path / "s", **single) as store:
        with pytest.raises(StoreError, match="shared=True"):
            rmqstore.WorkConsumer(store, WORK_GROUP, TOPIC, 0)
