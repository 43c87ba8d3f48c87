"""Stateful model test: the store against a plain in-memory model.

The model keeps, per (topic, queue id), the list of messages put (body, tags, keys, properties,
commit-log offset, message id), the consumer offsets committed and the ones known persisted.
Rules put, batch-put, read (plain, tag-filtered, bodies only), look up by id and by key, commit
offsets, flush, close and reopen, and crash. A crash is simulated by copying the whole store
directory while the store is open (what kill -9 leaves: mmap writes are in the page cache, the
copy holds the `abort` marker) and going on with a store opened on the copy.
"""

from __future__ import annotations

import itertools
import random
import shutil
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import lz4.frame
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import rmqstore
from rmqstore import GetStatus, PutStatus
from tests.conftest import SMALL

TOPICS = ("TopicA", "b_2", "%RETRY%grp|x")
QUEUE_IDS = (0, 1, 2)
GROUPS = ("g1", "g2")
# "Aa" and "BB" share a Java hashCode: the consume-queue tag filter and the index match them
# by hash, so each must be confirmed on the real string.
TAGS = ("A", "B", "Aa", "BB")
KEYS = ("k1", "k2", "Aa", "BB", "order-7")
PROP_NAMES = ("p1", "color", "x-trace")
BIG = 5000  # above compress_over_bytes (4096): compressed by put(), stored raw by put_batch()


def _java_hash(s: str) -> int:
    h = 0
    for ch in s:
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


