"""Loss: a SYNC_MASTER under load from four producers is SIGKILLed at random points, round after
round; every send it acknowledged SEND_OK is on the slave right then, byte for byte. The slave
killed and restarted under load catches up with no gap and no duplicate.

RMQ_HA_KILL_ROUNDS sets the rounds (4 here; benches/ha_kill_rounds.py runs many more) and
RMQ_HA_SEED the random points (printed on failure)."""

from __future__ import annotations

import asyncio
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import rmqstore
from rmqstore.client import Message, Producer
from rmqstore.client.producer import SendStatus
from rmqstore.protocol import RequestCode
from rmqstore.protocol.message import decode_messages, parse_msg_id
from rmqstore.server.testing import call, wait_until
from rmqstore.server.testing_ha import HAPair
from tests.client.conftest import run
from tests.replication.test_identity import STORE_ARGS, STORE_CFG, digest

TOPIC = "LossT"
QUEUES = 4
PRODUCERS = 4
MAX_SENDS = 20_000  # per producer per round: a bound, never reached in the time given


@dataclass(frozen=True)
class Acked:
    body: bytes
    queue_id: int
    queue_offset: int
    commitlog_offset: int


async def load(namesrv: str, tag: str, acked: list[Acked], statuses: dict[str, int],
               until: asyncio.Event, seconds: float) -> None:
    """PRODUCERS producers sending at once until ``until`` is set (or ``seconds`` pass)."""

    async def one(k: int) -> None:
        async with Producer(f"PG_loss_{k}", namesrv=namesrv, send_timeout_s=2.0,
                            retry_times_when_send_failed=0) as p:
            for i in range(MAX_SENDS):
                if until.is_set():
                    return
                body = b"%s-%d-%d-" % (tag.encode(), k, i) + os.urandom(64 + i % 500)
                try:
                    r = await p.send(Message(TOPIC, body))
                except Exception:  # noqa: BLE001 - the master died under this send
                    statuses["error"] = statuses.get("error", 0) + 1
                    await asyncio.sleep(0.05)
                    continue
                statuses[r.status.name] = statuses.get(r.status.name, 0) + 1
                if r.status is SendStatus.SEND_OK:
                    acked.append(Acked(body, r.queue.queue_id, r.queue_offset,
                                       parse_msg_id(r.offset_msg_id)[1]))

    try:
        async with asyncio.timeout(seconds):
            await asyncio.gather(*(one(k) for k in range(PRODUCERS)))
    except TimeoutError:
        pass


def settled(pair: HAPair) -> list[int]:
    """The slave's queue sizes, once they stopped moving for 0.3 s."""
    sizes: list[int] = []

    def still() -> bool:
        nonlocal sizes
        now = [pair.max_offset(pair.slave, TOPIC, q) for q in range(QUEUES)]
        same, sizes = now == sizes, now
        return same
    wait_until(still, 15, interval_s=0.3, what="the slave to settle")
    return sizes


def on_slave(pair: HAPair, msg: Acked) -> bytes | None:
    """The message's body as the slave stores it at its commit-log offset, or None."""
    r = call(pair.slave, RequestCode.VIEW_MESSAGE_BY_ID, {"offset": str(msg.commitlog_offset)})
    if r.code != 0:
        return None
    found = decode_messages(r.body)
    return found[0].body if found else None


def kill_rounds() -> int:
    return int(os.environ.get("RMQ_HA_KILL_ROUNDS", "4"))


