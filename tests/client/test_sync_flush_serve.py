"""`rmqstore serve --flush sync` (group commit led from the event loop, fdatasync on a native
thread, or on the loop's own for a lone producer): every send acknowledged to concurrent
producers, or to a lone one, survives a SIGKILL in mid-load
followed by a power loss (tests/power_loss.py drops whatever the broker's sync journal does
not show durable), byte for byte, over several crashes; so does the topic it went to; and the
broker restarts after them, serves sync sends, and stops cleanly. Once a topic is admitted,
the sends are SendPath.serve's (a read of them at a time, answers held until durable).

A SIGKILL alone keeps the page cache: a broker answering before its fdatasync would pass it.
The power loss catches such a broker only when the kill lands in the gap between an answer
and its sync; the journal, which the broker writes before answering, catches it at once: each
answer is checked against it as it arrives.

Set RMQ_SERVE_CRASH_SEED to replay a failing run (the seed is in every failure message).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import re
from pathlib import Path

import pytest

import rmqstore
from rmqstore.client import Message, Producer, SendStatus
from rmqstore.config import StoreConfig
from rmqstore.filenames import commitlog_dir
from rmqstore.metadata import read_json
from rmqstore.protocol.message import parse_msg_id
from rmqstore.sync_journal import ENV
from rmqstore.topics import TopicConfigManager
from tests import power_loss

from .conftest import Server, run

SERVED = re.compile(r"native send path: (\d+) sends answered, (\d+) of them whole reads")
ROUNDS = int(os.environ.get("RMQ_SERVE_CRASH_ROUNDS", 3))  # more for a soak run
# (producers, each its own connection; sends in flight per producer): concurrent sends (the
# native syncer thread's group commits) and a lone one (the event loop's own fdatasync)
SHAPES = [(4, 4), (1, 1)]
MAX_SENDS = 500  # per lane and round: a bound; the kill comes long before
QUEUES = 4


def _body(rnd: int, producer: int, lane: int, i: int) -> bytes:
    head = b"round %d producer %d lane %d message %d " % (rnd, producer, lane, i)
    return head + hashlib.shake_128(head).digest(32 + i % 200)


class Load:
    """Producers sending until the broker is SIGKILLed after `kill_after` acknowledgements."""

    def __init__(self, srv: Server, journal: Path, topic: str, rnd: int, kill_after: int,
                 acked: dict[str, bytes], ctx: str, shape: tuple[int, int]) -> None:
        self.srv = srv
        self.producers, self.lanes = shape
        self.tail = power_loss.JournalTail(journal)
        self.topic = topic
        self.rnd = rnd
        self.kill_after = kill_after
        self.acked = acked
        self.ctx = ctx
        self.acks = 0
        self.killed = False

    async def run(self) -> None:
        async with contextlib.AsyncExitStack() as stack:
            producers = [await stack.enter_async_context(
                Producer(f"PG_power_{k}", self.srv.namesrv, retry_times_when_send_failed=0))
                for k in range(self.producers)]
            if self.rnd == 0:
                await producers[0].create_topic(self.topic, QUEUES)
            await asyncio.gather(*(self._lane(p, k, n) for k, p in enumerate(producers)
                                   for n in range(self.lanes)))
        assert self.killed, f"{self.ctx}: {self.acks} sends, no kill"

    async def _lane(self, p: Producer, k: int, n: int) -> None:
        for i in range(MAX_SENDS):
            if self.killed:
                return
            body = _body(self.rnd, k, n, i)
            try:
                r = await p.send(Message(self.topic, body, keys=[f"r{self.rnd}-{k}-{n}-{i}"]))
            except Exception:
                if self.killed:  # in flight when the broker died: not acknowledged
                    return
                raise
            assert r.status is SendStatus.SEND_OK, (self.ctx, r)
            # An offset id seen before means an acknowledged message was lost and its place
            # in the commit log taken.
            assert r.offset_msg_id not in self.acked, (
                f"{self.ctx}: commit-log offset of {r.offset_msg_id} acknowledged twice")
            self.acked[r.offset_msg_id] = body
            _, offset = parse_msg_id(r.offset_msg_id)
            assert self.tail.covers(commitlog_dir(self.srv.data), offset), (
                f"{self.ctx}: the send at commit-log offset {offset} was answered before the "
                "broker journaled it durable")
            self.acks += 1
            if self.acks >= self.kill_after and not self.killed:
                self.killed = True
                self.srv.broker_proc.kill()  # SIGKILL in mid-load: no flush, no close


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "%dx%d" % s)
def test_acked_sync_sends_survive_kill9_and_power_loss(tmp_path: Path, topic: str,
                                                       shape: tuple[int, int]) -> None:
    seed = int(os.environ.get("RMQ_SERVE_CRASH_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    journal = tmp_path / "sync-journal"
    srv = Server(tmp_path, split=False)
    srv.broker_proc.args += ["--flush", "sync"]
    srv.broker_proc.env[ENV] = str(journal)
    srv.broker_proc.verbose = True  # INFO: the native send path's counts at the stop
    acked: dict[str, bytes] = {}
    losses = []
    try:
        for rnd in range(ROUNDS):
            ctx = f"seed {seed} round {rnd}"
            srv.start()
            run(Load(srv, journal, topic, rnd, rng.randint(100, 400), acked, ctx,
                     shape).run(), 60)
            losses.append(str(power_loss.apply(journal, srv.data)))
            # the topic's config was durable before create_topic returned (in topics.json or
            # in the journal of its changes, which a reopen replays)
            configs = TopicConfigManager(srv.data)
            configs.load()
            assert configs.get(topic) is not None, f"{ctx}: {losses[-1]}"
        srv.start()  # recovers, serves sync sends again, and stops cleanly on SIGTERM

        async def after() -> None:
            async with Producer("PG_power_after", srv.namesrv) as p:
                for i in range(10):
                    body = b"after restart %d" % i
                    acked[(await p.send(Message(topic, body))).offset_msg_id] = body

        run(after(), 60)
        assert srv.broker_proc.terminate() == 0
        log = srv.broker_proc.log()
        assert "Traceback" not in log
        # the sends after the restart were stored and answered by SendPath.serve (whole reads),
        # as the admitted sends of every round before the kills were
        served = SERVED.findall(log)
        assert served and int(served[-1][1]) > 0, served
        # after a clean stop topics.json alone is complete, as a Java broker would read it
        topics = read_json(srv.data / "config" / "topics.json") or {}
        assert topic in topics.get("topicConfigTable", {})
    finally:
        srv.stop()

    # The broker's store, recovered after each loss, has every acknowledged message.
    with rmqstore.open(srv.data, **StoreConfig.sizes_on_disk(srv.data)) as store:
        stored = {}
        for q in range(QUEUES):
            off = 0
            for _ in range(len(acked)):  # bounded: each page holds at least one message
                res = store.get(topic, q, off, 256)
                if not res.messages:
                    break
                stored.update((m.msg_id, m.body) for m in res.messages)
                off = res.next_offset
        lost = [msg_id for msg_id, body in acked.items() if stored.get(msg_id) != body]
        assert not lost, (f"seed {seed}: {len(lost)} of {len(acked)} acknowledged messages "
                          f"lost or changed, e.g. {lost[:3]}; {losses}")
    print(f"seed {seed}: {len(acked)} acknowledged sends; {losses}")
