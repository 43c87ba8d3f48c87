"""Crash durability: with flush="sync", a message acknowledged to a caller survives kill -9 and
restart, byte for byte, in order; and so does a committed consumer offset. The same rounds
run twice: after a kill alone (the page cache keeps every write: this proves recovery), and
after a kill and a simulated power loss (tests/power_loss.py drops whatever the writer's sync
journal does not show durable: this proves the syncs).

A writer process (tests/crash/writer.py) appends to a store in sync mode and prints an ack line
after each put / put_batch returns. It is SIGKILLed at random moments, many times, on the same
directory. After a crash the store is reopened (crash recovery: the abort file is there) and
checked: every acknowledged message is present with its exact body; every queue is contiguous
from offset 0 and each message is the pure function expected_body(queue, offset) (unacknowledged
tail messages may be there or not, but never as garbage); every record in the commit log passes
its CRC and is referenced by its consume queue exactly once. Some rounds skip the check so that
the writer itself recovers from the crash and keeps writing; its start line proves it did not
lose acknowledged messages either.

Set RMQ_CRASH_SEED to replay a failing run (the seed is in every failure message).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import pytest

import rmqstore
from rmqstore.record import RecordField as F
from tests import power_loss
from tests.crash.writer import CONFIG, GROUP, NQUEUES, TOPIC, expected_body

WRITER = Path(__file__).with_name("writer.py")
PROBE_TOPIC = "probe"

# Longer soak runs: RMQ_CRASH_ROUNDS=500 RMQ_CRASH_BUDGET_S=900 (and a larger --timeout);
# each of the two tests gets the budget.
MAX_ROUNDS = int(os.environ.get("RMQ_CRASH_ROUNDS", 25))
MIN_ROUNDS = min(6, MAX_ROUNDS)  # fewer within the budget: the machine is far too slow
TIME_BUDGET_S = float(os.environ.get("RMQ_CRASH_BUDGET_S", 50))  # the kill loop only
FIRST_ACK_TIMEOUT_S = 20.0
EXIT_TIMEOUT_S = 10.0


def _probe_body(i: int) -> bytes:
    return b"probe:%d" % i


class KillOnly:
    """A SIGKILL and nothing more: the page cache keeps every write."""

    env: dict[str, str] | None = None

    def after_kill(self, store_dir: Path) -> str:
        return ""

    def reopening(self) -> AbstractContextManager[None]:
        return nullcontext()


class PowerLoss(KillOnly):
    """A SIGKILL, then the loss of everything the writers' syncs did not make durable."""

    def __init__(self, journal: Path) -> None:
        self.journal = journal
        self.env = power_loss.env(journal)

    def after_kill(self, store_dir: Path) -> str:
        return str(power_loss.apply(self.journal, store_dir))

    def reopening(self) -> AbstractContextManager[None]:
        """The verifier's own syncs count for the next power loss."""
        return power_loss.journaling(self.journal)


