"""Loss: a SYNC_MASTER under load from four producers is SIGKILLed at random points, round after
round; every send it acknowledged SEND_OK is on the slave right then, byte for byte. An
ASYNC_MASTER may leave a tail of its acknowledged sends only on its own disk, never a hole. The
slave killed and restarted under load catches up with no gap and no duplicate.

RMQ_HA_KILL_ROUNDS and RMQ_HA_ASYNC_KILL_ROUNDS set the rounds (4 and 2 here;
benches/ha_kill_rounds.py runs many more) and RMQ_HA_SEED the random points (printed)."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rmqstore.client import Message, Producer
from rmqstore.client.producer import SendStatus
from rmqstore.net import RemotingClient
from rmqstore.protocol import RemotingCommand, RequestCode
from rmqstore.protocol.message import decode_messages, parse_msg_id
from rmqstore.server.testing import wait_until
from rmqstore.server.testing_ha import HAPair
from tests.client.conftest import run
from tests.log_digest import log_digest
from tests.replication.stores import pair_stores
from tests.replication.test_identity import STORE_ARGS, STORE_CFG

TOPIC = "LossT"
QUEUES = 4
PRODUCERS = 4
MAX_SENDS = 20_000  # per producer per round: a bound, never reached in the time given
READY_S = 10.0  # kill_the_slave_under_load waits this long at most for its ready()


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


async def on_slave(slave: str, acked: list[Acked]) -> list[bytes | None]:
    """Each message's body as the slave stores it at its commit-log offset, or None; over one
    connection (thousands of one-shot ones would leave as many ports in TIME_WAIT)."""
    out: list[bytes | None] = []
    async with RemotingClient() as client:
        for m in acked:
            r = await client.invoke(slave, RemotingCommand.request(
                RequestCode.VIEW_MESSAGE_BY_ID, {"offset": str(m.commitlog_offset)}), 5.0)
            found = decode_messages(r.body) if r.code == 0 else []
            out.append(found[0].body if found else None)
    return out


def kill_rounds() -> int:
    return int(os.environ.get("RMQ_HA_KILL_ROUNDS", "4"))


@dataclass
class Rounds:
    """What the master's SIGKILLs left on the slave."""

    seed: int
    acked: list[Acked] = field(default_factory=list)  # every SEND_OK of every round
    missing: list[Acked] = field(default_factory=list)  # SEND_OK, not on the slave at once
    statuses: dict[str, int] = field(default_factory=dict)


