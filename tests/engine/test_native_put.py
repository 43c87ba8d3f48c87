"""The native put, put_async and put_batch (_native/putter.c, bound as MessageStore's)
against the Python put they stand in for: the same results, records and units, call by call,
across segment and consume-queue file ends; and what the Python put does after an append
(arrival wake-ups, on_append, sync-flush waits, refusals) done the same way."""

from __future__ import annotations

import functools
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rmqstore
from rmqstore.errors import InvalidQueueError, MessageTooLargeError, StoreClosedError
from rmqstore.message import PendingPut, PutResult, PutStatus
from rmqstore.writer import StoreWriter
from tests import layout

SEGMENT = 4096
UNITS = 16
CONFIG = dict(commitlog_segment_bytes=SEGMENT, consumequeue_units=UNITS, index_slots=64,
              index_entries=256, background=False, compression="zlib",
              compress_over_bytes=300, max_message_size=1500)
TOPICS = {"T": 2, "S": 1}  # S has one queue: puts that name none take the plain path too


def _python_paths(store) -> None:
    """Route store's puts through the Python StoreWriter methods (what every put took before
    the native one)."""
    store.put = functools.partial(StoreWriter.put, store._writer)
    store.put_async = functools.partial(StoreWriter.put_async, store._writer)
    store.put_batch = functools.partial(StoreWriter.put_batch, store._writer)


def _open(path, python: bool, **extra):
    store = rmqstore.open_store(path, **dict(CONFIG, **extra))
    for topic, queues in TOPICS.items():
        store.create_topic(topic, queues)
    if python:
        _python_paths(store)
    return store


_body = st.one_of(st.binary(max_size=700),
                  st.builds(lambda b, n: bytes([b]) * n, st.integers(0, 255),
                            st.integers(0, 1400)))  # compressible over compress_over_bytes
_options = st.one_of(
    st.just({}), st.just({}), st.just({}),  # the plain path, most often
    st.fixed_dictionaries({"tags": st.sampled_from(["a", "TagB"])}),
    st.fixed_dictionaries({"keys": st.lists(st.sampled_from(["k1", "k2"]), max_size=2)}),
    st.fixed_dictionaries({"properties": st.just({"DELAY": "2", "x": "y"})}),
    st.fixed_dictionaries({"flag": st.integers(0, 7)}))
_target = st.sampled_from([("T", 0), ("T", 1), ("S", None), ("S", 0)])
_op = st.one_of(
    st.tuples(st.sampled_from(["put", "put_async"]), _target, _body, _options),
    st.tuples(st.just("batch"), _target, st.lists(st.binary(max_size=300), max_size=20),
              st.one_of(st.just({}), st.just({}), st.just({"tags": "bt"}))))


def _apply(store, ops) -> list[tuple]:
    out = []
    for kind, (topic, queue_id), payload, options in ops:
        if kind != "batch":
            r = getattr(store, kind)(topic, payload, queue_id=queue_id, **options)
            if kind == "put_async":
                assert type(r) is PendingPut
                r = r.result
            out.append((r.status, r.queue_id, r.queue_offset, r.commitlog_offset, r.msg_id))
        else:
            b = store.put_batch(topic, payload, queue_id=queue_id, **options)
            out.append((b.status, b.queue_id, b.first_queue_offset, b.commitlog_offsets,
                        b.msg_ids))
    return out


def _stored(root) -> tuple[list, dict]:
    """Every record with its times zeroed (the two stores put at different moments; a plain
    put's born time is its store time, checked apart), and every queue's units."""
    records = []
    for r in layout.all_records(root, SEGMENT):
        records.append((r.position, r.total_size, r.body_crc, r.queue_id, r.flag,
                        r.queue_offset, r.sysflag, r.born_host, r.store_host, r.body, r.topic,
                        r.properties_raw, r.born_timestamp == r.store_timestamp))
    units = {(t, q): layout.read_consume_queue(root, t, q, UNITS)
             for t, n in TOPICS.items() for q in range(n)
             if (root / "consumequeue" / t / str(q)).exists()}
    return records, units


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(ops=st.lists(_op, min_size=1, max_size=40))
def test_native_put_stores_what_the_python_put_stores(tmp_path_factory, ops):
    """Same calls to a store with the native put and to one with the Python put: the same
    results, and records and units byte for byte (times aside), across file ends."""
    roots = [tmp_path_factory.mktemp("native"), tmp_path_factory.mktemp("python")]
    results = []
    for root, python in zip(roots, (False, True), strict=True):
        with _open(root, python) as store:
            results.append(_apply(store, ops))
    assert results[0] == results[1]
    assert _stored(roots[0]) == _stored(roots[1])


def test_the_native_put_is_bound_and_returns_put_results(tmp_path):
    with _open(tmp_path, python=False) as store:
        assert type(store.put).__name__ == "builtin_function_or_method"
        store.put("T", b"first", queue_id=0)  # the first put to a queue takes the Python put
        r = store.put("T", b"second", queue_id=0)
        b = store.put_batch("T", [b"x", b"yy"], queue_id=0)
        got = [m.body for m in store.get("T", 0, 0, 10).messages]
    assert type(r) is PutResult and r.status is PutStatus.PUT_OK and r.queue_offset == 1
    assert b.first_queue_offset == 2 and len(b.commitlog_offsets) == 2
    assert got == [b"first", b"second", b"x", b"yy"]


