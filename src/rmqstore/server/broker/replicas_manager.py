"""A controller-mode broker's life with its controllers (RocketMQ 5's ReplicasManager):

1. find the active controller (CONTROLLER_GET_METADATA_INFO to each controllerAddr);
2. its id in the set: brokerIdentity if it has one, else CONTROLLER_GET_NEXT_BROKER_ID,
   brokerIdentity-temp, CONTROLLER_APPLY_BROKER_ID, brokerIdentity (identity.py);
3. CONTROLLER_REGISTER_BROKER: the master, if one is alive;
4. heartbeats to every controller (BROKER_HEARTBEAT, every brokerHeartbeatInterval), whose
   answers from the active one renew a master's lease (server/controller/lease.py); with no
   master yet, CONTROLLER_ELECT_MASTER for itself;
5. role changes, by epoch only forward: from NOTIFY_BROKER_ROLE_CHANGED (oneway), from
   CONTROLLER_GET_REPLICA_INFO every syncBrokerMetadataPeriod (the fallback if a notice is
   lost), or from an election's answer;
6. as master, the in-sync replicas' changes go to the controller (CONTROLLER_ALTER_SYNC_STATE_SET)
   and are checked every checkSyncStateSetPeriod.

It serves GET_BROKER_EPOCH_CACHE (1007) and NOTIFY_BROKER_ROLE_CHANGED (1008).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from ...net import Dispatcher, RemotingClient, RequestContext
from ...protocol import RemotingCommand, RequestCode, ResponseCode
from ...protocol.controller import (
    AlterSyncStateSetRequestHeader,
    ApplyBrokerIdRequestHeader,
    BrokerHeartbeatRequestHeader,
    ElectMasterRequestHeader,
    GetNextBrokerIdRequestHeader,
    GetReplicaInfoRequestHeader,
    NotifyBrokerRoleChangedRequestHeader,
    RegisterBrokerToControllerRequestHeader,
)
from ...protocol.controller_body import (
    JAVA_LONG_MAX,
    EpochEntryCache,
    SyncStateSet,
    decode_elect_master_body,
    decode_sync_state_set,
)
from ...protocol.header_codec import decode_header, encode_header
from ...store import MessageStore
from .config import BrokerConfig
from .controller_replication import ControllerReplication
from .identity import (
    BrokerIdentity,
    check_code,
    read_identity,
    read_temp_identity,
    remove_temp_identity,
    write_identity,
    write_temp_identity,
)
from .role import BrokerRole

log = logging.getLogger(__name__)

HOLD_BEAT_MS = 100  # heartbeats this often while writes wait on a lapsed lease's renewal

CALL_TIMEOUT_S = 3.0
METADATA_TIMEOUT_S = 1.0
RETRY_S = 1.0  # between attempts of the way in (Java: 5 s)


class ControllerUnavailable(Exception):
    """No active controller answered."""


class ReplicasManager:
    def __init__(self, config: BrokerConfig, role: BrokerRole, store: MessageStore,
                 replication: ControllerReplication, client: RemotingClient,
                 on_role_changed: Callable[[], Awaitable[None]],
                 spawn: Callable[[Awaitable[None]], None]) -> None:
        """on_role_changed(): the broker re-registers with the NameServers and starts or stops
        what only a master runs."""
        self._config = config
        self._role = role
        self._store = store
        self._replication = replication
        self._client = client
        self._on_role_changed = on_role_changed
        self._spawn = spawn
        self._leader: str | None = None
        self.controller_id: int | None = None
        self.master_id: int | None = None
        self.master_addr: str | None = None
        self._in_sync_epoch = 0
        self._lock = asyncio.Lock()  # one role change at a time
        self.ready = asyncio.Event()  # the first role was applied

    def register_handlers(self, dispatcher: Dispatcher) -> None:
        dispatcher.register(RequestCode.NOTIFY_BROKER_ROLE_CHANGED, self._notified)
        dispatcher.register(RequestCode.GET_BROKER_EPOCH_CACHE, self._epoch_cache)

    async def run(self) -> None:
        """The way in (steps 1-4), then the periodic tasks; until cancelled."""
        while True:
            try:
                await self._join()
                break
            except (ControllerUnavailable, OSError) as exc:
                log.info("controller: not joined yet (%s); trying again", exc)
            await asyncio.sleep(RETRY_S)
        c = self._config
        self._spawn(self._heartbeats())
        self._spawn(self._every(c.sync_broker_metadata_period_ms, self._sync_replica_info))
        self._spawn(self._every(c.check_sync_state_set_period_ms, self._check_in_sync))
        self._spawn(self._every(c.sync_controller_metadata_period_ms, self._find_leader))

    async def _every(self, period_ms: int, action: Callable[[], Awaitable[object]]) -> None:
        while True:
            await asyncio.sleep(period_ms / 1000)
            try:
                await action()
            except (ControllerUnavailable, OSError) as exc:
                log.debug("controller: %s: %s", getattr(action, "__name__", action), exc)
            except Exception:  # a periodic task must survive a bad round
                log.exception("controller: %s failed", getattr(action, "__name__", action))

    async def _join(self) -> None:
        await self._find_leader()
        if self.controller_id is None:
            self.controller_id = await self._identity()
        answer = await self._call(RequestCode.CONTROLLER_REGISTER_BROKER,
                                  RegisterBrokerToControllerRequestHeader(
                                      cluster_name=self._config.cluster_name,
                                      broker_name=self._config.broker_name,
                                      broker_id=self.controller_id,
                                      broker_address=self._config.addr,
                                      invoke_time=_millis()))
        if answer.code != ResponseCode.SUCCESS:
            raise ControllerUnavailable(f"register: {answer.code} {answer.remark}")
        await self.heartbeat()
        ext = answer.ext_fields
        if ext.get("masterBrokerId") is not None:
            await self.change_role(int(ext["masterBrokerId"]), ext.get("masterAddress"),
                                   int(ext["masterEpoch"]), decode_sync_state_set(answer.body))
        else:
            await self._elect_self()

    # -- 1. the active controller ------------------------------------------------------------
    async def _find_leader(self) -> None:
        """Ask every controller at once: one that says it is active wins; else the one most
        of them name (a controller cut off from etcd may still name itself a while)."""
        answers = await asyncio.gather(*(self._metadata(a) for a in self._config.controller_addrs))
        named = [leader for leader, _ in answers if leader]
        active = [leader for leader, is_leader in answers if leader and is_leader]
        leader = active[0] if active else max(set(named), key=named.count) if named else None
        if leader is None:
            raise ControllerUnavailable(
                f"no active controller among {self._config.controller_addrs}")
        if leader != self._leader:
            log.info("controller: the active controller is %s", leader)
        self._leader = leader

    async def _metadata(self, addr: str) -> tuple[str | None, bool]:
        """(the active controller ``addr`` names, whether it is that one itself)."""
        try:
            answer = await self._client.invoke(addr, RemotingCommand.request(
                RequestCode.CONTROLLER_GET_METADATA_INFO), METADATA_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - the other controllers may answer
            log.debug("controller %s: %s", addr, exc)
            return None, False
        if answer.code != ResponseCode.SUCCESS:
            return None, False
        ext = answer.ext_fields
        return ext.get("controllerLeaderAddress"), ext.get("isLeader") == "true"

    async def _call(self, code: int, header: object, body: bytes = b"") -> RemotingCommand:
        """A request to the active controller; once more after finding it again when the one
        asked is not (or no longer) active."""
        for attempt in range(2):
            if self._leader is None or attempt:
                await self._find_leader()
            assert self._leader is not None
            request = RemotingCommand.request(code, encode_header(header), body)
            try:
                answer = await self._client.invoke(self._leader, request, CALL_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001 - connection refused, timeout, closed
                log.debug("controller %s: %s", self._leader, exc)
                self._leader = None
                continue
            if answer.code != ResponseCode.CONTROLLER_NOT_LEADER:
                return answer
            self._leader = None
        raise ControllerUnavailable("the active controller did not answer")

    # -- 2. the broker's id ------------------------------------------------------------------
    async def _identity(self) -> int:
        c, root = self._config, self._store.root
        known = read_identity(root)
        if known is not None:
            if (known.cluster, known.broker_name) != (c.cluster_name, c.broker_name):
                raise ValueError(f"{root}/brokerIdentity names {known.cluster}/"
                                 f"{known.broker_name}, not {c.cluster_name}/{c.broker_name}")
            return known.broker_id
        temp = read_temp_identity(root)
        if temp is None:
            answer = await self._call(RequestCode.CONTROLLER_GET_NEXT_BROKER_ID,
                                      GetNextBrokerIdRequestHeader(cluster_name=c.cluster_name,
                                                                   broker_name=c.broker_name))
            if answer.code != ResponseCode.SUCCESS:
                raise ControllerUnavailable(f"next broker id: {answer.remark}")
            temp = BrokerIdentity(c.cluster_name, c.broker_name,
                                  int(answer.ext_fields["nextBrokerId"]), check_code(c.addr))
            write_temp_identity(root, temp)
        assert temp.register_check_code is not None
        answer = await self._call(RequestCode.CONTROLLER_APPLY_BROKER_ID,
                                  ApplyBrokerIdRequestHeader(
                                      cluster_name=c.cluster_name, broker_name=c.broker_name,
                                      applied_broker_id=temp.broker_id,
                                      register_check_code=temp.register_check_code))
        if answer.code != ResponseCode.SUCCESS:
            remove_temp_identity(root)  # taken by another: start again with the next id
            raise ControllerUnavailable(f"broker id {temp.broker_id}: {answer.remark}")
        write_identity(root, temp)
        log.info("controller: this broker is %s id %d", c.broker_name, temp.broker_id)
        return temp.broker_id

    # -- 4. heartbeats and elections ---------------------------------------------------------
    async def heartbeat(self) -> None:
        """BROKER_HEARTBEAT to every controller; the active one's answer renews the lease."""
        if self.controller_id is None:
            return
        header = self._heartbeat_header()
        await asyncio.gather(*(self._heartbeat_one(addr, header)
                               for addr in self._config.controller_addrs))

    async def _heartbeats(self) -> None:
        """heartbeat() every brokerHeartbeatInterval, start to start (a controller that does
        not answer costs its own round, not the next one's start), and every HOLD_BEAT_MS from
        the moment a master's lease lapses: the writes it holds wait on the renewal, which a
        newly active controller grants at the first heartbeat it answers."""
        interval = self._config.broker_heartbeat_interval_ms / 1000
        while True:
            pause = interval
            if self._role.lease_lapsed_lately():
                pause = HOLD_BEAT_MS / 1000
            elif not self._role.slave and self._role.controller_mode:
                left = self._role.lease.remaining_s
                if left > 0.0:
                    pause = min(pause, left + HOLD_BEAT_MS / 1000)
            await asyncio.sleep(pause)
            self._spawn(self.heartbeat())

    async def _lease_first(self) -> None:
        """A new master's heartbeats, waited for only until one renewed its lease: the answer
        of a cut-off controller (the one this broker last knew as active, say) would cost the
        whole heartbeat timeout. The others finish on their own."""
        if self.controller_id is None:
            return
        header = self._heartbeat_header()
        pending = {asyncio.ensure_future(self._heartbeat_one(addr, header))
                   for addr in self._config.controller_addrs}
        while pending and not self._role.lease.valid(self._role.master_epoch):
            _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        if pending:
            self._spawn(asyncio.wait(pending))

    def _heartbeat_header(self) -> BrokerHeartbeatRequestHeader:
        c = self._config
        assert self.controller_id is not None
        return BrokerHeartbeatRequestHeader(
            cluster_name=c.cluster_name, broker_addr=c.addr, broker_name=c.broker_name,
            broker_id=self.controller_id, epoch=self._replication.epochs.last_epoch,
            max_offset=self._store.commitlog.max_offset,
            confirm_offset=self._store.confirm_offset or self._store.commitlog.max_offset,
            heartbeat_timeout_ms=c.controller_heartbeat_timeout_ms,
            election_priority=c.broker_election_priority)

    async def _heartbeat_one(self, addr: str, header: BrokerHeartbeatRequestHeader) -> None:
        sent = time.monotonic()
        request = RemotingCommand.request(RequestCode.BROKER_HEARTBEAT, encode_header(header))
        timeout_s = self._config.broker_heartbeat_interval_ms / 1000
        try:
            answer = await self._client.invoke(addr, request, timeout_s)
        except Exception as exc:  # noqa: BLE001 - that controller is down; the others count
            log.debug("heartbeat to %s: %s", addr, exc)
            return
        lease = answer.ext_fields.get("leaseMillis")
        epoch = answer.ext_fields.get("masterEpoch")
        if lease is not None and epoch is not None and not self._role.slave and \
                int(epoch) == self._role.master_epoch:
            self._role.lease.renewed(sent, int(epoch), int(lease))

    async def _elect_self(self) -> None:
        """No master: ask to be it (the first of a set is elected as it asks; later the
        in-sync replica with the most is)."""
        answer = await self._call(RequestCode.CONTROLLER_ELECT_MASTER, ElectMasterRequestHeader(
            cluster_name=self._config.cluster_name, broker_name=self._config.broker_name,
            broker_id=self.controller_id, invoke_time=_millis()))
        ext = answer.ext_fields
        if answer.code in (ResponseCode.SUCCESS, ResponseCode.CONTROLLER_MASTER_STILL_EXIST) \
                and ext.get("masterBrokerId") is not None:
            _, members = decode_elect_master_body(answer.body)
            await self.change_role(int(ext["masterBrokerId"]), ext.get("masterAddress"),
                                   int(ext["masterEpoch"]), SyncStateSet(
                                       members, int(ext.get("syncStateSetEpoch", 0))))
        else:
            log.info("controller: no master for %s yet (%s)", self._config.broker_name,
                     answer.remark)

    # -- 5. role changes ---------------------------------------------------------------------
    async def change_role(self, master_id: int, master_addr: str | None, epoch: int,
                          in_sync: SyncStateSet) -> None:
        """ReplicasManager.changeBrokerRole: only a newer master epoch changes anything."""
        async with self._lock:
            if epoch <= self._role.master_epoch and self.ready.is_set():
                if epoch == self._role.master_epoch and not self._role.slave:
                    self._take_in_sync(in_sync)
                return
            if epoch < self._replication.epochs.last_epoch:
                log.warning("controller: master epoch %d is older than this log's %d: ignored",
                            epoch, self._replication.epochs.last_epoch)
                return
            assert self.controller_id is not None
            self.master_id, self.master_addr = master_id, master_addr
            if master_id == self.controller_id:
                log.info("controller: becoming master of %s, epoch %d",
                         self._config.broker_name, epoch)
                await self._replication.to_master(self.controller_id, epoch, in_sync.members,
                                                  in_sync.epoch, self._report_in_sync)
                self._in_sync_epoch = in_sync.epoch
                self._role.become_master(epoch)
                isr = self._replication.isr
                assert isr is not None
                self._role.in_sync_enough = isr.enough_in_sync
            else:
                log.info("controller: becoming slave of %s (id %d), epoch %d", master_addr,
                         master_id, epoch)
                self._role.become_slave(self.controller_id, epoch)
                await self._replication.to_slave(self.controller_id, master_addr)
            self.ready.set()
        if not self._role.slave:  # the lease of the new epoch before the NameServers (and so
            await self._lease_first()  # the clients) hear of it: else the first sends fail
        await self._on_role_changed()

    def _take_in_sync(self, in_sync: SyncStateSet) -> None:
        isr = self._replication.isr
        if isr is not None and in_sync.epoch > self._in_sync_epoch:
            self._in_sync_epoch = in_sync.epoch
            isr.set_committed(in_sync.members, in_sync.epoch)

    async def _notified(self, request: RemotingCommand, ctx: RequestContext) -> None:
        h = decode_header(NotifyBrokerRoleChangedRequestHeader, request.ext_fields)
        if h.master_broker_id is None or h.master_epoch is None:
            return None
        try:
            in_sync = decode_sync_state_set(request.body)
        except ValueError as exc:
            log.warning("controller: role change notice with a bad body: %s", exc)
            return None
        self._spawn(self.change_role(h.master_broker_id, h.master_address, h.master_epoch,
                                     in_sync))
        return None

    async def _sync_replica_info(self) -> None:
        """The fallback for a lost notice, and a master's view of its in-sync set."""
        answer = await self._call(RequestCode.CONTROLLER_GET_REPLICA_INFO,
                                  GetReplicaInfoRequestHeader(
                                      broker_name=self._config.broker_name))
        if answer.code != ResponseCode.SUCCESS:
            return
        ext = answer.ext_fields
        in_sync = decode_sync_state_set(answer.body)
        epoch = int(ext.get("masterEpoch", 0))
        if ext.get("masterBrokerId") is None or not ext.get("masterAddress"):
            if epoch >= self._role.master_epoch:
                await self._elect_self()
            return
        await self.change_role(int(ext["masterBrokerId"]), ext["masterAddress"], epoch, in_sync)

    # -- 6. the in-sync replicas -------------------------------------------------------------
    def _report_in_sync(self, proposed: frozenset[int]) -> None:
        self._spawn(self._alter_in_sync(proposed))

    async def _alter_in_sync(self, proposed: frozenset[int]) -> None:
        if self._role.slave or self.controller_id is None:
            return
        try:
            answer = await self._call(RequestCode.CONTROLLER_ALTER_SYNC_STATE_SET,
                                      AlterSyncStateSetRequestHeader(
                                          broker_name=self._config.broker_name,
                                          master_broker_id=self.controller_id,
                                          master_epoch=self._role.master_epoch,
                                          invoke_time=_millis()),
                                      SyncStateSet(proposed, self._in_sync_epoch).encode())
        except ControllerUnavailable as exc:
            log.info("controller: in-sync replicas %s not reported: %s", sorted(proposed), exc)
            return
        if answer.code == ResponseCode.SUCCESS:
            self._take_in_sync(decode_sync_state_set(answer.body))
            return
        log.info("controller: in-sync replicas %s refused: %d %s", sorted(proposed),
                 answer.code, answer.remark)
        if answer.code in (ResponseCode.CONTROLLER_INVALID_MASTER,
                           ResponseCode.CONTROLLER_FENCED_MASTER_EPOCH,
                           ResponseCode.CONTROLLER_FENCED_SYNC_STATE_SET_EPOCH):
            await self._sync_replica_info()  # the controller knows of something newer

    async def _check_in_sync(self) -> None:
        isr = self._replication.isr
        if isr is not None and not self._role.slave:
            isr.check()

    # -- admin -------------------------------------------------------------------------------
    async def _epoch_cache(self, request: RemotingCommand,
                           ctx: RequestContext) -> RemotingCommand:
        epochs = self._replication.epochs
        entries = epochs.entries
        ranges = tuple((e, s, entries[i + 1][1] if i + 1 < len(entries) else JAVA_LONG_MAX)
                       for i, (e, s) in enumerate(entries))
        body = EpochEntryCache(self._config.cluster_name, self._config.broker_name,
                               self.controller_id or -1, ranges,
                               self._store.commitlog.max_offset).encode()
        return RemotingCommand.response(ResponseCode.SUCCESS, body=body)


def _millis() -> int:
    return int(time.time() * 1000)
