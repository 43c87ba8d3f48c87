"""A queue's last units wait in its native write state (rmq_queue.stage, RMQ_CQ_STAGE of them)
and reach its consume-queue file a stage at a time. These tests hold every way of looking at
a queue to the units put, staged or not: reads, offsets, the files after a flush, reopening,
and a crash (the staged units die with the process; recovery rebuilds them from the log).

The model: per queue, the bodies put in order. Rules put (the native plain path, the path with
properties, batches) over many queues, read, flush, close and reopen, and crash (the store
directory copied while open, as kill -9 leaves it).
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import threading
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

import rmqstore
from rmqstore import GetStatus
from rmqstore.consumequeue import UNIT, UNIT_SIZE
from rmqstore.filenames import consumequeue_root
from tests.conftest import SMALL

TOPICS = tuple(f"T{t}" for t in range(6))
QUEUES = 4  # per topic: 24 queues
keys = st.tuples(st.sampled_from(TOPICS), st.integers(0, QUEUES - 1))
bodies = st.binary(max_size=40)


def units_on_disk(root: Path, topic: str, queue_id: int) -> list[tuple[int, int, int]]:
    """The queue's units as its files hold them (read through descriptors, not the store)."""
    out = []
    for path in sorted((consumequeue_root(root) / topic / str(queue_id)).glob("[0-9]" * 20)):
        data = path.read_bytes()
        for pos in range(0, len(data) - UNIT_SIZE + 1, UNIT_SIZE):
            unit = UNIT.unpack_from(data, pos)
            if unit == (0, 0, 0):
                break
            out.append(unit)
    return out


class StagedUnits(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="rmq-staged-"))
        self.generation = itertools.count()
        self.path = self.tmp / f"gen{next(self.generation)}"
        self.store = None
        self.cfg: dict = {}
        self.queues: dict[tuple[str, int], list[bytes]] = {}

    @initialize(cq_units=st.sampled_from([5, 16, 64]), flush=st.sampled_from(["async", "sync"]))
    def open_store(self, cq_units, flush):
        # 5 and 16 units a file: QUEUE_FULL (which writes the stage) with 1 or 2 units staged
        self.cfg = dict(SMALL, commitlog_segment_bytes=16384, consumequeue_units=cq_units,
                        flush=flush)
        self.store = rmqstore.open(self.path, **self.cfg)
        for topic in TOPICS:
            self.store.create_topic(topic, QUEUES)

    def teardown(self) -> None:
        try:
            if self.store is not None:
                self.store.close()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _q(self, key) -> list[bytes]:
        return self.queues.setdefault(key, [])

    # -- writes ----------------------------------------------------------------------------
    @rule(key=keys, body=bodies, n=st.integers(1, 7))
    def put_plain(self, key, body, n):
        """The Putter's plain put: the unit is staged."""
        for i in range(n):
            b = body + bytes([i])
            res = self.store.put(key[0], b, queue_id=key[1])
            assert res.queue_offset == len(self._q(key))
            self._q(key).append(b)

    @rule(key=keys, body=bodies)
    def put_with_tags(self, key, body):
        """rmq_put with properties: staged too."""
        res = self.store.put(key[0], body, queue_id=key[1], tags="t")
        assert res.queue_offset == len(self._q(key))
        self._q(key).append(body)

    @rule(key=keys, batch=st.lists(bodies, min_size=1, max_size=6))
    def put_batch(self, key, batch):
        """A batch writes the stage first, then its units straight to the file."""
        res = self.store.put_batch(key[0], batch, queue_id=key[1])
        assert res.first_queue_offset == len(self._q(key))
        assert len(res.commitlog_offsets) == len(batch)
        self._q(key).extend(batch)

    # -- reads -----------------------------------------------------------------------------
    @rule(key=keys, data=st.data())
    def get(self, key, data):
        want = self._q(key)
        offset = data.draw(st.integers(0, len(want)))
        res = self.store.get(key[0], key[1], offset, 8)
        assert [m.body for m in res.messages] == want[offset:offset + 8]
        assert res.next_offset == min(len(want), offset + 8)
        if want:
            assert res.status == (GetStatus.FOUND if offset < len(want) else
                                  GetStatus.OFFSET_OVERFLOW_ONE)

    @rule(key=keys, data=st.data())
    def get_bodies(self, key, data):
        want = self._q(key)
        offset = data.draw(st.integers(0, len(want)))
        got = self.store.get_bodies(key[0], key[1], offset, 16)
        assert [bytes(b) for b in got] == want[offset:offset + 16]
        assert got.next_offset == min(len(want), offset + 16)

    @rule(key=keys)
    def wait_for_message(self, key):
        """Long polling sees a staged unit as there."""
        n = len(self._q(key))
        if n:
            assert self.store.wait_for_message(key[0], key[1], n - 1, 0)

    # -- durability ------------------------------------------------------------------------
    @rule()
    def flush_queues(self):
        """A thorough queue flush records in the checkpoint that every unit is durable: each
        unit put is in its file then, staged ones included."""
        self.store.flush_queues()
        for (topic, qid), want in self.queues.items():
            units = units_on_disk(self.path, topic, qid)
            assert len(units) == len(want), (topic, qid)
            assert [size for _, size, _ in units] == \
                [m.size for m in self._stored(topic, qid, len(want))]

    def _stored(self, topic, qid, n):
        return self.store.get(topic, qid, 0, n).messages if n else []

    @rule()
    def close_and_reopen(self):
        self.store.close()
        self.store = None
        for (topic, qid), want in self.queues.items():
            assert len(units_on_disk(self.path, topic, qid)) == len(want), (topic, qid)
        self.store = rmqstore.open(self.path, **self.cfg)
        self._check_offsets()

    def _check_offsets(self):
        for (topic, qid), want in self.queues.items():
            assert self.store.max_offset(topic, qid) == len(want), (topic, qid)
            if want:
                got = self.store.get_bodies(topic, qid, 0, len(want))
                assert [bytes(b) for b in got] == want, (topic, qid)

    @rule()
    def crash_and_recover(self):
        copy = self.tmp / f"gen{next(self.generation)}"
        shutil.copytree(self.path, copy)  # kill -9: the mapping's pages, not the stage
        assert (copy / "abort").exists()
        self.store.close()
        self.store = None
        shutil.rmtree(self.path)
        self.path = copy
        self.store = rmqstore.open(self.path, **self.cfg)
        self._check_offsets()

    @rule(key=keys)
    def max_offset(self, key):
        """A rule, not an invariant: every look writes the queue's staged units, and the
        other rules must meet some still staged."""
        assert self.store.max_offset(*key) == len(self._q(key))