def kill_the_master(tmp_path: Path, role: str, rounds: int) -> Rounds:
    """``rounds`` times: four producers send to ``role`` until a random point, when the master
    is SIGKILLed (every other round with its slave hung by SIGSTOP for 0.1-0.4 s first, then
    SIGKILLed too and restarted alone); the acknowledged sends the slave does not hold once it
    settles are ``missing`` (the slave's queues must hold a prefix of the master's: no hole);
    the master then restarts and the slave catches up before the next round. At the end the
    slave's log is the master's, every acknowledged record in it byte for byte."""
    seed = int(os.environ.get("RMQ_HA_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    pair = HAPair(tmp_path, role=role, store_args=STORE_ARGS)
    out = Rounds(seed)
    try:
        pair.ns_proc.start()
        pair.master_proc.start()
        pair.create_topic(TOPIC, QUEUES)
        pair.start_slave()
        for n in range(rounds):
            acked: list[Acked] = []
            stop = asyncio.Event()

            async def round_(n=n, acked=acked, stop=stop) -> list[bytes | None]:
                loader = asyncio.ensure_future(load(pair.namesrv, f"r{n}", acked, out.statuses,
                                                    stop, 30.0))
                # The kill's random point counts from the round's first SEND_OK: after the last
                # round's restarts the producers may need seconds (a loaded machine) to get one.
                for _ in range(400):
                    if acked or loader.done():
                        break
                    await asyncio.sleep(0.05)
                await asyncio.sleep(rng.uniform(0.3, 1.2))
                stall = n % 2 == 1
                if stall:  # the slave hangs: what the master sends now waits in buffers
                    pair.slave_proc.pause()
                    await asyncio.sleep(rng.uniform(0.1, 0.4))
                pair.master_proc.kill()  # SIGKILL mid-load
                if stall:  # and dies: the bytes in its socket buffers are gone too
                    pair.slave_proc.kill()
                await asyncio.sleep(0.2)
                stop.set()
                await loader
                if stall:  # back with what its own log holds
                    await asyncio.to_thread(pair.slave_proc.start)
                settled(pair)
                return await on_slave(pair.slave, acked)

            held = run(round_(), timeout_s=90)
            assert acked, (seed, n, out.statuses)
            gone = [m for m, body in zip(acked, held, strict=True) if body != m.body]
            if gone:  # only a tail the master had not sent yet, never a hole
                first_gone = min(m.commitlog_offset for m in gone)
                assert all(m.commitlog_offset < first_gone
                           for m, body in zip(acked, held, strict=True) if body == m.body), \
                    f"seed {seed} round {n}: a hole in the slave's log"
            out.acked += acked
            out.missing += gone
            pair.restart_master()
        pair.wait_caught_up(TOPIC, QUEUES)
    finally:
        pair.stop()
    with pair_stores(pair, STORE_CFG) as (master, slave):
        end = slave.commitlog.max_offset
        assert end == master.commitlog.max_offset
        assert log_digest(slave, 0, end) == log_digest(master, 0, end)
        for m in out.acked:
            record = slave.get_by_commitlog_offset(m.commitlog_offset)
            assert record is not None and record.body == m.body
            assert bytes(record.record_view) == \
                bytes(master.get_by_commitlog_offset(m.commitlog_offset).record_view)
    print(f"{role}: {rounds} SIGKILL rounds of the master, {len(out.acked)} acknowledged "
          f"sends, {len(out.missing)} not on the slave when it died (seed {seed}, "
          f"{out.statuses})")
    return out


def test_every_acknowledged_send_is_on_the_slave_when_the_master_dies(tmp_path: Path) -> None:
    result = kill_the_master(tmp_path, "SYNC_MASTER", kill_rounds())
    assert len(result.missing) == 0, f"seed {result.seed}: {len(result.missing)} of " \
                               f"{len(result.acked)} acknowledged sends not on the slave"


def test_an_async_master_loses_at_most_the_tail_it_had_not_sent(tmp_path: Path) -> None:
    """ASYNC_MASTER answers before its slave holds a send: a SIGKILL may leave the last ones
    only on the master's disk (back on the slave once the master is), never a hole."""
    rounds = int(os.environ.get("RMQ_HA_ASYNC_KILL_ROUNDS", "2"))
    result = kill_the_master(tmp_path, "ASYNC_MASTER", rounds)
    assert len(result.acked) > 100


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
        run(kill_the_slave_under_load(pair, rng, acked, statuses, 3, (0.3, 1.0)),
            timeout_s=120)
        pair.wait_caught_up(TOPIC, QUEUES)
    finally:
        pair.stop()
    assert statuses.get("SEND_OK", 0) > 100, statuses
    assert_the_slave_caught_up(pair, acked)


async def kill_the_slave_under_load(pair: HAPair, rng: random.Random, acked: list[Acked],
                                    statuses: dict[str, int], kills: int,
                                    pause_s: tuple[float, float],
                                    after_kill: Callable[[], object] | None = None,
                                    ready: Callable[[], bool] = lambda: True) -> None:
    """Producers send while the slave is SIGKILLed ``kills`` times at random points,
    ``after_kill()`` each time (a power loss, say), and started again; no kill comes before
    ``ready()`` (waited for up to READY_S)."""
    stop = asyncio.Event()
    loader = asyncio.ensure_future(load(pair.namesrv, "s", acked, statuses, stop, 60))
    for _ in range(kills):
        await asyncio.sleep(rng.uniform(*pause_s))
        give_up = time.monotonic() + READY_S
        while not ready() and time.monotonic() < give_up:
            await asyncio.sleep(0.05)
        pair.slave_proc.kill()  # SIGKILL mid-append, under load
        if after_kill is not None:
            after_kill()
        await asyncio.sleep(0.2)
        await asyncio.to_thread(pair.start_slave)
    await asyncio.sleep(0.5)
    stop.set()
    await loader


def assert_the_slave_caught_up(pair: HAPair, acked: list[Acked]) -> None:
    """The stopped pair's slave holds its master's whole log, byte for byte (no gap), each
    queue the master's messages once (no duplicate), every acknowledged send among them."""
    with pair_stores(pair, STORE_CFG) as (master, slave):
        end = slave.commitlog.max_offset
        assert slave.commitlog.min_offset == 0 and end == master.commitlog.max_offset
        assert log_digest(slave, 0, end) == log_digest(master, 0, end)  # no gap
        for q in range(QUEUES):
            mine = [m.body for m in slave.get(TOPIC, q, 0, 100_000).messages]
            theirs = [m.body for m in master.get(TOPIC, q, 0, 100_000).messages]
            assert mine == theirs and len(set(mine)) == len(mine)  # no duplicate
        for m in acked:
            assert slave.get_by_commitlog_offset(m.commitlog_offset).body == m.body
