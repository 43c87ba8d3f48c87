"""The controller in two NameServers sharing one consensus store (in memory), spoken to over
real loopback sockets as a broker speaks to it: one active at a time, the broker's way in
(ids, registration, first election), leases, handover, and decisions fenced by revision."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rmqstore.net import RemotingClient
from rmqstore.protocol import RemotingCommand, RequestCode, ResponseCode
from rmqstore.protocol.acl_signature import sign_request
from rmqstore.protocol.controller import (
    AlterSyncStateSetRequestHeader,
    ApplyBrokerIdRequestHeader,
    BrokerHeartbeatRequestHeader,
    CleanControllerBrokerDataRequestHeader,
    ElectMasterRequestHeader,
    GetNextBrokerIdRequestHeader,
    GetReplicaInfoRequestHeader,
    RegisterBrokerToControllerRequestHeader,
)
from rmqstore.protocol.controller_body import SyncStateSet, decode_sync_state_set
from rmqstore.protocol.header_codec import encode_header
from rmqstore.server.acl import AclSettings
from rmqstore.server.controller.metastore import MemoryMetaStore
from rmqstore.server.controller.replicas import Decision
from rmqstore.server.controller.service import ControllerConfig, ControllerService
from rmqstore.server.controller.settings import ControllerSettings
from rmqstore.server.namesrv import NameServer, NamesrvConfig
from tests.server.acl_files import ADMIN, NORMAL, SHIPPED_PLAIN_ACL

C = RequestCode


def run(test: Callable[..., Awaitable[None]], timeout_s: float = 30) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(timeout_s):
            await test()
    asyncio.run(bounded())


def namesrv(store: MemoryMetaStore, **config: Any) -> NameServer:
    settings = ControllerSettings(ControllerConfig(prefix="/t", **config))
    return NameServer(NamesrvConfig(port=0, http_port=None, controller=settings),
                      metastore=store)


async def call(client: RemotingClient, addr: str, code: int, header: object,
               body: bytes = b"") -> RemotingCommand:
    return await client.invoke(addr, RemotingCommand.request(code, encode_header(header), body),
                               3.0)


def addr_of(ns: NameServer) -> str:
    return "%s:%d" % ns.address


async def wait_for(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.05)


def active_of(*servers: NameServer) -> list[NameServer]:
    return [s for s in servers if s.controller is not None and s.controller.active]


async def join(client: RemotingClient, ctl: str, broker_id: int, addr: str) -> RemotingCommand:
    """A broker's way in: next id, apply, register (ReplicasManager.register)."""
    nxt = await call(client, ctl, C.CONTROLLER_GET_NEXT_BROKER_ID,
                     GetNextBrokerIdRequestHeader(cluster_name="c1", broker_name="b"))
    assert nxt.code == ResponseCode.SUCCESS
    assert int(nxt.ext_fields["nextBrokerId"]) == broker_id
    applied = await call(client, ctl, C.CONTROLLER_APPLY_BROKER_ID, ApplyBrokerIdRequestHeader(
        cluster_name="c1", broker_name="b", applied_broker_id=broker_id,
        register_check_code=f"{addr};1"))
    assert applied.code == ResponseCode.SUCCESS, applied.remark
    return await call(client, ctl, C.CONTROLLER_REGISTER_BROKER,
                      RegisterBrokerToControllerRequestHeader(
                          cluster_name="c1", broker_name="b", broker_id=broker_id,
                          broker_address=addr))


def heartbeat(broker_id: int, epoch: int) -> BrokerHeartbeatRequestHeader:
    return BrokerHeartbeatRequestHeader(
        cluster_name="c1", broker_addr=f"127.0.0.1:{broker_id}", broker_name="b",
        broker_id=broker_id, epoch=epoch, max_offset=0, confirm_offset=0,
        heartbeat_timeout_ms=5000)