StagedUnits.TestCase.settings = settings(
    max_examples=30, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TestStagedUnits = StagedUnits.TestCase


def test_a_reader_thread_sees_every_unit_a_put_returned(tmp_path):
    """Readers take no put lock to read a file; the lookup of a queue writes its staged units
    under it. A reader thread polling queues round robin sees, for each, every unit whose
    put returned before the read began, in order, and nothing torn."""
    names = [(f"T{t}", q) for t in range(8) for q in range(4)]
    done = threading.Event()
    acked = {k: 0 for k in names}  # puts returned, per queue (read before each read)
    errors: list[str] = []

    def read() -> None:
        while not done.is_set():
            for topic, qid in names:
                floor = acked[topic, qid]
                got = store.get_bodies(topic, qid, 0, 4096)
                bodies = [bytes(b) for b in got]
                if len(bodies) < floor or bodies != [b"%s-%d-%d" % (topic.encode(), qid, i)
                                                     for i in range(len(bodies))]:
                    errors.append(f"{topic}/{qid}: {len(bodies)} bodies, {floor} acked")
                    return

    with rmqstore.open(tmp_path, **dict(SMALL, commitlog_segment_bytes=1 << 20,
                                        consumequeue_units=64)) as store:
        for topic in {t for t, _ in names}:
            store.create_topic(topic, 4)
        reader = threading.Thread(target=read)
        reader.start()
        try:
            for i in range(300):
                for topic, qid in names:
                    store.put(topic, b"%s-%d-%d" % (topic.encode(), qid, i), queue_id=qid)
                    acked[topic, qid] = i + 1
        finally:
            done.set()
            reader.join(30)
    assert not errors, errors[:3]
