"""The master lease across a controller handover (server/controller/lease.py), on one fake
clock: every lease the old active controller granted is over before the new one may elect a
replacement, and the new one waits only the handover grace for it, not a whole lease."""

from __future__ import annotations

import asyncio

from rmqstore.server.controller.lease import HANDOVER_GRACE_MS, LEASE_MS
from rmqstore.server.controller.metastore import MemoryMetaStore
from rmqstore.server.controller.service import ControllerConfig, ControllerService
from rmqstore.server.controller.state import BrokerSetState, Member

KEY_MASTER, KEY_SLAVE = ("c1", "b", 1), ("c1", "b", 2)
STATE = BrokerSetState("c1", "b", {1: Member("10.0.0.1:10911", "x"),
                                   2: Member("10.0.0.2:10911", "y")}, 3, master=1,
                       master_epoch=1, sync_state_set=frozenset({1, 2}), sync_state_set_epoch=1)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def controller(store: MemoryMetaStore, clock: Clock, me: str) -> ControllerService:
    ctl = ControllerService(ControllerConfig(prefix="/t"), store, clock)
    ctl.leadership.me = me
    await ctl.leadership._step()  # campaign once: active if the key is vacant
    return ctl


def heartbeat(ctl: ControllerService, key: tuple[str, str, int], timeout_ms: int) -> int | None:
    return ctl.on_heartbeat(key, f"10.0.0.{key[2]}:10911", timeout_ms, None, 1, 0, 0, 1)


def test_no_grant_outlives_the_handover_and_the_next_waits_only_the_grace() -> None:
    async def main() -> None:
        clock = Clock()
        store = MemoryMetaStore(clock)
        old = await controller(store, clock, "a")
        assert old.active
        old._cache["b"] = STATE
        term_end = 2.0  # its etcd lease (TTL 2 s) was last renewed at 0
        clock.now = 1.9  # the master's last heartbeat before the old controller dies
        granted = heartbeat(old, KEY_MASTER, 60_000)  # a broker that times out late
        assert granted is not None
        lease_end = clock.now + granted / 1000
        assert lease_end <= term_end + HANDOVER_GRACE_MS / 1000  # not 1.9 + LEASE_MS
        # the old controller dies; etcd expires its lease; the standby takes over at once
        clock.now = term_end
        new = await controller(store, clock, "b")
        assert new.active and not old.active
        new._cache["b"] = STATE
        heartbeat(new, KEY_SLAVE, 60_000)  # the master is silent from now on
        new.live.table.pop(KEY_MASTER, None)  # and counts as not alive (its timeout passed)
        while clock.now < lease_end:  # the master may still acknowledge: no replacement
            assert not new.may_replace(STATE), clock.now
            clock.now += 0.05
        clock.now = max(lease_end, term_end + HANDOVER_GRACE_MS / 1000)
        assert new.may_replace(STATE)  # within the grace, well before a whole lease
        assert clock.now < term_end + LEASE_MS / 1000
    asyncio.run(main())