def test_one_active_controller_and_a_brokers_way_in() -> None:
    async def main() -> None:
        store = MemoryMetaStore()
        a, b = namesrv(store), namesrv(store)
        async with a, b, RemotingClient() as client:
            await wait_for(lambda: len(active_of(a, b)) == 1)
            (active,) = active_of(a, b)
            standby = b if active is a else a
            meta = await client.invoke(addr_of(standby), RemotingCommand.request(
                C.CONTROLLER_GET_METADATA_INFO), 3.0)
            assert meta.ext_fields["controllerLeaderAddress"] == addr_of(active)
            assert meta.ext_fields["isLeader"] == "false"
            refused = await call(client, addr_of(standby), C.CONTROLLER_GET_NEXT_BROKER_ID,
                                 GetNextBrokerIdRequestHeader(cluster_name="c1", broker_name="b"))
            assert refused.code == ResponseCode.CONTROLLER_NOT_LEADER

            ctl = addr_of(active)
            registered = await join(client, ctl, 1, "127.0.0.1:1")
            assert registered.code == ResponseCode.SUCCESS
            assert "masterAddress" not in registered.ext_fields  # no master yet
            no_lease = await call(client, ctl, C.BROKER_HEARTBEAT, heartbeat(1, -1))
            assert no_lease.code == ResponseCode.SUCCESS and "leaseMillis" not in \
                no_lease.ext_fields
            elected = await call(client, ctl, C.CONTROLLER_ELECT_MASTER,
                                 ElectMasterRequestHeader(cluster_name="c1", broker_name="b",
                                                          broker_id=1))
            assert elected.code == ResponseCode.SUCCESS, elected.remark
            assert elected.ext_fields["masterEpoch"] == "1"
            lease = await call(client, ctl, C.BROKER_HEARTBEAT, heartbeat(1, 1))
            assert lease.ext_fields["masterEpoch"] == "1"  # for at most 4 s, and more than
            assert 2000 <= int(lease.ext_fields["leaseMillis"]) <= 4000  # the handover grace
            stale = await call(client, ctl, C.BROKER_HEARTBEAT, heartbeat(1, 0))
            assert "leaseMillis" not in stale.ext_fields  # not the master of epoch 0
            # the standby heard the heartbeats too, but grants nothing
            assert standby.controller.on_heartbeat(
                ("c1", "b", 1), "127.0.0.1:1", 5000, None, 1, 0, 0, 1) is None

            second = await join(client, ctl, 2, "127.0.0.1:2")
            assert second.ext_fields["masterAddress"] == "127.0.0.1:1"
            assert decode_sync_state_set(second.body).members == {1}
    run(main)


def test_the_standby_takes_over_and_the_state_survives() -> None:
    async def main() -> None:
        store = MemoryMetaStore()
        a, b = namesrv(store), namesrv(store)
        async with RemotingClient() as client:
            await a.start()
            await b.start()
            try:
                await wait_for(lambda: len(active_of(a, b)) == 1)
                first = active_of(a, b)[0]
                other = b if first is a else a
                await join(client, addr_of(first), 1, "127.0.0.1:1")
                await call(client, addr_of(first), C.CONTROLLER_ELECT_MASTER,
                           ElectMasterRequestHeader(broker_name="b", broker_id=1))
                await first.stop()  # resigns: the key goes at once
                await wait_for(lambda: other.controller.active, 3.0)
                info = await call(client, addr_of(other), C.CONTROLLER_GET_REPLICA_INFO,
                                  GetReplicaInfoRequestHeader(broker_name="b"))
                assert info.code == ResponseCode.SUCCESS
                assert (info.ext_fields["masterBrokerId"], info.ext_fields["masterEpoch"]) == \
                    ("1", "1")
            finally:
                for s in (a, b):
                    await s.stop()
    run(main)


def test_cas_fences_a_concurrent_writer() -> None:
    async def main() -> None:
        store = MemoryMetaStore()
        service = ControllerService(ControllerConfig(prefix="/t"), store)
        await service.start("127.0.0.1:1")
        try:
            await wait_for(lambda: service.active)
            seen: list[int] = []

            def rule(state) -> Decision:
                from rmqstore.server.controller.replicas import apply_broker_id
                seen.append(0 if state is None else len(state.members))
                if len(seen) == 1:  # someone else claims id 1 after our read
                    other = apply_broker_id(None, "c1", "b", 1, "h:9;9").state
                    store._data["/t/sets/b"] = (other.encode(), 99, None)
                return apply_broker_id(state, "c1", "b", 1, "h:1;1")
            decision = await service.decide("b", rule)
            assert seen == [0, 1]  # decided again on the newer state
            assert decision.code == ResponseCode.CONTROLLER_BROKER_ID_INVALID
        finally:
            await service.stop()
    run(main)


