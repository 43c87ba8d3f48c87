"""Replication in the broker, by brokerRole (BrokerController's HA wiring, rocketmq-all-4.9.7):

- ASYNC_MASTER / SYNC_MASTER run an HAService on haListenPort (rmqstore.ha): slaves connect
  and are streamed the commit log. A SYNC_MASTER send that waits for the store (WAIT is not
  false) is answered once a slave holds it (CommitLog.submitReplicaRequest): at once
  SLAVE_NOT_AVAILABLE when no slave is connected or the nearest is more than
  haSlaveFallbehindMax behind, else SEND_OK when one acknowledges, FLUSH_SLAVE_TIMEOUT after
  slaveTimeout. Either way the message is stored.
- With TLS, the HA port takes the remoting port's tls.server.* settings (mode, certificate,
  client certificates), and a slave connects with its own connections' (tls.enable,
  tls.client.*).
- SLAVE opens its store as a replica and runs an HAClient to its master's HA address:
  haMasterAddress, else what the NameServer answers its registration with
  (updateMasterHAServerAddrPeriodically), and SlaveSynchronize to the master's broker address.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from ...ha import HAClient, HAConfig, HAService
from ...message import PutStatus
from ...protocol.headers import RegisterBrokerResponseHeader
from ...store import MessageStore
from .config import BrokerConfig

log = logging.getLogger(__name__)

StatusCallback = Callable[[PutStatus], object]


class Replication(Protocol):
    """What the send path needs of a master's replication."""

    sync: bool  # sends wait for replicas (SYNC_MASTER)

    def when_replicated(self, callback: StatusCallback) -> None: ...


# An ASYNC_MASTER's sends wait for no slave (controller mode's always wait): its links gather
# this long's appends into their frames, fewer and larger, rather than pushing every loop
# iteration's.
ASYNC_PUSH_DELAY_MS = 5


def ha_config(config: BrokerConfig) -> HAConfig:
    return HAConfig(heartbeat_interval_ms=config.ha_send_heartbeat_interval_ms,
                    housekeeping_interval_ms=config.ha_housekeeping_interval_ms,
                    transfer_batch_bytes=config.ha_transfer_batch_size,
                    slave_fallbehind_max=config.ha_slave_fallbehind_max,
                    slave_timeout_ms=config.slave_timeout_ms,
                    push_delay_ms=ASYNC_PUSH_DELAY_MS
                    if config.broker_role == "ASYNC_MASTER" and not config.controller_mode
                    else 0)


class MasterReplication:
    """A master's HAService, and the SYNC_MASTER wait of the send path."""

    def __init__(self, config: BrokerConfig, store: MessageStore) -> None:
        self._store = store
        self.sync = config.broker_role == "SYNC_MASTER"
        self.service = HAService(store, config.bind_host, config.ha_port, ha_config(config),
                                 config.remoting.tls_server)

    async def start(self) -> None:
        await self.service.start()

    async def stop(self) -> None:
        await self.service.close()

    def when_replicated(self, callback: StatusCallback) -> None:
        """SYNC_MASTER: callback(status) for what the store holds now (the sends just
        stored end there): PUT_OK once a slave holds it, or SLAVE_NOT_AVAILABLE /
        FLUSH_SLAVE_TIMEOUT."""
        end = self._store.commitlog.max_offset
        if not self.service.slave_ok(end):
            callback(PutStatus.SLAVE_NOT_AVAILABLE)
            return
        self.service.when_replicated(end, callback, PutStatus.PUT_OK,
                                     PutStatus.FLUSH_SLAVE_TIMEOUT)


class SlaveReplication:
    """A slave's HAClient; the master's broker address for SlaveSynchronize."""

    def __init__(self, config: BrokerConfig, store: MessageStore,
                 on_dispatched: Callable[[set[tuple[str, int]]], None]) -> None:
        self._fixed_master = config.ha_master_address is not None
        self.master_addr: str | None = None  # the master's broker address (masterAddr)
        self.client = HAClient(store, config.ha_master_address, ha_config(config),
                               on_dispatched, config.remoting.tls_client)

    async def start(self) -> None:
        await self.client.start()

    async def stop(self) -> None:
        await self.client.close()

    def on_register_answer(self, answer: RegisterBrokerResponseHeader) -> None:
        """The NameServer's answer to a registration: where the master is (or nothing while
        no master is registered: the last one known is kept)."""
        if answer.master_addr and answer.master_addr != self.master_addr:
            log.info("master broker: %s", answer.master_addr)
            self.master_addr = answer.master_addr
        if answer.ha_server_addr and not self._fixed_master:
            self.client.set_master(answer.ha_server_addr)
