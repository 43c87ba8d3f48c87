"""Byte identity: after mixed traffic through a SYNC_MASTER (single, batch, delayed and
transactional sends, several topics, segments closed by BLANKs), the slave's commit log equals
the master's (SHA-256), and its consume queues and index answer the same queries."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from rmqstore.client import LocalTransactionState, Message, Producer, TransactionProducer
from rmqstore.client.producer import SendStatus
from rmqstore.server.testing import wait_until
from rmqstore.server.testing_ha import HAPair
from tests.client.conftest import run
from tests.log_digest import log_digest
from tests.replication.stores import pair_stores

SEG = 256 * 1024
STORE_ARGS = ("--store", f"commitlog_segment_bytes={SEG}", "--store", "consumequeue_units=2000",
              "--store", "index_slots=4000", "--store", "index_entries=40000")
STORE_CFG = dict(commitlog_segment_bytes=SEG, consumequeue_units=2000, index_slots=4000,
                 index_entries=40000, background=False)


class Half:
    """Commits even-numbered orders, rolls back the others."""

    async def execute_local_transaction(self, msg, n: int) -> LocalTransactionState:
        return LocalTransactionState.COMMIT if n % 2 == 0 else LocalTransactionState.ROLLBACK

    async def check_local_transaction(self, msg) -> LocalTransactionState:
        return LocalTransactionState.COMMIT


async def traffic(namesrv: str) -> list[str]:
    """The keys sent, for the index queries."""
    keys: list[str] = []
    async with Producer("PG_id", namesrv=namesrv) as p:
        for i in range(1500):
            key = f"k{i}"
            keys.append(key)
            r = await p.send(Message("IdA" if i % 3 else "IdB", os.urandom(100 + i * 7 % 1900),
                                     tags=f"t{i % 4}", keys=key))
            assert r.status is SendStatus.SEND_OK
            if i % 100 == 0:
                batch = [Message("IdB", b"batch %d-%d" % (i, j), tags="bt") for j in range(16)]
                assert (await p.send_batch(batch)).status is SendStatus.SEND_OK
                r = await p.send(Message("IdA", b"delayed %d" % i, delay_level=1 + i % 2))
                assert r.status is SendStatus.SEND_OK
    async with TransactionProducer("TG_id", namesrv=namesrv, listener=Half()) as tp:
        for n in range(20):
            await tp.send_in_transaction(Message("IdT", b"order %d" % n, keys=f"o{n}"), n)
    return keys


def test_the_slave_holds_the_masters_bytes_and_answers_the_same(tmp_path: Path) -> None:
    pair = HAPair(tmp_path, role="SYNC_MASTER", store_args=STORE_ARGS,
                  common_conf="messageDelayLevel=1s 2s\n")
    try:
        pair.ns_proc.start()
        pair.master_proc.start()
        for topic in ("IdA", "IdB", "IdT"):
            pair.create_topic(topic, 4)
        pair.start_slave()
        keys = run(traffic(pair.namesrv), timeout_s=120)
        run(asyncio.sleep(2.5))  # every delayed message delivered (the ladder's longest: 2 s)
        wait_until(lambda: all(pair.max_offset(pair.slave, t, q) ==
                               pair.max_offset(pair.master, t, q)
                               for t in ("IdA", "IdB", "IdT") for q in range(4)), 10,
                   what="slave caught up")
    finally:
        pair.stop()  # the slave first: what the master holds then is all it will hold
    with pair_stores(pair, STORE_CFG, delay_levels="1s 2s") as (master, slave):
        end = slave.commitlog.max_offset
        assert slave.commitlog.min_offset == 0 and end == master.commitlog.max_offset
        assert len(master.commitlog.files.files) >= 4  # BLANK-closed segments replicated
        assert log_digest(slave, 0, end) == log_digest(master, 0, end)
        queues = master.topics_and_queues()
        assert sorted(slave.topics_and_queues()) == sorted(queues)
        assert {t for t, _ in queues} >= {"IdA", "IdB", "IdT", "SCHEDULE_TOPIC_XXXX",
                                          "RMQ_SYS_TRANS_HALF_TOPIC",
                                          "RMQ_SYS_TRANS_OP_HALF_TOPIC"}
        for topic, qid in queues:
            a, b = master.get(topic, qid, 0, 5000), slave.get(topic, qid, 0, 5000)
            assert (a.status, a.min_offset, a.max_offset) == (b.status, b.min_offset,
                                                                b.max_offset), (topic, qid)
            assert [m.commitlog_offset for m in a.messages] == \
                [m.commitlog_offset for m in b.messages]
            if topic != "SCHEDULE_TOPIC_XXXX":  # there a unit's code is a delivery time
                for tag in ("t1", "bt"):
                    assert [m.commitlog_offset for m in master.get(topic, qid, 0, 5000,
                                                                   tags=tag).messages] == \
                        [m.commitlog_offset for m in slave.get(topic, qid, 0, 5000,
                                                               tags=tag).messages]
        for topic, key in [("IdA", k) for k in keys[1::97]] + [("IdT", "o4"), ("IdT", "o5")]:
            want = sorted(m.commitlog_offset for m in master.query(topic, key))
            assert sorted(m.commitlog_offset for m in slave.query(topic, key)) == want, key