def test_every_acknowledged_send_is_on_the_slave_when_the_master_dies(tmp_path: Path) -> None:
    seed = int(os.environ.get("RMQ_HA_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    pair = HAPair(tmp_path, role="SYNC_MASTER", store_args=STORE_ARGS)
    everything: list[Acked] = []
    rounds = kill_rounds()
    try:
        pair.ns_proc.start()
        pair.master_proc.start()
        pair.create_topic(TOPIC, QUEUES)
        pair.start_slave()
        for n in range(rounds):
            acked: list[Acked] = []
            statuses: dict[str, int] = {}
            stop = asyncio.Event()

            async def round_(n=n, acked=acked, statuses=statuses, stop=stop) -> None:
                loader = asyncio.ensure_future(load(pair.namesrv, f"r{n}", acked, statuses,
                                                    stop, 30.0))
                await asyncio.sleep(rng.uniform(0.3, 1.2))
                pair.master_proc.kill()  # SIGKILL mid-load
                await asyncio.sleep(0.2)
                stop.set()
                await loader

            run(round_(), timeout_s=60)
            assert acked, (seed, n, statuses)
            sizes = settled(pair)
            missing = [m for m in acked if m.queue_offset >= sizes[m.queue_id]
                       or on_slave(pair, m) != m.body]
            assert not missing, f"seed {seed} round {n}: {len(missing)} of {len(acked)} " \
                                f"acknowledged sends not on the slave ({statuses})"
            everything += acked
            pair.restart_master()
    finally:
        pair.stop()
    # at the end, the slave's log is the master's, every acknowledged record in it
    master = rmqstore.open(pair.master_data, **STORE_CFG)
    slave = rmqstore.open(pair.slave_data, replica=True, **STORE_CFG)
    try:
        end = slave.commitlog.max_offset
        assert end <= master.commitlog.max_offset
        assert digest(slave, 0, end) == digest(master, 0, end)
        for m in everything:
            record = slave.get_by_commitlog_offset(m.commitlog_offset)
            assert record is not None and record.body == m.body
            assert bytes(record.record_view) == \
                bytes(master.get_by_commitlog_offset(m.commitlog_offset).record_view)
    finally:
        master.close()
        slave.close()
    print(f"{rounds} SIGKILL rounds of the master, {len(everything)} acknowledged sends, "
          f"0 missing (seed {seed})")


def test_a_slave_killed_under_load_catches_up_with_no_gap_and_no_duplicate(tmp_path) -> None:
    seed = int(os.environ.get("RMQ_HA_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    pair = HAPair(tmp_path, role="SYNC_MASTER", store_args=STORE_ARGS)
    acked: list[Acked] = []
    statuses: dict[str, int] = {}
    try:
        pair.ns_proc.start()
        pair.master_proc.start()
        pair.create_topic(TOPIC, QUEUES)
        pair.start_slave()
        stop = asyncio.Event()

        async def main() -> None:
            loader = asyncio.ensure_future(load(pair.namesrv, "s", acked, statuses, stop, 60))
            for _ in range(3):
                await asyncio.sleep(rng.uniform(0.3, 1.0))
                pair.slave_proc.kill()  # SIGKILL mid-append, under load
                await asyncio.sleep(0.2)
                await asyncio.get_running_loop().run_in_executor(None, pair.start_slave)
            await asyncio.sleep(0.5)
            stop.set()
            await loader

        run(main(), timeout_s=120)
        wait_until(lambda: [pair.max_offset(pair.slave, TOPIC, q) for q in range(QUEUES)] ==
                   [pair.max_offset(pair.master, TOPIC, q) for q in range(QUEUES)], 15,
                   what=f"the slave caught up (seed {seed})")
    finally:
        pair.stop()
    assert statuses.get("SEND_OK", 0) > 100, statuses
    master = rmqstore.open(pair.master_data, **STORE_CFG)
    slave = rmqstore.open(pair.slave_data, replica=True, **STORE_CFG)
    try:
        end = slave.commitlog.max_offset
        assert slave.commitlog.min_offset == 0 and end == master.commitlog.max_offset
        assert digest(slave, 0, end) == digest(master, 0, end)  # no gap
        for q in range(QUEUES):
            mine = [m.body for m in slave.get(TOPIC, q, 0, 100_000).messages]
            theirs = [m.body for m in master.get(TOPIC, q, 0, 100_000).messages]
            assert mine == theirs and len(set(mine)) == len(mine)  # no duplicate
        for m in acked:
            assert slave.get_by_commitlog_offset(m.commitlog_offset).body == m.body
    finally:
        master.close()
        slave.close()
