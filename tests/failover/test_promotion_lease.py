"""A broker the controller makes master holds the lease of its new epoch before the NameServers
(and through their push, the clients) hear of it, and gets it without waiting for a controller
that is cut off (even the one it last knew as active): otherwise the first sends the clients
move to it fail (SERVICE_NOT_AVAILABLE, "the master lease ... is not held")."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

from rmqstore.protocol import RemotingCommand, ResponseCode
from rmqstore.protocol.controller_body import SyncStateSet
from rmqstore.server.broker.config import BrokerConfig
from rmqstore.server.broker.replicas_manager import ReplicasManager
from rmqstore.server.broker.role import BrokerRole

ACTIVE, CUT_OFF = "10.0.0.1:9876", "10.0.0.2:9876"


class Controllers:
    """RemotingClient.invoke as far as heartbeats go: the active controller grants a lease for
    the epoch it is told of; the other is cut off (no answer within the timeout)."""

    async def invoke(self, addr: str, request: RemotingCommand,
                     timeout_s: float) -> RemotingCommand:
        if addr == CUT_OFF:
            await asyncio.sleep(timeout_s)
            raise TimeoutError(f"no answer from {addr}")
        return RemotingCommand.response(ResponseCode.SUCCESS, ext_fields={
            "masterEpoch": request.ext_fields["epoch"], "leaseMillis": "4000"})


class Replication:
    def __init__(self) -> None:
        self.epochs = SimpleNamespace(last_epoch=2, entries=[(2, 0)])
        self.isr = SimpleNamespace(enough_in_sync=lambda: True)

    async def to_master(self, me: int, epoch: int, *_: object) -> None:
        self.epochs.last_epoch = epoch


def test_the_new_master_is_leased_before_the_nameservers_hear_of_it() -> None:
    async def main() -> None:
        config = BrokerConfig(controller_mode=True, controller_addrs=(ACTIVE, CUT_OFF))
        role = BrokerRole(config)
        store = SimpleNamespace(commitlog=SimpleNamespace(max_offset=0), confirm_offset=None)
        told: list[tuple[bool, float]] = []
        started = time.monotonic()

        async def registered() -> None:  # the broker registers with the NameServers
            told.append((role.lease.valid(role.master_epoch), time.monotonic() - started))

        spawned: list[asyncio.Future] = []
        manager = ReplicasManager(config, role, store, Replication(), Controllers(),
                                  registered, lambda coro: spawned.append(
                                      asyncio.ensure_future(coro)))
        manager.controller_id, manager._leader = 2, CUT_OFF  # the active one, as last known
        await manager.change_role(2, "10.0.0.5:10911", 3, SyncStateSet(frozenset({2}), 4))
        assert not role.slave and role.master_epoch == 3
        assert told and told[0][0], "registered before the lease of epoch 3 was held"
        assert told[0][1] < config.broker_heartbeat_interval_ms / 1000  # not after the timeout
        await asyncio.gather(*spawned)  # the cut-off controller's heartbeat, timed out
    asyncio.run(asyncio.wait_for(main(), 10))
