"""A master whose lease just lapsed holds a send for the renewal (server/controller/lease.py):
a controller handover can leave a gap between the old controller's last grant and the next
one's first, and a send arriving in it is taken once the renewal comes instead of refused.
Without a renewal the hold ends HOLD_MS after the lapse, and the send is refused: the hold
never lets a lapsed lease acknowledge. A real send handler over a store in a temp dir; the
broker's heartbeats, to a fake controller."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from rmqstore import open_store
from rmqstore.net.dispatch import RequestContext
from rmqstore.protocol import RemotingCommand, RequestCode, ResponseCode
from rmqstore.protocol.topic_config import TopicConfig
from rmqstore.server.broker.config import BrokerConfig
from rmqstore.server.broker.handlers.send import SendProcessor
from rmqstore.server.broker.longpoll import ArrivalWaiters
from rmqstore.server.broker.replicas_manager import ReplicasManager
from rmqstore.server.broker.role import BrokerRole
from rmqstore.server.broker.subgroups import SubscriptionGroupManager
from rmqstore.server.broker.topics import BrokerTopics
from rmqstore.server.controller.lease import DRIFT_MARGIN_MS, HOLD_MS, LEASE_MS

TOPIC, EPOCH = "HoldT", 3
HOLD_S = HOLD_MS / 1000


@pytest.fixture()
def store(tmp_path) -> Iterator[object]:
    s = open_store(tmp_path / "store", background=False, index_enable=False)
    yield s
    s.close()


def processor(store, tmp_path) -> tuple[SendProcessor, BrokerRole]:
    config = BrokerConfig(controller_mode=True, controller_addrs=("127.0.0.1:1",),
                          sync_flush=False)
    role = BrokerRole(config)
    role.become_master(EPOCH)
    topics = BrokerTopics(store, lambda: None)
    topics.put(TopicConfig(TOPIC, 1, 1))
    proc = SendProcessor(config, store, topics, SubscriptionGroupManager(tmp_path, True),
                         ArrivalWaiters(), role=role)
    return proc, role


def lapse_now(role: BrokerRole) -> None:
    """The lease granted by the old controller's last answer has just run out."""
    role.lease.renewed(time.monotonic() - (LEASE_MS - DRIFT_MARGIN_MS) / 1000, EPOCH, LEASE_MS)


async def send(proc: SendProcessor, body: bytes) -> RemotingCommand:
    request = RemotingCommand.request(RequestCode.SEND_MESSAGE_V2, {
        "a": "pg", "b": TOPIC, "c": "TBW102", "d": "1", "e": "0", "f": "0",
        "g": str(int(time.time() * 1000)), "h": "0", "i": "", "j": "0", "k": "false"}, body)
    ctx = RequestContext("127.0.0.1:50000", None)  # type: ignore[arg-type]
    answer = proc.send_fast(request, ctx)
    if answer is None:  # not the fast path: the task the dispatcher would start
        answer = await proc.send(request, ctx)
    assert isinstance(answer, RemotingCommand)
    return answer


def test_a_send_in_the_handover_gap_waits_for_the_renewal(store, tmp_path) -> None:
    async def main() -> None:
        proc, role = processor(store, tmp_path)
        lapse_now(role)
        renew_after = 0.3  # the next active controller's first grant

        def renew() -> None:
            role.lease.renewed(time.monotonic(), EPOCH, LEASE_MS)
        asyncio.get_running_loop().call_later(renew_after, renew)
        started = time.monotonic()
        answer = await send(proc, b"in the gap")
        waited = time.monotonic() - started
        assert answer.code == ResponseCode.SUCCESS, answer.remark
        assert answer.ext_fields["masterEpoch"] == str(EPOCH)
        assert renew_after - 0.05 < waited < renew_after + 0.5  # woken by the renewal
        assert store.commitlog.max_offset > 0
    asyncio.run(asyncio.wait_for(main(), 10))