small_bodies = st.binary(min_size=0, max_size=300)
big_bodies = st.one_of(
    # compressible: a short random pattern repeated
    st.binary(min_size=1, max_size=16).map(lambda p: (p * (BIG // len(p) + 1))[:BIG]),
    # incompressible
    st.binary(min_size=BIG, max_size=BIG),
)
bodies = st.one_of(small_bodies, small_bodies, small_bodies, small_bodies, small_bodies,
                   small_bodies, small_bodies, small_bodies, small_bodies, big_bodies)
tags_st = st.one_of(st.none(), st.sampled_from(TAGS))
keys_st = st.lists(st.sampled_from(KEYS), max_size=3, unique=True).map(tuple)
props_st = st.one_of(
    st.none(),
    st.dictionaries(st.sampled_from(PROP_NAMES),
                    st.text(alphabet="abcXYZ019 -_.:é", max_size=12), max_size=2),
    # a producer-set UNIQ_KEY is indexed too (and query() matches it)
    st.fixed_dictionaries({"UNIQ_KEY": st.sampled_from(KEYS)},
                          optional={"p1": st.text(alphabet="xyz", max_size=3)}),
)
# weighted towards one queue so that it grows past consume-queue file boundaries
queue_ids = st.sampled_from((0, 0, 0, 1, 2))
QUEUES = 3  # every topic's, made at open: a put names one of them
topics = st.sampled_from(TOPICS[:1] * 3 + TOPICS[1:])


@dataclass
class M:
    """One message in the model."""

    body: bytes
    tags: str | None
    keys: tuple[str, ...]
    props: dict[str, str]
    commitlog_offset: int
    msg_id: str
    stored_raw: bool  # stored uncompressed (so get_bodies gives the body itself)
    store_timestamp: int

    def index_keys(self) -> list[str]:
        uniq = self.props.get("UNIQ_KEY")
        return ([uniq] if uniq else []) + list(self.keys)

    def expected_properties(self) -> dict[str, str]:
        p = dict(self.props)
        if self.tags:
            p["TAGS"] = self.tags
        if self.keys:
            p["KEYS"] = " ".join(self.keys)
        return p


@dataclass
class Model:
    queues: dict[tuple[str, int], list[M]] = field(default_factory=dict)
    committed: dict[tuple[str, str, int], int] = field(default_factory=dict)
    persisted: dict[tuple[str, str, int], int] = field(default_factory=dict)
    # values committed since the last persist, per key (a crash may keep any of them)
    since_persist: dict[tuple[str, str, int], set[int]] = field(default_factory=dict)

    def q(self, topic: str, qid: int) -> list[M]:
        return self.queues.get((topic, qid), [])

    def all_messages(self):
        for (topic, qid), msgs in self.queues.items():
            for off, m in enumerate(msgs):
                yield topic, qid, off, m


def _snapshot(msg) -> tuple:
    """Copy what we check out of a Message (it views a mapping that a close may unmap)."""
    return (msg.topic, msg.queue_id, msg.queue_offset, msg.commitlog_offset, msg.msg_id,
            msg.body, msg.tags, tuple(msg.keys), msg.properties, msg.store_timestamp)


class StoreModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="rmq-model-"))
        self.generation = itertools.count()
        self.path = self.tmp / f"gen{next(self.generation)}"
        self.store = None
        self.model = Model()
        self.cfg: dict = {}
        self.crashes = 0
        self.check_turn = 0

    # -- set-up and tear-down --------------------------------------------------------------
    @initialize(segment=st.sampled_from([8192, 65536]), cq_units=st.sampled_from([16, 5]),
                index_entries=st.sampled_from([256, 16]),
                flush=st.sampled_from(["async", "sync"]),
                compression=st.sampled_from(["zlib", "zlib", "lz4", None]),
                prefill=st.sampled_from([0, 12, 40, 90]), seed=st.integers(0, 2 ** 32 - 1))
    def open_store(self, segment, cq_units, index_entries, flush, compression, prefill, seed):
        """Open a new store and put `prefill` pseudo-random messages, mostly into one queue,
        so that files roll early."""
        self.cfg = dict(SMALL, commitlog_segment_bytes=segment, consumequeue_units=cq_units,
                        index_entries=index_entries, flush=flush, compression=compression)
        self.store = rmqstore.open(self.path, **self.cfg)
        for topic in TOPICS:
            self.store.create_topic(topic, QUEUES)
        rng = random.Random(seed)
        for _ in range(prefill):
            topic = rng.choice(TOPICS[:1] * 4 + TOPICS[1:])
            qid = rng.choice((0, 0, 0, 0, 1, 2))
            body = rng.randbytes(rng.randrange(301)) if rng.random() < 0.95 else \
                bytes([rng.randrange(256)]) * BIG
            tags = rng.choice((None,) + TAGS)
            keys = tuple(rng.sample(KEYS, rng.randrange(3)))
            self._put(topic, qid, body, tags, keys, None)

    def teardown(self) -> None:
        try:
            if self.store is not None:
                self.store.close()
        finally:
            self.store = None
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- helpers ---------------------------------------------------------------------------
    def _compressed(self, body: bytes) -> bool:
        """Whether the store keeps this body compressed: at or over 4096 bytes, and only when
        compressing makes it smaller."""
        codec = self.cfg["compression"]
        if codec is None or len(body) < 4096:
            return False
        packed = lz4.frame.compress(body) if codec == "lz4" else zlib.compress(body, 5)
        return len(packed) < len(body)

    def _check_message(self, snap: tuple, topic: str, qid: int, off: int, m: M) -> None:
        (s_topic, s_qid, s_off, s_phys, s_id, s_body, s_tags, s_keys, s_props, s_ts) = snap
        assert (s_topic, s_qid, s_off) == (topic, qid, off)
        assert s_phys == m.commitlog_offset
        assert s_id == m.msg_id
        assert s_body == m.body, f"{topic}/{qid}@{off}: body differs"
        assert s_tags == m.tags
        assert s_keys == m.keys
        assert s_props == m.expected_properties()
        assert s_ts == m.store_timestamp

    def _check_appended_after_all(self, phys: int, store_ts: int) -> None:
        """A new record lies past every other one, and store time is monotone with the
        commit-log offset (across reopens too: the clock only moves forward here)."""
        for *_, m in self.model.all_messages():
            assert phys > m.commitlog_offset
            assert store_ts >= m.store_timestamp

    def _check_queue_fully(self, topic: str, qid: int) -> None:
        msgs = self.model.q(topic, qid)
        got: list[tuple] = []
        off = 0
        while off < len(msgs):
            res = self.store.get(topic, qid, off, 7)
            assert res.status is GetStatus.FOUND, (topic, qid, off, res.status)
            assert res.messages, (topic, qid, off)
            got.extend(_snapshot(m) for m in res.messages)
            assert res.next_offset == off + len(res.messages)
            off = res.next_offset
        assert len(got) == len(msgs)
        for i, (snap, m) in enumerate(zip(got, msgs, strict=True)):
            self._check_message(snap, topic, qid, i, m)

    def _check_everything(self) -> None:
        for topic in TOPICS:
            for qid in QUEUE_IDS:
                assert self.store.max_offset(topic, qid) == len(self.model.q(topic, qid))
                if self.model.q(topic, qid):
                    self._check_queue_fully(topic, qid)
                else:
                    res = self.store.get(topic, qid, 0)
                    assert res.status is GetStatus.NO_MATCHED_LOGIC_QUEUE, \
                        (topic, qid, res.status)
        for (group, topic, qid), value in self.model.committed.items():
            assert self.store.committed_offset(group, topic, qid) == value

    # -- writing ---------------------------------------------------------------------------
    @rule(topic=topics, qid=st.one_of(queue_ids, queue_ids, queue_ids, queue_ids, st.none()),
          body=bodies, tags=tags_st, keys=keys_st, props=props_st)
    def put(self, topic, qid, body, tags, keys, props):
        self._put(topic, qid, body, tags, keys, props)

    def _put(self, topic, qid, body, tags, keys, props):
        r = self.store.put(topic, body, queue_id=qid, tags=tags, keys=keys, properties=props)
        assert r.status is PutStatus.PUT_OK
        want_q = r.queue_id if qid is None else qid  # None: the topic's queues in turn
        assert r.queue_id == want_q and 0 <= want_q < QUEUES
        msgs = self.model.queues.setdefault((topic, want_q), [])
        assert r.queue_offset == len(msgs)
        self._check_appended_after_all(r.commitlog_offset, r.store_timestamp)
        msgs.append(M(body, tags, keys, dict(props or {}), r.commitlog_offset, r.msg_id,
                      not self._compressed(body), r.store_timestamp))

    @rule(topic=topics, qid=queue_ids, batch=st.lists(bodies, min_size=1, max_size=12),
          tags=tags_st, keys=keys_st, props=props_st)
    def put_batch(self, topic, qid, batch, tags, keys, props):
        r = self.store.put_batch(topic, batch, queue_id=qid, tags=tags, keys=keys,
                                 properties=props)
        assert r.status is PutStatus.PUT_OK
        assert r.queue_id == qid
        msgs = self.model.queues.setdefault((topic, qid), [])
        assert r.first_queue_offset == len(msgs)
        assert len(r) == len(batch) == len(r.msg_ids)
        offs = r.commitlog_offsets
        assert offs == sorted(offs) and len(set(offs)) == len(offs)
        self._check_appended_after_all(offs[0], r.store_timestamp)
        for body, phys, mid in zip(batch, offs, r.msg_ids, strict=True):
            msgs.append(M(body, tags, keys, dict(props or {}), phys, mid, True,
                          r.store_timestamp))

    # -- reading ---------------------------------------------------------------------------
    @rule(topic=topics, qid=queue_ids, data=st.data(), max_count=st.integers(1, 40))
    def get(self, topic, qid, data, max_count):
        msgs = self.model.q(topic, qid)
        n = len(msgs)
        offset = data.draw(st.one_of(st.integers(0, max(n - 1, 0)), st.just(n),
                                     st.integers(n + 1, n + 50), st.integers(-5, -1)),
                           label="offset")
        res = self.store.get(topic, qid, offset, max_count)
        if (topic, qid) not in self.model.queues:
            assert res.status is GetStatus.NO_MATCHED_LOGIC_QUEUE
            assert res.messages == []
            return
        assert (res.min_offset, res.max_offset) == (0, n)
        if offset < 0:
            assert res.status is GetStatus.OFFSET_TOO_SMALL
            assert res.next_offset == 0
        elif offset == n:
            assert res.status is GetStatus.OFFSET_OVERFLOW_ONE
            assert res.next_offset == n
        elif offset > n:
            assert res.status is GetStatus.OFFSET_OVERFLOW_BADLY
            assert res.next_offset == 0  # min offset is 0: RocketMQ restarts the consumer there
        else:
            assert res.status is GetStatus.FOUND
            want = msgs[offset:offset + max_count]
            assert len(res.messages) == len(want)
            assert res.next_offset == offset + len(want)
            for i, (msg, m) in enumerate(zip(res.messages, want, strict=True)):
                self._check_message(_snapshot(msg), topic, qid, offset + i, m)
        if res.status is not GetStatus.FOUND:
            assert res.messages == []

    @rule(topic=topics, qid=queue_ids, data=st.data(), max_count=st.integers(1, 20),
          wanted=st.lists(st.sampled_from(TAGS), min_size=1, max_size=2, unique=True),
          as_list=st.booleans())
    def get_with_tags(self, topic, qid, data, max_count, wanted, as_list):
        msgs = self.model.q(topic, qid)
        if not msgs:
            return
        n = len(msgs)
        offset = data.draw(st.integers(0, n - 1), label="offset")
        tags = list(wanted) if as_list else " || ".join(wanted)
        res = self.store.get(topic, qid, offset, max_count, tags=tags)
        got = [_snapshot(m) for m in res.messages]
        assert offset < res.next_offset <= n
        window = [(offset + i, m) for i, m in enumerate(msgs[offset:res.next_offset])
                  if m.tags in wanted]
        assert len(got) == len(window), (len(got), len(window), offset, res.next_offset)
        for snap, (off, m) in zip(got, window, strict=True):
            self._check_message(snap, topic, qid, off, m)
        # it stops early only when it has max_count messages
        assert len(got) == max_count or res.next_offset == n
        if got:
            assert res.status is GetStatus.FOUND
            assert len(got) <= max_count
            # no matching message skipped past: the last returned ends the scan window
            # unless the window ran to the end
            if res.next_offset < n:
                assert got[-1][2] == res.next_offset - 1
        else:
            assert res.status is GetStatus.NO_MATCHED_MESSAGE

    @rule(topic=topics, qid=queue_ids, data=st.data(), max_count=st.integers(1, 20))
    def get_bodies(self, topic, qid, data, max_count):
        msgs = self.model.q(topic, qid)
        n = len(msgs)
        offset = data.draw(st.integers(0, n + 2), label="offset")
        res = self.store.get_bodies(topic, qid, offset, max_count)
        bodies = [bytes(b) for b in res]
        want = msgs[offset:offset + max_count]
        assert len(bodies) == len(want)  # across consume-queue files
        got = self.store.get(topic, qid, offset, max_count)  # the same answer as get's
        assert (res.status, res.next_offset) == (got.status, got.next_offset)
        for raw, m in zip(bodies, want, strict=True):
            if m.stored_raw:
                assert raw == m.body
            elif self.cfg["compression"] == "zlib":
                assert zlib.decompress(raw) == m.body

    @precondition(lambda self: self.model.queues)
    @rule(data=st.data())
    def get_by_id(self, data):
        everything = list(self.model.all_messages())
        topic, qid, off, m = data.draw(st.sampled_from(everything), label="message")
        msg = self.store.get_by_id(m.msg_id)
        assert msg is not None
        self._check_message(_snapshot(msg), topic, qid, off, m)
        msg = self.store.get_by_commitlog_offset(m.commitlog_offset)
        assert msg is not None
        self._check_message(_snapshot(msg), topic, qid, off, m)

    @rule()
    def get_by_offset_past_end(self):
        last = max((m.commitlog_offset for *_, m in self.model.all_messages()), default=0)
        assert self.store.get_by_commitlog_offset(last + 10 ** 9) is None

    @rule(topic=topics, key=st.sampled_from(KEYS + ("nope",)),
          max_count=st.one_of(st.just(32), st.integers(1, 80)))
    def query(self, topic, key, max_count):
        found = [_snapshot(m) for m in self.store.query(topic, key, max_count=max_count)]
        limit = min(max_count, 64)
        matches = sorted(((m.commitlog_offset, t, q, off, m)
                          for t, q, off, m in self.model.all_messages()
                          if t == topic and key in m.index_keys()), key=lambda x: x[0])
        by_phys = {x[0]: x for x in matches}
        # results: distinct model matches, oldest first, at most limit
        assert len(found) <= limit
        phys = [s[3] for s in found]
        assert phys == sorted(set(phys))
        for snap in found:
            assert snap[3] in by_phys, f"query({topic!r}, {key!r}) returned a non-match"
            _, t, q, off, m = by_phys[snap[3]]
            self._check_message(snap, t, q, off, m)
        # The index is asked for 2 * limit candidates, newest first; keys with the same hash
        # (and a crash's re-indexing of the last indexed record) also use candidates. When they
        # all fit, the answer is exact: the newest `limit` matches.
        h = _java_hash(f"{topic}#{key}")
        candidates = sum(1 for t, _, _, m in self.model.all_messages() if t == topic
                         for k in m.index_keys() if _java_hash(f"{topic}#{k}") == h)
        if candidates + 4 * self.crashes <= 2 * limit:
            assert phys == [x[0] for x in matches[-limit:]], (topic, key, limit)

    # -- consumer offsets ------------------------------------------------------------------
    @rule(group=st.sampled_from(GROUPS), topic=topics, qid=queue_ids, data=st.data())
    def commit_offset(self, group, topic, qid, data):
        n = len(self.model.q(topic, qid))
        offset = data.draw(st.integers(-2, n + 3), label="offset")
        if not 0 <= offset <= n:  # outside the queue: refused, nothing committed
            with pytest.raises(rmqstore.InvalidQueueError):
                self.store.commit_offset(group, topic, qid, offset)
            return
        self.store.commit_offset(group, topic, qid, offset)
        key = (group, topic, qid)
        self.model.committed[key] = offset
        if self.cfg["flush"] == "sync":  # persisted before commit_offset returns
            self.model.persisted[key] = offset
            self.model.since_persist.pop(key, None)
        else:
            self.model.since_persist.setdefault(key, set()).add(offset)
        assert self.store.committed_offset(group, topic, qid) == offset

    @rule(group=st.sampled_from(GROUPS + ("never",)), topic=topics, qid=queue_ids)
    def committed_offset(self, group, topic, qid):
        assert self.store.committed_offset(group, topic, qid) == \
            self.model.committed.get((group, topic, qid))

    # -- durability ------------------------------------------------------------------------
    def _all_persisted(self) -> None:
        self.model.persisted = dict(self.model.committed)
        self.model.since_persist.clear()

    @rule()
    def flush(self):
        self.store.flush()
        self._all_persisted()

    @rule()
    def close_and_reopen(self):
        self.store.close()
        self.store = None
        self._all_persisted()
        assert not (self.path / "abort").exists()
        self.store = rmqstore.open(self.path, **self.cfg)
        self._check_everything()

    @rule()
    def crash_and_recover(self):
        copy = self.tmp / f"gen{next(self.generation)}"
        shutil.copytree(self.path, copy)  # what kill -9 leaves: mmap writes are in the page cache
        assert (copy / "abort").exists()
        self.store.close()
        self.store = None
        shutil.rmtree(self.path)
        self.path = copy
        self.crashes += 1
        self.store = rmqstore.open(self.path, **self.cfg)
        # Consumer offsets persist on flush/close (and every commit with flush="sync"); a crash
        # keeps the last persisted value, or possibly a later committed one.
        model = self.model
        for key in set(model.committed) | set(model.persisted):
            actual = self.store.committed_offset(*key)
            allowed = {model.persisted.get(key)} | model.since_persist.get(key, set())
            assert actual in allowed, (key, actual, allowed)
            if actual is None:
                model.committed.pop(key, None)
            else:
                model.committed[key] = actual
        model.persisted = dict(model.committed)
        model.since_persist.clear()
        # every acknowledged put survives
        self._check_everything()

    # -- invariants ------------------------------------------------------------------------
    @invariant()
    def offsets_match_model(self):
        if self.store is None:
            return
        for topic in TOPICS:
            for qid in QUEUE_IDS:
                assert self.store.max_offset(topic, qid) == len(self.model.q(topic, qid)), \
                    (topic, qid)
                assert self.store.min_offset(topic, qid) == 0

    @invariant()
    def one_queue_reads_back(self):
        if self.store is None or not self.model.queues:
            return
        keys = sorted(self.model.queues)
        self.check_turn += 1
        topic, qid = keys[self.check_turn % len(keys)]
        self._check_queue_fully(topic, qid)


StoreModel.TestCase.settings = settings(
    max_examples=40, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TestStoreModel = StoreModel.TestCase


def test_batch_records_share_the_reported_store_time(tmp_path):
    """Found by the model above: a batch written in several native calls (here one per
    consume-queue file) must still give every record the one store time put_batch reports."""
    with rmqstore.open(tmp_path, **dict(SMALL, consumequeue_units=2)) as store:
        r = store.put_batch("T", [b"x"] * 500, queue_id=0)  # crosses 250 consume-queue files
        stamps = {store.get_by_commitlog_offset(off).store_timestamp
                  for off in r.commitlog_offsets}
        assert stamps == {r.store_timestamp}
