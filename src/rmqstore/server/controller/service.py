"""The controller (RocketMQ 5's ControllerManager + DLedgerController, with etcd for DLedger):
decisions read the broker set's state, apply a rule of replicas.py, and compare-and-set the
result on the revision read; heartbeats keep the liveness table; the active controller
replaces masters that stop heartbeating, grants master leases (lease.py), and tells every live
member of a set when its master changes (NOTIFY_BROKER_ROLE_CHANGED, oneway).

Only the active controller (leadership.py) answers requests other than heartbeats and metadata
(the others: CONTROLLER_NOT_LEADER, and the broker asks GET_METADATA_INFO who is). Runs on
the NameServer's event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from ...net import RemotingClient, split_address
from ...protocol import RemotingCommand, RequestCode, ResponseCode
from ...protocol.controller import CONTROLLER_TRIGGERED, NotifyBrokerRoleChangedRequestHeader
from ...protocol.controller_body import SyncStateSet
from ...protocol.header_codec import encode_header
from ..channels import WatchedChannels
from . import replicas
from .elect import LiveInfo
from .leadership import Leadership
from .lease import LEASE_MS, grant_ms, handover_wait_s
from .liveness import BrokerLiveTable, Key
from .metastore import LeaseExpired, MetaStore, MetaStoreUnavailable, Versioned, outlive
from .replicas import Decision
from .state import BrokerSetState, decode_state

log = logging.getLogger(__name__)

LOAD_RETRY_S = 0.2
CAS_ATTEMPTS = 3  # a decision re-read and re-made after this many lost races is refused
PROBE_TIMEOUT_S = 0.5
PROBE_ATTEMPTS = 3
PROBE_PAUSE_S = 0.1
NOTIFY_TIMEOUT_S = 3.0  # ControllerManager.doNotifyBrokerRoleChanged's invokeOneway


@dataclass(frozen=True, slots=True)
class ControllerConfig:
    prefix: str = "/rmqstore/controller"  # every key of this controller cluster is under it
    lease_ms: int = LEASE_MS
    scan_interval_ms: int = 500  # scanNotActiveBrokerInterval (Java: 5000)
    elect_unclean: bool = False  # enableElectUncleanMaster
    notify_role_changed: bool = True  # notifyBrokerRoleChanged


class NotActive(Exception):
    """This controller is not the active one (CONTROLLER_NOT_LEADER)."""


class ControllerService:
    def __init__(self, config: ControllerConfig, store: MetaStore,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.store = store
        self._clock = clock
        self.live = BrokerLiveTable(clock)
        self.leadership = Leadership(store, f"{config.prefix}/active", clock=clock,
                                     on_change=self._on_leadership)
        self._outbound = RemotingClient()
        self._cache: dict[str, BrokerSetState] = {}
        self._dead: set[Key] = set()  # brokers whose process is provably gone
        self._tasks: list[asyncio.Task[None]] = []
        self._electing: set[str] = set()
        self._heartbeating = WatchedChannels(self._lost)  # brokers' connections

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self, address: str) -> None:
        """Campaign as ``address`` (this NameServer's host:port, where brokers reach us)."""
        self.leadership.me = address
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self.leadership.run(), name="controller-election"),
                       loop.create_task(self._scan(), name="controller-scan")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self._outbound.close()
        await self.store.close()

    @property
    def active(self) -> bool:
        return self.leadership.active

    def _on_leadership(self, active: bool) -> None:
        self._cache.clear()
        if active:
            asyncio.get_running_loop().create_task(self._load_cache())

    async def _load_cache(self) -> None:
        """The broker sets, read once this controller is active (again until it succeeds: an
        active controller with none grants no lease and replaces no master)."""
        found: dict[str, Versioned] = {}

        async def load() -> None:
            found.update(await self.store.get_prefix(self._key("")))
        while self.active:  # etcd may be electing a leader, say
            if await outlive(load, "controller: loading the broker sets"):
                break
            await asyncio.sleep(LOAD_RETRY_S)
        else:
            return
        for key, versioned in found.items():
            try:
                state = decode_state(versioned.value)
            except ValueError as exc:
                log.warning("controller: %s: %s", key, exc)
                continue
            self._cache[state.broker_name] = state

    def _key(self, broker_name: str) -> str:
        return f"{self.config.prefix}/sets/{broker_name}"

    # -- decisions ---------------------------------------------------------------------------
    async def read(self, broker_name: str) -> tuple[BrokerSetState | None, int]:
        found: Versioned | None = await self.store.get(self._key(broker_name))
        if found is None:
            return None, 0
        return decode_state(found.value), found.revision

    async def decide(self, broker_name: str,
                     rule: Callable[[BrokerSetState | None], Decision]) -> Decision:
        """Read the set, apply ``rule``, write what it decided on the revision read; a lost race
        reads and decides again. Raises NotActive, MetaStoreUnavailable."""
        for _ in range(CAS_ATTEMPTS):
            if not self.active:
                raise NotActive()
            state, revision = await self.read(broker_name)
            decision = rule(state)
            if decision.state is None and not decision.delete:
                if state is not None:
                    self._cache[broker_name] = state
                return decision
            value = None if decision.delete else decision.state.encode()
            if not self.active:  # the rule ran while we were active: do not write otherwise
                raise NotActive()
            decided_ms = int(time.time() * 1000)
            if await self.store.cas(self._key(broker_name), revision, value):
                if decision.delete:
                    self._cache.pop(broker_name, None)
                else:
                    self._cache[broker_name] = decision.state
                    self._log_change(state, decision.state, decided_ms)
                return decision
            log.info("controller: %s changed under a decision; deciding again", broker_name)
        return Decision(ResponseCode.SYSTEM_ERROR, f"{broker_name}: too many concurrent changes")

    def _log_change(self, before: BrokerSetState | None, after: BrokerSetState,
                    decided_ms: int) -> None:
        """decided_ms: wall-clock time before the write; the chaos checker reads these lines
        (an ack by an older epoch's master sent after it is a stale-master ack)."""
        if before is None or before.master_epoch != after.master_epoch:
            log.info("controller: %s master %s epoch %d (in sync %s) decided at %d ms",
                     after.broker_name, after.master, after.master_epoch,
                     sorted(after.sync_state_set), decided_ms)
        elif before.sync_state_set != after.sync_state_set:
            log.info("controller: %s in sync %s epoch %d", after.broker_name,
                     sorted(after.sync_state_set), after.sync_state_set_epoch)

    def cached(self, broker_name: str) -> BrokerSetState | None:
        return self._cache.get(broker_name)

    def alive_in(self, state: BrokerSetState) -> Callable[[int], bool]:
        return lambda i: self.live.alive((state.cluster, state.broker_name, i))

    def live_in(self, state: BrokerSetState) -> Callable[[int], LiveInfo | None]:
        return lambda i: self.live.live_info((state.cluster, state.broker_name, i))

    # -- heartbeats and leases ---------------------------------------------------------------
    def on_heartbeat(self, key: Key, broker_addr: str, timeout_ms: int, channel: object | None,
                     epoch: int, max_offset: int, confirm_offset: int,
                     priority: int) -> int | None:
        """Record a heartbeat; returns the lease granted (ms) when the sender is the master of
        the epoch this controller holds for its set, and this controller is active."""
        self._dead.discard(key)
        self.live.on_heartbeat(key, broker_addr, timeout_ms / 1000, channel, epoch, max_offset,
                               confirm_offset, priority)
        self._heartbeating.add(channel)
        state = self._cache.get(key[1])
        if not self.active or state is None or state.master != key[2] or \
                state.master_epoch != epoch:
            return None
        return min(grant_ms(self.config.lease_ms, self.leadership.term_left_s), timeout_ms)

    def _lost(self, channel: object) -> None:
        for key, live in self.live.on_channel(channel):
            asyncio.get_running_loop().create_task(self._probe(key, live.broker_addr))

    async def _probe(self, key: Key, broker_addr: str) -> None:
        """A broker's connection closed: if its listen port refuses connections, its process
        is gone (it acknowledges nothing more) and its set need not wait out its timeout. A
        dying process closes its connections before its listener, so the port is asked a few
        times."""
        for attempt in range(PROBE_ATTEMPTS):
            if attempt:
                await asyncio.sleep(PROBE_PAUSE_S)
            refused = await _refuses(broker_addr)
            if refused is None:
                return  # cannot tell (unreachable, or a bad address): its heartbeats decide
            if refused:
                break
        else:
            log.info("controller: broker %s's connection closed, but its port accepts: its "
                     "heartbeats decide", broker_addr)
            return  # alive (or hung: the kernel still accepts)
        log.warning("controller: broker %s (%s id %d) is gone: its port refuses connections",
                    broker_addr, key[1], key[2])
        self.live.remove(key)
        self._dead.add(key)
        state = self._cache.get(key[1])
        if state is not None and state.master == key[2]:
            await self.replace_master(key[1])

    # -- elections ---------------------------------------------------------------------------
    def may_replace(self, state: BrokerSetState) -> bool:
        """Whether a new master may be elected for ``state`` now: the old one's lease is over
        (lease.py) or it is gone."""
        if state.master is None:
            return True
        if (state.cluster, state.broker_name, state.master) in self._dead:
            return True
        since = self.leadership.active_since
        if since is None or self._clock() - since < handover_wait_s(self.config.lease_ms):
            return False  # the previous active controller may have granted a lease
        return not self.alive_in(state)(state.master)

    async def replace_master(self, broker_name: str) -> None:
        """ControllerManager.triggerElectMaster: the controller's own election, then the news to
        every live member."""
        if broker_name in self._electing or not self.active:
            return
        self._electing.add(broker_name)
        try:
            cached = self._cache.get(broker_name)
            if cached is None or not self.may_replace(cached):
                return

            def rule(s: BrokerSetState | None) -> Decision:
                if s is None or not self.may_replace(s):
                    return Decision(ResponseCode.CONTROLLER_MASTER_STILL_EXIST, "not yet")
                return replicas.elect_master(s, CONTROLLER_TRIGGERED, False, self.live_in(s),
                                             self.config.elect_unclean)
            decision = await self.decide(broker_name, rule)
            if decision.code == ResponseCode.SUCCESS:
                await self.notify_role_changed(broker_name)
            elif decision.code == ResponseCode.CONTROLLER_MASTER_NOT_AVAILABLE:
                log.warning("controller: %s has no master: no in-sync replica is alive",
                            broker_name)
        except (NotActive, MetaStoreUnavailable, LeaseExpired) as exc:
            log.info("controller: electing a master for %s: %r", broker_name, exc)
        finally:
            self._electing.discard(broker_name)

    async def notify_role_changed(self, broker_name: str) -> None:
        """NOTIFY_BROKER_ROLE_CHANGED to every live member (oneway)."""
        state = self._cache.get(broker_name)
        if not self.config.notify_role_changed or state is None or state.master is None:
            return
        header = NotifyBrokerRoleChangedRequestHeader(
            master_address=state.address_of(state.master), master_epoch=state.master_epoch,
            sync_state_set_epoch=state.sync_state_set_epoch, master_broker_id=state.master)
        body = SyncStateSet(state.sync_state_set, state.sync_state_set_epoch).encode()
        alive = self.alive_in(state)
        for broker_id, member in state.members.items():
            if not alive(broker_id):
                continue
            request = RemotingCommand.request(RequestCode.NOTIFY_BROKER_ROLE_CHANGED,
                                              encode_header(header), body)
            try:
                await self._outbound.invoke_oneway(member.address, request, NOTIFY_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001 - the broker's 5 s poll is the fallback
                log.info("controller: notifying %s of its role failed: %s", member.address, exc)

    async def _scan(self) -> None:
        """scanNotActiveBroker + scanInactiveMasterAndTriggerReelect, for the active controller."""
        interval = self.config.scan_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            for key in self.live.expired():
                log.warning("controller: broker %s id %d of %s stopped heartbeating", key[1],
                            key[2], key[0])
            if self.active:
                await outlive(self._replace_dead_masters, "controller: scan")

    async def _replace_dead_masters(self) -> None:
        for name, state in list(self._cache.items()):
            if replicas.needs_reelection(state, self.alive_in(state)) and \
                    self.may_replace(state):
                await self.replace_master(name)


async def _refuses(addr: str) -> bool | None:
    """Whether ``addr`` refuses a connection; None when that cannot be told."""
    try:
        host, port = split_address(addr)
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            _, writer = await asyncio.open_connection(host, port)
        writer.close()
        return False
    except ConnectionRefusedError:
        return True
    except (OSError, TimeoutError, ValueError) as exc:
        log.info("controller: probing %s: %r", addr, exc)
        return None