def test_a_lapsed_lease_never_acknowledges_during_or_after_the_hold(store, tmp_path) -> None:
    async def main() -> None:
        proc, role = processor(store, tmp_path)
        lapse_now(role)
        started = time.monotonic()
        held = asyncio.ensure_future(send(proc, b"no renewal comes"))
        await asyncio.sleep(HOLD_S / 3)  # within the hold: held, not stored, no ack allowed
        assert not held.done() and store.commitlog.max_offset == 0
        assert not role.may_acknowledge()  # a write stored earlier is not answered SEND_OK
        answer = await held
        waited = time.monotonic() - started
        assert answer.code == ResponseCode.SERVICE_NOT_AVAILABLE
        assert "lease" in (answer.remark or "")
        assert HOLD_S - 0.1 < waited < HOLD_S + 0.5
        assert store.commitlog.max_offset == 0  # nothing stored, nothing acknowledged
        # long lapsed (a master cut off from the controllers): refused at once, not held
        started = time.monotonic()
        again = await send(proc, b"later")
        assert again.code == ResponseCode.SERVICE_NOT_AVAILABLE
        assert time.monotonic() - started < 0.1
        assert not role.may_acknowledge()
    asyncio.run(asyncio.wait_for(main(), 10))


def test_a_demoted_master_is_not_held(store, tmp_path) -> None:
    async def main() -> None:
        proc, role = processor(store, tmp_path)
        lapse_now(role)
        role.become_slave(2, EPOCH + 1)  # a newer epoch exists: refused at once
        started = time.monotonic()
        answer = await send(proc, b"to a slave")
        assert answer.code == ResponseCode.SERVICE_NOT_AVAILABLE
        assert time.monotonic() - started < 0.1
    asyncio.run(asyncio.wait_for(main(), 10))


class Controllers:
    """RemotingClient.invoke as far as heartbeats go: counts them; grants a lease once
    ``granting`` (the next active controller took over)."""

    def __init__(self) -> None:
        self.beats: list[float] = []
        self.granting = False

    async def invoke(self, addr: str, request: RemotingCommand,
                     timeout_s: float) -> RemotingCommand:
        self.beats.append(time.monotonic())
        ext = {"masterEpoch": request.ext_fields["epoch"], "leaseMillis": "4000"} \
            if self.granting else {}
        return RemotingCommand.response(ResponseCode.SUCCESS, ext_fields=ext)


def test_a_master_holding_writes_heartbeats_often_until_renewed(store, tmp_path) -> None:
    """The held writes wait on the next controller's first grant: heartbeats every 0.1 s from
    the lapse, not every 0.5 s, so that grant comes within 0.1 s of that controller's start."""
    async def main() -> None:
        config = BrokerConfig(controller_mode=True, controller_addrs=("127.0.0.1:1",))
        role = BrokerRole(config)
        role.become_master(EPOCH)
        controllers = Controllers()
        epochs = SimpleNamespace(last_epoch=EPOCH, entries=[(EPOCH, 0)])
        tasks: list[asyncio.Future] = []
        manager = ReplicasManager(config, role, store, SimpleNamespace(epochs=epochs),
                                  controllers, None,  # type: ignore[arg-type]
                                  lambda coro: tasks.append(asyncio.ensure_future(coro)))
        manager.controller_id = 1
        lapse_now(role)
        beating = asyncio.ensure_future(manager._heartbeats())
        try:
            await asyncio.sleep(0.6)
            assert len(controllers.beats) >= 4, controllers.beats  # 0.1 s apart, not 0.5 s
            controllers.granting = True
            await asyncio.sleep(0.3)
            assert role.lease.valid(EPOCH)
            renewed = len(controllers.beats)
            await asyncio.sleep(0.6)
            assert len(controllers.beats) - renewed <= 2  # back to every 0.5 s
        finally:
            beating.cancel()
            await asyncio.gather(beating, *tasks, return_exceptions=True)
    asyncio.run(asyncio.wait_for(main(), 10))
