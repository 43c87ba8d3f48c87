"""Power loss with SYNC_MASTER, both brokers ASYNC_FLUSH (RocketMQ's usual pairing: the copy on
the slave stands in for the master's fsync). tests/power_loss.py drops from a broker's store
whatever its sync journal does not show durable, as a power loss of its machine would:

- the master's machine loses power under load from four producers: every send it answered
  SEND_OK is on the slave byte for byte, and what the master's own log kept is the slave's;
- the slave's machine loses power under load, twice: it recovers, catches up from the master
  and ends byte-identical to it (SHA-256), no gap, no duplicate.

Real processes on loopback; every wait bounded. RMQ_HA_POWER_ROUNDS sets the master's rounds
(1 here), RMQ_HA_SEED the random points (printed)."""

from __future__ import annotations

import asyncio
import os
import random
import time
from pathlib import Path

from rmqstore.server.testing_ha import HAPair
from rmqstore.sync_journal import ENV
from tests import power_loss
from tests.client.conftest import run
from tests.log_digest import log_digest
from tests.replication.stores import pair_stores
from tests.replication.test_identity import STORE_ARGS, STORE_CFG
from tests.replication.test_loss import (
    QUEUES,
    TOPIC,
    Acked,
    assert_the_slave_caught_up,
    kill_the_slave_under_load,
    load,
    on_slave,
)

MASTER_SYNC_TIMEOUT_S = 20.0


def seeded() -> tuple[int, random.Random]:
    seed = int(os.environ.get("RMQ_HA_SEED", time.time_ns() % 1_000_000))
    return seed, random.Random(seed)


def started_pair(root: Path, journal_of: str) -> tuple[HAPair, Path]:
    """A SYNC_MASTER and its slave, ``journal_of`` ("master" or "slave") journaling its syncs."""
    pair = HAPair(root, role="SYNC_MASTER", store_args=STORE_ARGS)
    journal = root / f"{journal_of}.journal"
    getattr(pair, f"{journal_of}_proc").env[ENV] = str(journal)
    pair.ns_proc.start()
    pair.master_proc.start()
    pair.create_topic(TOPIC, QUEUES)
    pair.start_slave()
    return pair, journal


async def kill_both_under_load(pair: HAPair, tag: str, acked: list[Acked],
                               statuses: dict[str, int], rng: random.Random,
                               journal: Path) -> None:
    """Producers send; at a random point once the master synced some of its log, the slave
    hangs (SIGSTOP), then the master and the slave are SIGKILLed. A master that synced none
    (ASYNC_FLUSH, its flush not yet run on a loaded machine) loses its whole log to the power
    loss, rightly: nothing is left to compare with the slave's."""
    stop = asyncio.Event()
    loader = asyncio.ensure_future(load(pair.namesrv, tag, acked, statuses, stop, 30.0))
    await asyncio.sleep(rng.uniform(0.5, 1.5))
    for _ in range(int(MASTER_SYNC_TIMEOUT_S / 0.05)):
        if synced_some_log(journal):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"the master synced none of its log in {MASTER_SYNC_TIMEOUT_S} s")
    pair.slave_proc.pause()
    await asyncio.sleep(rng.uniform(0.1, 0.3))
    pair.master_proc.kill()
    pair.slave_proc.kill()
    stop.set()
    await loader


def test_every_send_ok_is_on_the_slave_after_the_masters_power_loss(tmp_path: Path) -> None:
    """The slave hangs a moment before the master dies (what the master sent meanwhile waits
    in socket buffers), then is SIGKILLed too: its socket buffers are gone, its page cache is
    not (its machine kept power). A send answered before the slave held it would be lost."""
    seed, rng = seeded()
    for n in range(int(os.environ.get("RMQ_HA_POWER_ROUNDS", "1"))):
        pair, journal = started_pair(tmp_path / f"round{n}", "master")
        acked: list[Acked] = []
        statuses: dict[str, int] = {}
        try:
            run(kill_both_under_load(pair, f"p{n}", acked, statuses, rng, journal),
                timeout_s=60)
            loss = power_loss.apply(journal, pair.master_data)
            pair.slave_proc.start()  # alone: its master is gone
            held = run(on_slave(pair.slave, acked), timeout_s=120)
        finally:
            pair.stop()
        assert statuses.get("SEND_OK", 0) > 100, (seed, statuses)
        missing = [m for m, body in zip(acked, held, strict=True) if body != m.body]
        assert not missing, f"seed {seed} round {n}: {len(missing)} of {len(acked)} SEND_OK " \
                            f"not on the slave ({loss})"
        with pair_stores(pair, STORE_CFG) as (master, slave):
            # the two logs agree as far as both go: the master lost only a tail (and may
            # hold sends it stored, flushed and never had acknowledged while the slave hung)
            end = min(master.commitlog.max_offset, slave.commitlog.max_offset)
            assert end > 0
            assert log_digest(master, 0, end) == log_digest(slave, 0, end)
        print(f"seed {seed} round {n}: {len(acked)} SEND_OK all on the slave; {loss}")


def synced_some_log(journal: Path) -> bool:
    """Whether the journaled process made any of its commit log durable yet."""
    return journal.exists() and any(
        '"upto"' in line and "/commitlog/" in line for line in journal.read_text().splitlines())


def test_a_slave_recovers_from_power_loss_and_catches_up(tmp_path: Path) -> None:
    seed, rng = seeded()
    pair, journal = started_pair(tmp_path, "slave")
    acked: list[Acked] = []
    statuses: dict[str, int] = {}
    losses: list[power_loss.Loss] = []
    try:
        # Not before the slave synced some of its log: one a power loss left empty is a new
        # slave, which its master feeds from its last segment (HAConnection), not from 0.
        run(kill_the_slave_under_load(
            pair, rng, acked, statuses, 2, (0.6, 1.2),
            lambda: losses.append(power_loss.apply(journal, pair.slave_data)),
            lambda: synced_some_log(journal)), timeout_s=120)
        pair.wait_caught_up(TOPIC, QUEUES)
    finally:
        pair.stop()
    assert statuses.get("SEND_OK", 0) > 100, (seed, statuses)
    assert any(loss.zeroed for loss in losses), (seed, [str(x) for x in losses])
    assert_the_slave_caught_up(pair, acked)
    print(f"seed {seed}: {[str(x) for x in losses]}")