def test_the_masters_and_the_admins_requests_over_the_wire() -> None:
    """ALTER_SYNC_STATE_SET (1001) from the master of the current epoch only, with the set's
    epoch it read; GET_CONTROLLER_CONFIG (1010) answers, UPDATE_CONTROLLER_CONFIG (1009) is
    refused with its reason; CLEAN_BROKER_DATA (1011) refuses a living set or id unless told
    isCleanLivingBroker."""
    async def main() -> None:
        store = MemoryMetaStore()
        ns = namesrv(store)
        async with ns, RemotingClient() as client:
            await wait_for(lambda: bool(active_of(ns)))
            ctl = addr_of(ns)
            await join(client, ctl, 1, "127.0.0.1:1")
            await join(client, ctl, 2, "127.0.0.1:2")
            await call(client, ctl, C.CONTROLLER_ELECT_MASTER,
                       ElectMasterRequestHeader(broker_name="b", broker_id=1))
            for i in (1, 2):
                await call(client, ctl, C.BROKER_HEARTBEAT, heartbeat(i, 1))

            def alter(master: int, epoch: int, members: set[int], set_epoch: int):
                return call(client, ctl, C.CONTROLLER_ALTER_SYNC_STATE_SET,
                            AlterSyncStateSetRequestHeader(broker_name="b",
                                                           master_broker_id=master,
                                                           master_epoch=epoch),
                            SyncStateSet(frozenset(members), set_epoch).encode())
            assert (await alter(2, 1, {1, 2}, 1)).code == ResponseCode.CONTROLLER_INVALID_MASTER
            assert (await alter(1, 0, {1, 2}, 1)).code == \
                ResponseCode.CONTROLLER_FENCED_MASTER_EPOCH
            grown = await alter(1, 1, {1, 2}, 1)
            assert grown.code == ResponseCode.SUCCESS, grown.remark
            assert decode_sync_state_set(grown.body) == SyncStateSet(frozenset({1, 2}), 2)
            assert (await alter(1, 1, {1}, 1)).code == \
                ResponseCode.CONTROLLER_FENCED_SYNC_STATE_SET_EPOCH  # it read an older set

            config = await client.invoke(ctl, RemotingCommand.request(
                C.GET_CONTROLLER_CONFIG), 3.0)
            assert config.code == ResponseCode.SUCCESS and b"prefix=/t" in config.body
            update = await client.invoke(ctl, RemotingCommand.request(
                C.UPDATE_CONTROLLER_CONFIG), 3.0)
            assert update.code == ResponseCode.NO_PERMISSION and "restart" in update.remark

            def clean(ids: str | None = None, living: bool = False):
                return call(client, ctl, C.CLEAN_BROKER_DATA,
                            CleanControllerBrokerDataRequestHeader(
                                broker_name="b", broker_controller_ids_to_clean=ids,
                                is_clean_living_broker=living))
            refused = ResponseCode.CONTROLLER_INVALID_CLEAN_BROKER_METADATA
            assert (await clean()).code == refused and (await clean("2")).code == refused
            assert (await clean("2", living=True)).code == ResponseCode.SUCCESS  # overridden
            info = await call(client, ctl, C.CONTROLLER_GET_REPLICA_INFO,
                              GetReplicaInfoRequestHeader(broker_name="b"))
            assert decode_sync_state_set(info.body).members == {1}  # 2 forgotten, 1 kept
    run(main)


def test_with_acl_every_controller_code_needs_an_admin(tmp_path: Path) -> None:
    """A NameServer with aclEnable: its controller's codes refuse no signature and a normal
    account (NO_PERMISSION, "Need admin permission"), and serve the admin account; no answer
    carries a secret."""
    acl_file = tmp_path / "plain_acl.yml"
    acl_file.write_text(SHIPPED_PLAIN_ACL)
    settings = ControllerSettings(ControllerConfig(prefix="/t"))
    ns = NameServer(NamesrvConfig(port=0, http_port=None, controller=settings,
                                  acl=AclSettings(True, acl_file)), metastore=MemoryMetaStore())

    async def main() -> None:
        async with ns, RemotingClient() as client:
            await wait_for(lambda: bool(active_of(ns)))
            for code in (C.CONTROLLER_GET_NEXT_BROKER_ID, C.CONTROLLER_GET_METADATA_INFO,
                         C.GET_CONTROLLER_CONFIG, C.CLEAN_BROKER_DATA, C.BROKER_HEARTBEAT):
                answers = {}
                for who, creds in (("none", None), ("normal", NORMAL), ("admin", ADMIN)):
                    request = RemotingCommand.request(code, encode_header(
                        GetNextBrokerIdRequestHeader(cluster_name="c1", broker_name="b")))
                    if creds is not None:
                        sign_request(request, creds)
                    r = await client.invoke(addr_of(ns), request, 3.0)
                    assert ADMIN.secret_key not in repr((r.ext_fields, r.remark, r.body))
                    answers[who] = r
                assert answers["none"].code == ResponseCode.NO_PERMISSION, code
                assert answers["normal"].code == ResponseCode.NO_PERMISSION, code
                assert "Need admin permission" in answers["normal"].remark
                assert answers["admin"].code != ResponseCode.NO_PERMISSION, code
    run(main)
