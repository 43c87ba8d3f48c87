"""A controller-mode broker's replication, which follows its role (AutoSwitchHAService's
changeToMaster / changeToSlave): as master an EpochHAService on haListenPort with its in-sync
replicas, sends waiting for every member; as slave an EpochHAClient to the master's HA
address. With TLS the HA port and the links to it take the broker's tls.server.* and
tls.client.* settings, as replication.py's do. The store changes role in place
(MessageStore.become_master / become_replica) and the epoch file (epochFileCheckpoint) gets the
new master epoch.

For the send path it is a Replication (replication.py): SYNC_MASTER's wait, over the in-sync
replicas. Runs on the broker's event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ...epoch_file import EpochFile
from ...ha import HAConfig
from ...ha.epoch_client import EpochHAClient
from ...ha.epoch_master import EpochHAService
from ...ha.in_sync import InSyncConfig, InSyncReplicas
from ...message import PutStatus
from ...protocol.headers import RegisterBrokerResponseHeader
from ...store import MessageStore
from .config import BrokerConfig
from .replication import StatusCallback, ha_config

log = logging.getLogger(__name__)

BIND_ATTEMPTS = 20  # the HA port just released by this process may take a moment


def in_sync_config(config: BrokerConfig) -> InSyncConfig:
    return InSyncConfig(all_ack=config.all_ack_in_sync_state_set,
                        in_sync_replicas=config.in_sync_replicas,
                        min_in_sync_replicas=config.min_in_sync_replicas,
                        max_not_caught_up_s=config.ha_max_time_slave_not_catchup_ms / 1000,
                        slave_timeout_s=config.slave_timeout_ms / 1000)


class ControllerReplication:
    sync = True  # a controller-mode master is a SYNC_MASTER

    def __init__(self, config: BrokerConfig, store: MessageStore,
                 on_dispatched: Callable[[set[tuple[str, int]]], None],
                 on_confirmed: Callable[[], None]) -> None:
        """on_dispatched(queues): a slave's dispatch grew them; on_confirmed(): a master's
        confirm offset moved (held pulls may see more)."""
        self._config = config
        self._store = store
        self._ha: HAConfig = ha_config(config)
        self.epochs = EpochFile(store.root)
        self._on_dispatched = on_dispatched
        self._on_confirmed = on_confirmed
        self.service: EpochHAService | None = None
        self.client: EpochHAClient | None = None
        self.isr: InSyncReplicas | None = None
        self.ha_port = config.ha_port
        self.master_addr: str | None = None  # the master the controller named, while slave

    # -- the send path (replication.Replication) ---------------------------------------------
    def when_replicated(self, callback: StatusCallback) -> None:
        service = self.service
        if service is None:
            callback(PutStatus.SLAVE_NOT_AVAILABLE)
            return
        service.when_replicated(self._store.commitlog.max_offset, callback, PutStatus.PUT_OK,
                                PutStatus.FLUSH_SLAVE_TIMEOUT)

    # -- role changes ------------------------------------------------------------------------
    async def to_master(self, me: int, epoch: int, in_sync: frozenset[int], in_sync_epoch: int,
                        on_in_sync_change: Callable[[frozenset[int]], None]) -> None:
        """changeToMaster: the HA client stops, every record appended is dispatched, the
        epoch file gets ``epoch`` from where the log ends, the HA port serves slaves."""
        if self.client is not None:
            await self.client.close()
            self.client = None
        store = self._store
        await asyncio.get_running_loop().run_in_executor(None, store.become_master)
        if self.epochs.last_epoch < epoch:
            self.epochs.append(epoch, store.commitlog.max_offset)
        if self.service is not None:  # master again under a newer epoch: same links
            assert self.isr is not None
            self.isr.set_committed(in_sync, in_sync_epoch)
            return
        self.isr = isr = InSyncReplicas(
            asyncio.get_running_loop(), me, lambda: store.commitlog.max_offset,
            lambda: self.epochs.entries[-1][1] if self.epochs.entries else 0,
            in_sync_config(self._config), on_in_sync_change, self._confirmed)
        isr.set_committed(in_sync, in_sync_epoch)
        self.service = await self._serve(isr)
        log.info("HA: master of epoch %d, in-sync replicas %s, HA port %d", epoch,
                 sorted(isr.committed), self.ha_port)

    async def _serve(self, isr: InSyncReplicas) -> EpochHAService:
        last: OSError | None = None
        for _ in range(BIND_ATTEMPTS):
            service = EpochHAService(self._store, self.epochs, isr, self._config.bind_host,
                                     self.ha_port, self._ha, self._config.remoting.tls_server)
            try:
                await service.start()
            except OSError as exc:  # our own old listener's port, not yet free
                last = exc
                await asyncio.sleep(0.1)
                continue
            self.ha_port = service.address[1]
            return service
        raise OSError(f"HA port {self.ha_port} stays busy: {last}")

    def _confirmed(self, offset: int) -> None:
        isr = self.isr
        # CommitLog.getConfirmOffset: the master caps reads only with allAck and others in sync
        capped = isr is not None and self._config.all_ack_in_sync_state_set and \
            len(isr.required) > 1
        self._store.set_confirm_offset(offset if capped else None)
        self._on_confirmed()

    async def to_slave(self, me: int, master_addr: str | None) -> None:
        """changeToSlave: the HA port stops serving (its waiting sends fail), the store takes
        its master's bytes; the HA address of ``master_addr`` (the broker address the
        controller named) comes with a registration answer (on_register_answer)."""
        self.master_addr = master_addr
        await self._stop_master()
        store = self._store
        store.become_replica()
        if self.client is None:
            self.client = EpochHAClient(store, self.epochs, me, None, self._ha,
                                        self._on_dispatched, self._config.sync_from_last_file,
                                        self._config.remoting.tls_client)
            await self.client.start()
        else:
            self.client.broker_id = me
            self.client.set_master(None)  # the old master's link goes; a new one is named next

    def on_register_answer(self, answer: RegisterBrokerResponseHeader) -> None:
        """A NameServer's answer while slave: the master's HA address (updateHaMasterAddress),
        taken only when the answer names the master the controller named: a NameServer that
        still has the deposed master registered (its new one not yet) would send this slave
        back to it."""
        if self.client is None or not answer.ha_server_addr:
            return
        if self.master_addr is not None and answer.master_addr != self.master_addr:
            log.info("HA: a NameServer names master %s; the controller named %s: not followed",
                     answer.master_addr, self.master_addr)
            return
        self.client.set_master(answer.ha_server_addr)

    async def _stop_master(self) -> None:
        service, self.service = self.service, None
        self.isr = None
        if service is not None:
            await service.close()
        self._store.set_confirm_offset(None)

    async def stop(self) -> None:
        await self._stop_master()
        if self.client is not None:
            await self.client.close()
            self.client = None
