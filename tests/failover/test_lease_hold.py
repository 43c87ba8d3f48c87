"""A master whose lease just lapsed holds a send for the renewal (server/controller/lease.py):
a controller handover can leave a gap between the old controller's last grant and the next
one's first, and a send arriving in it is taken once the renewal comes instead of refused.
Without a renewal the hold ends HOLD_MS after the lapse, and the send is refused: the hold
never lets a lapsed lease acknowledge. A real send handler over a store in a temp dir."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from rmqstore import open_store
from rmqstore.net.dispatch import RequestContext
from rmqstore.protocol import RemotingCommand, RequestCode, ResponseCode
from rmqstore.protocol.topic_config import TopicConfig
from rmqstore.server.broker.config import BrokerConfig
from rmqstore.server.broker.handlers.send import SendProcessor
from rmqstore.server.broker.longpoll import ArrivalWaiters
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