class Writer:
    """One writer.py subprocess and a thread collecting its stdout lines."""

    def __init__(self, store_dir: Path, mode: str, seed: int, log_dir: Path, n: int,
                 env: dict[str, str] | None = None) -> None:
        self.stderr_path = log_dir / f"writer-{n:02d}.stderr"
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(WRITER), str(store_dir), mode, str(seed)],
                stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, env=env)
        self.lines: list[list[str]] = []
        self.started = threading.Event()
        self.first_ack = threading.Event()
        self.partial = b""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for raw in self.proc.stdout:
            if not raw.endswith(b"\n"):  # cannot happen: each line is one os.write
                self.partial = raw
                break
            words = raw.decode().split()
            self.lines.append(words)
            if words[0] == "S":
                self.started.set()
            elif words[0] == "A":
                self.first_ack.set()

    def acks(self) -> int:
        return sum(1 for w in list(self.lines) if w[0] == "A")

    def wait_first_ack(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.first_ack.wait(0.05):
                return True
            if self.proc.poll() is not None:  # died (or exited) before acking anything
                self._reader.join(EXIT_TIMEOUT_S)
                return self.first_ack.is_set()
        return False

    def kill(self) -> int:
        """SIGKILL (if still running); returns the exit status after all output is read."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        rc = self.proc.wait(EXIT_TIMEOUT_S)
        self._reader.join(EXIT_TIMEOUT_S)
        self.proc.stdout.close()
        return rc

    def stderr_tail(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""


def _verify(store_dir: Path, acked: list[int], committed: list[int], probes: int, ctx: str,
            crashed: bool) -> int:
    """Reopen the store and check it (see the module docstring). crashed: a writer had it open
    when killed, so the abort marker is there and the open runs crash recovery. Then put one
    probe message (writes work after recovery) and close cleanly. Returns the new probe
    count."""
    if crashed:
        assert (store_dir / "abort").exists(), f"{ctx}: no abort marker after kill -9"
    with rmqstore.open(store_dir, **CONFIG) as store:
        in_queues: dict[int, tuple[str, int, int]] = {}
        for q in range(NQUEUES):
            hi = store.max_offset(TOPIC, q)
            assert hi >= acked[q], (
                f"{ctx}: queue {q} holds {hi} messages but {acked[q]} were acknowledged")
            offset = store.committed_offset(GROUP, TOPIC, q) or 0
            assert committed[q] <= offset <= hi, (
                f"{ctx}: queue {q}: committed offset {offset}, but {committed[q]} was "
                f"acknowledged (and {hi} messages are stored)")
            assert store.min_offset(TOPIC, q) == 0, ctx
            off = 0
            last_phys = -1
            for _ in range(hi + 1):  # bounded: each round reads at least one message
                if off >= hi:
                    break
                res = store.get(TOPIC, q, off, 64)
                assert res.messages, (
                    f"{ctx}: queue {q}: nothing at offset {off} < {hi} ({res.status})")
                for m in res.messages:
                    assert (m.queue_id, m.queue_offset) == (q, off), (
                        f"{ctx}: queue {q}: expected offset {off}, found {m!r}")
                    body = m.body
                    if body != expected_body(q, off):
                        what = "ACKNOWLEDGED " if off < acked[q] else ""
                        pytest.fail(f"{ctx}: {what}message {q}/{off} at commit-log offset "
                                    f"{m.commitlog_offset} differs: {len(body)} bytes "
                                    f"{body[:40]!r}... expected {len(expected_body(q, off))} "
                                    f"bytes {expected_body(q, off)[:40]!r}...")
                    assert m.commitlog_offset > last_phys, f"{ctx}: {q}/{off} out of log order"
                    last_phys = m.commitlog_offset
                    in_queues[m.commitlog_offset] = (TOPIC, q, off)
                    off += 1
                assert res.next_offset == off, ctx
            assert off == hi, ctx
        assert store.max_offset(PROBE_TOPIC, 0) == probes, ctx
        if probes:
            res = store.get(PROBE_TOPIC, 0, 0, probes)
            assert [m.body for m in res.messages] == [_probe_body(i) for i in range(probes)], ctx
            for m in res.messages:
                in_queues[m.commitlog_offset] = (PROBE_TOPIC, 0, m.queue_offset)

        # The commit log itself: every record passes its CRC, belongs to a queue, and every
        # queue entry points at a record of the walk (no orphans, no garbage, no half records).
        log = store.commitlog
        seen = 0
        for _, fields in log.records(log.min_offset, log.max_offset):
            phys = fields[F.PHYSICAL_OFFSET]
            assert log.parse_at(phys, check_crc=True) is not None, f"{ctx}: bad CRC at {phys}"
            m = store.get_by_commitlog_offset(phys)
            assert in_queues.get(phys) == (m.topic, m.queue_id, m.queue_offset), (
                f"{ctx}: record at {phys} ({m!r}) is not the one its queue points at")
            seen += 1
        assert seen == len(in_queues), (
            f"{ctx}: commit log walk found {seen} records, the queues reference {len(in_queues)}")

        # Writes work after recovery, and are readable.
        r = store.put(PROBE_TOPIC, _probe_body(probes))
        assert r.status == rmqstore.PutStatus.PUT_OK, ctx
        assert r.queue_offset == probes, ctx
        got = store.get(PROBE_TOPIC, 0, probes, 1)
        assert [m.body for m in got.messages] == [_probe_body(probes)], ctx
    assert not (store_dir / "abort").exists(), f"{ctx}: clean close left the abort file"
    return probes + 1


def _collect(w: Writer, rc: int, acked: list[int], committed: list[int],
             ctx: str) -> tuple[int, int]:
    """Check one killed writer's output; update acked and committed. Returns (acks,
    timeouts)."""
    assert rc in (-signal.SIGKILL, 0), f"{ctx}: writer exited with {rc}\n{w.stderr_tail()}"
    assert not w.partial, f"{ctx}: torn output line {w.partial!r}"
    acks = timeouts = 0
    for words in w.lines:
        kind = words[0]
        if kind == "E":
            pytest.fail(f"{ctx}: writer reported {' '.join(words[1:])}\n{w.stderr_tail()}")
        if kind == "S":
            start = list(map(int, words[1:]))
            for q in range(NQUEUES):
                assert start[q] >= acked[q], (
                    f"{ctx}: writer reopened the crashed store with {start[q]} messages in "
                    f"queue {q}, but {acked[q]} had been acknowledged")
        elif kind == "A":
            q, off, n = map(int, words[1:])
            acked[q] = max(acked[q], off + n)
            acks += 1
        elif kind == "O":
            q, off = map(int, words[1:])
            committed[q] = max(committed[q], off)
        elif kind == "T":
            timeouts += 1
    return acks, timeouts


def _crash_rounds(tmp_path: Path, crash: KillOnly) -> None:
    """Writers killed at random moments on one store, each kill followed by `crash`'s loss;
    every acknowledged message and committed offset checked (see the module docstring)."""
    seed = int(os.environ.get("RMQ_CRASH_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    store_dir = tmp_path / "store"
    acked = [0] * NQUEUES
    committed = [0] * NQUEUES
    probes = 0
    rounds = verified = acks = timeouts = 0
    alive: list[Writer] = []
    deadline = time.monotonic() + TIME_BUDGET_S
    needs_verify = crashed = False
    lost = ""
    try:
        for rnd in range(MAX_ROUNDS):
            if time.monotonic() > deadline:
                break
            mode = rng.choice(("single", "threads"))
            ctx = f"seed {seed} round {rnd} ({mode})"
            w = Writer(store_dir, mode, rng.randrange(1 << 30), tmp_path, rnd, crash.env)
            alive.append(w)
            if rng.random() < 0.15:
                # Anywhere from interpreter start-up through open and crash recovery.
                time.sleep(rng.uniform(0.0, 0.3))
            else:
                assert w.wait_first_ack(FIRST_ACK_TIMEOUT_S), (
                    f"{ctx}: writer never acknowledged (rc {w.proc.poll()}), "
                    f"output {w.lines[-5:]}\n{w.stderr_tail()}")
                time.sleep(rng.uniform(0.05, 0.4))
            rc = w.kill()
            alive.remove(w)
            a, t = _collect(w, rc, acked, committed, ctx)
            lost = crash.after_kill(store_dir)
            acks += a
            timeouts += t
            rounds += 1
            crashed = crashed or w.started.is_set()
            needs_verify = True
            if rng.random() < 0.7:  # else the next writer recovers the crashed store itself
                with crash.reopening():
                    probes = _verify(store_dir, acked, committed, probes, f"{ctx}, {lost}",
                                     crashed)
                crashed = False
                verified += 1
                needs_verify = False
        if needs_verify:
            with crash.reopening():
                probes = _verify(store_dir, acked, committed, probes,
                                 f"seed {seed} final, {lost}", crashed)
            verified += 1
    finally:
        for w in alive:
            w.kill()
    assert rounds >= MIN_ROUNDS, f"seed {seed}: only {rounds} rounds in {TIME_BUDGET_S} s"
    assert sum(acked) > 0 and acks > 0, f"seed {seed}: nothing was ever acknowledged"
    assert sum(committed) > 0, f"seed {seed}: no consumer offset was ever committed"
    print(f"seed {seed}: {rounds} kills, {verified} verifications, {acks} acks, "
          f"{sum(acked)} acknowledged messages, {timeouts} flush timeouts")


@pytest.mark.timeout(int(TIME_BUDGET_S) + 100)  # the loop, then one verification
def test_acknowledged_messages_survive_kill9(tmp_path):
    _crash_rounds(tmp_path, KillOnly())


@pytest.mark.timeout(int(TIME_BUDGET_S) + 100)
def test_acknowledged_messages_survive_power_loss(tmp_path):
    _crash_rounds(tmp_path, PowerLoss(tmp_path / "sync-journal"))


@pytest.mark.timeout(60)
def test_second_open_while_writer_runs_is_refused(tmp_path):
    store_dir = tmp_path / "store"
    w = Writer(store_dir, "threads", 7, tmp_path, 0)
    try:
        assert w.wait_first_ack(FIRST_ACK_TIMEOUT_S), w.stderr_tail()
        with pytest.raises(rmqstore.StoreLockedError):
            rmqstore.open(store_dir, **CONFIG)
        with pytest.raises(rmqstore.StoreLockedError):  # any configuration, same answer
            rmqstore.open(store_dir, flush="async", background=False)
        # The refused open disturbed nothing: the writer keeps acknowledging.
        before = w.acks()
        deadline = time.monotonic() + 10
        while w.acks() <= before + 5 and time.monotonic() < deadline and w.proc.poll() is None:
            time.sleep(0.02)
        assert w.proc.poll() is None, w.stderr_tail()
        assert w.acks() > before + 5
    finally:
        rc = w.kill()
    acked = [0] * NQUEUES
    committed = [0] * NQUEUES
    _collect(w, rc, acked, committed, "lock test")
    assert sum(acked) > 0
    _verify(store_dir, acked, committed, 0, "lock test", crashed=True)
