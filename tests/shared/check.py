"""What every shared-store test checks of the messages the worker processes stored."""

from __future__ import annotations

from pathlib import Path

import rmqstore
from rmqstore.record import RecordField as F
from tests.shared.worker import QUEUES, TOPIC, acked


def stored(store: rmqstore.MessageStore) -> dict[str, list[tuple[int, int]]]:
    """Per writer name, its (seq, queue id) in the order the queues hold them. Fails on a
    queue offset out of place or a commit-log offset twice."""
    seen_phys: set[int] = set()
    by_name: dict[str, list[tuple[int, int]]] = {}
    for qid in range(QUEUES):
        off = store.min_offset(TOPIC, qid)
        assert off == 0
        while True:
            res = store.get(TOPIC, qid, off, 1024)
            if not res.messages:
                assert off == store.max_offset(TOPIC, qid), (qid, off, res.status)
                break
            for m in res.messages:
                assert m.queue_offset == off, f"queue {qid}: offset {m.queue_offset} at {off}"
                assert m.commitlog_offset not in seen_phys, "one record under two offsets"
                seen_phys.add(m.commitlog_offset)
                name, seq = m.body.decode().rsplit(":", 1)
                by_name.setdefault(name, []).append((int(seq), qid))
                off += 1
    return by_name


def check_writers(store: rmqstore.MessageStore, store_dir: Path, names: list[str],
                  complete: dict[str, int] | None = None) -> int:
    """Each writer's messages present exactly once and in its order (seq 0, 1, ... with no
    gap: a killed writer's torn last put is gone, the rest are all there), every acknowledged
    one among them; complete[name]: exactly that many. Returns the messages counted."""
    found = stored(store)
    total = 0
    for name in names:
        mine = found.pop(name, [])
        seqs_per_queue: dict[int, list[int]] = {}
        for seq, qid in mine:
            assert qid == seq % QUEUES, f"{name}:{seq} in queue {qid}"
            seqs_per_queue.setdefault(qid, []).append(seq)
        seqs = sorted(seq for seq, _ in mine)
        assert seqs == list(range(len(seqs))), f"{name}: a gap or a duplicate in {seqs[:50]}"
        for qid, in_queue in seqs_per_queue.items():
            assert in_queue == sorted(in_queue), f"{name}: out of order in queue {qid}"
        acks = acked(store_dir, name)
        assert len(acks) <= len(seqs), f"{name}: {len(acks)} acknowledged, {len(seqs)} stored"
        if complete is not None:
            assert len(seqs) == complete[name], (name, len(seqs))
        total += len(seqs)
    assert not found, f"messages of unknown writers: {sorted(found)[:5]}"
    return total


def commitlog_records(store: rmqstore.MessageStore) -> int:
    """Every record of the commit log passes its checks and names its own queue offset."""
    cl = store.commitlog
    n = 0
    for _seg, fields in cl.records(cl.min_offset, cl.max_offset):
        assert fields[F.QUEUE_OFFSET] >= 0
        n += 1
    return n
