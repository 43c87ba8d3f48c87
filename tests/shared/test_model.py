"""A hypothesis model of a shared store run across processes: each step runs in this process
or in one of two agent processes (spawned once, each with the store open), and every answer is
checked against a list per queue. Tiny files: appends from different processes roll the
commit log and the consume queues all the time, so a process often appends after another
rolled (RMQ_STALE) and reads what another wrote."""

from __future__ import annotations

import multiprocessing as mp
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import rmqstore

CONFIG = dict(shared=True, commitlog_segment_bytes=4096, consumequeue_units=8,
              index_slots=64, index_entries=256, background=False)
TOPICS = ("A", "B")
QUEUES = 2
AGENTS = 2


def _answer(store: rmqstore.MessageStore, op: str, args: tuple):
    """One step, as the process owning ``store`` runs it; plain data back."""
    if op == "put":
        topic, qid, body = args
        return store.put(topic, body, queue_id=qid).queue_offset
    if op == "put_batch":
        topic, qid, bodies = args
        return store.put_batch(topic, bodies, queue_id=qid).first_queue_offset
    if op == "get":
        topic, qid, offset, n = args
        return [(m.queue_offset, m.body) for m in store.get(topic, qid, offset, n).messages]
    if op == "max":
        return store.max_offset(*args)
    if op == "commit":
        store.commit_offset(*args)
        return None
    if op == "committed":
        return store.committed_offset(*args)
    if op == "query":
        topic, key = args
        return sorted(m.body for m in store.query(topic, key))
    raise ValueError(op)


def agent(conn) -> None:
    """An agent process: opens the store it is told to, answers steps, until told to stop."""
    store = None
    while True:
        op, args = conn.recv()
        try:
            if op == "open":
                store = rmqstore.open(args[0], **CONFIG)
                out = None
            elif op == "close":
                store.close()
                store = None
                out = None
            elif op == "stop":
                conn.send(("ok", None))
                return
            else:
                out = _answer(store, op, args)
            conn.send(("ok", out))
        except Exception as exc:  # the test process re-raises it
            conn.send(("err", repr(exc)))


class Agents:
    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self.conns, self.procs = [], []
        for _ in range(AGENTS):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=agent, args=(child,), daemon=True)
            p.start()
            self.conns.append(parent)
            self.procs.append(p)

    def call(self, i: int, op: str, *args):
        conn = self.conns[i]
        conn.send((op, args))
        if not conn.poll(60):
            raise TimeoutError(f"agent {i} did not answer {op} within 60 s")
        status, out = conn.recv()
        if status != "ok":
            raise AssertionError(f"agent {i} {op}{args}: {out}")
        return out

    def stop(self) -> None:
        for i in range(AGENTS):
            self.call(i, "stop")
        for p in self.procs:
            p.join(timeout=10)


@pytest.fixture(scope="module")
def agents():
    a = Agents()
    yield a
    a.stop()


class SharedModel(RuleBasedStateMachine):
    agents: Agents

    @initialize()
    def open_all(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="shared-model-"))
        self.store = rmqstore.open(self.dir, **CONFIG)
        for topic in TOPICS:
            self.store.create_topic(topic, QUEUES)
        for i in range(AGENTS):
            self.agents.call(i, "open", str(self.dir))
        self.model: dict[tuple[str, int], list[bytes]] = {}
        self.offsets: dict[tuple[str, str, int], int] = {}
        self.seq = 0

    def run(self, who: int, op: str, *args):
        """who: 0 = this process, 1.. = an agent."""
        if who == 0:
            return _answer(self.store, op, args)
        return self.agents.call(who - 1, op, *args)

    def _body(self, size: int) -> bytes:
        self.seq += 1
        return b"m%d:" % self.seq + b"x" * size

    @rule(who=st.integers(0, AGENTS), topic=st.sampled_from(TOPICS),
          qid=st.integers(0, QUEUES - 1), size=st.integers(0, 600))
    def put(self, who: int, topic: str, qid: int, size: int) -> None:
        body = self._body(size)
        queue = self.model.setdefault((topic, qid), [])
        assert self.run(who, "put", topic, qid, body) == len(queue)
        queue.append(body)

    @rule(who=st.integers(0, AGENTS), topic=st.sampled_from(TOPICS),
          qid=st.integers(0, QUEUES - 1), n=st.integers(1, 12), size=st.integers(0, 300))
    def put_batch(self, who: int, topic: str, qid: int, n: int, size: int) -> None:
        bodies = [self._body(size) for _ in range(n)]
        queue = self.model.setdefault((topic, qid), [])
        assert self.run(who, "put_batch", topic, qid, bodies) == len(queue)
        queue.extend(bodies)

    @rule(who=st.integers(0, AGENTS), topic=st.sampled_from(TOPICS),
          qid=st.integers(0, QUEUES - 1), data=st.data())
    def get(self, who: int, topic: str, qid: int, data) -> None:
        queue = self.model.get((topic, qid), [])
        offset = data.draw(st.integers(0, len(queue)))
        n = data.draw(st.integers(1, 40))
        got = self.run(who, "get", topic, qid, offset, n)
        want = list(enumerate(queue))[offset:offset + n]
        assert got == want, (who, topic, qid, offset, got[:3], want[:3])

    @rule(who=st.integers(0, AGENTS), group=st.sampled_from(("g1", "g2")),
          topic=st.sampled_from(TOPICS), qid=st.integers(0, QUEUES - 1), data=st.data())
    def commit(self, who: int, group: str, topic: str, qid: int, data) -> None:
        offset = data.draw(st.integers(0, len(self.model.get((topic, qid), []))))
        self.run(who, "commit", group, topic, qid, offset)
        self.offsets[(group, topic, qid)] = offset

    @rule(who=st.integers(0, AGENTS), group=st.sampled_from(("g1", "g2")),
          topic=st.sampled_from(TOPICS), qid=st.integers(0, QUEUES - 1))
    def committed(self, who: int, group: str, topic: str, qid: int) -> None:
        assert self.run(who, "committed", group, topic, qid) == \
            self.offsets.get((group, topic, qid))

    @invariant()
    def every_process_sees_every_queue_end(self) -> None:
        if not hasattr(self, "model"):
            return
        for (topic, qid), queue in self.model.items():
            for who in range(AGENTS + 1):
                assert self.run(who, "max", topic, qid) == len(queue), (who, topic, qid)

    def teardown(self) -> None:
        if not hasattr(self, "store"):
            return
        for i in range(AGENTS):
            self.agents.call(i, "close")
        self.store.close()
        # the last close left a store any single process recovers to the same queues
        single = {k: v for k, v in CONFIG.items() if k != "shared"}
        with rmqstore.open(self.dir, **single) as store:
            assert store.recovery.skipped == ()
            for (topic, qid), queue in self.model.items():
                got = [m.body for m in store.get(topic, qid, 0, len(queue) + 1).messages]
                assert got == queue, (topic, qid)
        shutil.rmtree(self.dir, ignore_errors=True)


def test_shared_store_model_across_processes(agents: Agents) -> None:
    SharedModel.agents = agents
    run = settings(max_examples=25, stateful_step_count=30, deadline=None)(SharedModel)
    run.TestCase().runTest()