def test_each_put_finds_its_own_queue_among_many_topics(tmp_path):
    """The native put's table holds one Targets per topic, by queue id (putter.c): puts round
    robin over 50 topics x 4 queues, and puts naming no queue to one-queue topics, each land
    in their own queue, in order; a deleted topic's targets go with it."""
    names = [(f"M{i // 4:02d}", i % 4) for i in range(200)]
    with _open(tmp_path, python=False) as store:
        for i in range(50):
            store.create_topic(f"M{i:02d}", 4)
            store.create_topic(f"O{i:02d}", 1)
        for r in range(3):  # the first round takes the Python put and fills the table
            for i, (topic, qid) in enumerate(names):
                assert store.put(topic, b"%d.%d" % (r, i), queue_id=qid).queue_offset == r
            for i in range(50):
                assert store.put(f"O{i:02d}", b"o%d.%d" % (r, i)).queue_offset == r
        for i, (topic, qid) in enumerate(names):
            assert [m.body for m in store.get(topic, qid, 0, 8).messages] == \
                [b"%d.%d" % (r, i) for r in range(3)]
        assert [m.body for m in store.get("O07", 0, 0, 8).messages] == \
            [b"o%d.7" % r for r in range(3)]
        store.delete_topic("M03")
        store.create_topic("M03", 2)
        assert store.put("M03", b"new", queue_id=1).queue_offset == 0
        with pytest.raises(InvalidQueueError):
            store.put("M03", b"x", queue_id=3)
        assert store.put("M03", b"new2", queue_id=1).queue_offset == 1


def test_bad_calls_get_the_python_puts_errors(tmp_path):
    with _open(tmp_path, python=False, max_message_size=100) as store:
        store.put("T", b"a", queue_id=0)
        store.put_batch("T", [b"a"], queue_id=1)
        with pytest.raises(MessageTooLargeError):
            store.put("T", b"x" * 101, queue_id=0)
        with pytest.raises(MessageTooLargeError):
            store.put_batch("T", [b"x", b"x" * 101], queue_id=1)
        with pytest.raises(InvalidQueueError):
            store.put("T", b"x", queue_id=5)
        with pytest.raises(TypeError):
            store.put("T", "text", queue_id=0)
        with pytest.raises(TypeError):
            store.put_batch("T", [b"x", "text"], queue_id=1)
        assert store.max_offset("T", 0) == 1 and store.max_offset("T", 1) == 1
    with pytest.raises(StoreClosedError):
        store.put("T", b"x", queue_id=0)
    with pytest.raises(StoreClosedError):
        store.put_batch("T", [b"x"], queue_id=1)


def test_bytes_like_bodies_are_stored_as_bytes(tmp_path):
    with _open(tmp_path, python=False) as store:
        store.put("T", b"a", queue_id=0)
        store.put("T", bytearray(b"b"), queue_id=0)
        store.put_batch("T", [b"c", memoryview(b"d"), bytearray(b"e")], queue_id=0)
        assert [m.body for m in store.get("T", 0, 0, 10).messages] == [b"a", b"b", b"c", b"d",
                                                                        b"e"]


@pytest.mark.parametrize("batch", [False, True])
def test_a_native_put_wakes_wait_for_message_and_calls_on_append(tmp_path, batch):
    calls = []
    with _open(tmp_path, python=False) as store:
        store.put("T", b"a", queue_id=0)
        store.notify_appends(lambda: calls.append(1))
        woke = []
        waiter = threading.Thread(
            target=lambda: woke.append(store.wait_for_message("T", 0, 1, 10.0)))
        waiter.start()
        for _ in range(200):  # until the waiter waits (bounded: 2 s)
            if store._writer._putter.waiters:
                break
            threading.Event().wait(0.01)
        assert store._writer._putter.waiters == 1
        if batch:
            store.put_batch("T", [b"b", b"c"], queue_id=0)
        else:
            store.put("T", b"b", queue_id=0)
        waiter.join(5)
        assert woke == [True] and calls == [1]


@pytest.mark.parametrize("batch", [False, True])
def test_a_native_put_with_sync_flush_returns_once_durable(tmp_path, batch):
    with _open(tmp_path, python=False, flush="sync") as store:
        store.put("T", b"a", queue_id=0)
        for i in range(5):
            if batch:
                last = store.put_batch("T", [b"b%d" % i] * 3, queue_id=0).commitlog_offsets[-1]
            else:
                last = store.put("T", b"b%d" % i, queue_id=0).commitlog_offset
            assert store.durable_offset > last


def test_a_native_put_async_returns_at_once_and_waits_on_demand(tmp_path):
    """put_async's PendingPut: stored and readable at once, durable after wait()."""
    with _open(tmp_path, python=False, flush="sync") as store:
        store.put("T", b"a", queue_id=0)
        pending = [store.put_async("T", b"b%d" % i, queue_id=0) for i in range(5)]
        assert [m.body for m in store.get("T", 0, 1, 10).messages] == [b"b%d" % i
                                                                       for i in range(5)]
        assert pending[-1].wait().status is PutStatus.PUT_OK
        assert pending[-1].done() and store.durable_offset > pending[-1].result.commitlog_offset
