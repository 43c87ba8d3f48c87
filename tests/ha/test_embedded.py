"""An embedded store feeding a hot standby in another process, no broker: the master runs
HAService on a thread of its own (rmqstore.ha.Background), the standby is tests/ha/follower.py.
The standby's files equal the master's, and SYNC waits from application threads end once the
standby holds the bytes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import rmqstore
from rmqstore.ha import Background, HAConfig, HAService
from tests.log_digest import log_digest

CFG = dict(commitlog_segment_bytes=1 << 20, consumequeue_units=1000, index_slots=1000,
           index_entries=8000)
FOLLOWER = Path(__file__).with_name("follower.py")


class Follower:
    def __init__(self, root: Path, master: str) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        self.proc = subprocess.Popen([sys.executable, str(FOLLOWER), str(root), master,
                                      json.dumps(CFG)], stdout=subprocess.PIPE, text=True,
                                     env=env)
        self.dispatched = -1
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip().isdigit():
                self.dispatched = int(line)

    def wait_for(self, offset: int, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.dispatched < offset:
            assert self.proc.poll() is None, "the follower exited"
            assert time.monotonic() < deadline, (self.dispatched, offset)
            time.sleep(0.02)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        finally:
            self.proc.kill()


def test_an_embedded_store_feeds_a_standby_in_another_process(tmp_path) -> None:
    master = rmqstore.open(tmp_path / "m", **CFG)
    try:
        for i in range(500):
            master.put("Orders", os.urandom(200), tags="new", keys=[f"order-{i}"])
        with Background(HAService(master, "127.0.0.1", 0, HAConfig(slave_timeout_ms=5000))) as ha:
            follower = Follower(tmp_path / "standby", "127.0.0.1:%d" % ha.service.address[1])
            try:
                follower.wait_for(master.commitlog.max_offset)  # caught up
                # the application's own threads write and wait for the standby, as a
                # SYNC_MASTER would
                failures: list[int] = []

                def writer(n: int) -> None:
                    for i in range(50):
                        master.put("Orders", b"w%d-%d" % (n, i), keys=[f"w{n}-{i}"])
                        if not ha.service.wait_replicated(master.commitlog.max_offset, 5.0):
                            failures.append(i)

                threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(60)
                assert not failures
                follower.wait_for(master.commitlog.max_offset)
            finally:
                assert follower.stop() == 0
        standby = rmqstore.open(tmp_path / "standby", replica=True, **CFG)
        try:
            assert standby.commitlog.min_offset == 0
            assert log_digest(standby, 0) == log_digest(master, 0)
            assert standby.max_offset("Orders", 0) == master.max_offset("Orders", 0) == 700
            assert [m.body for m in standby.query("Orders", "w3-49")] == [b"w3-49"]
        finally:
            standby.close()
    finally:
        master.close()
