"""The Broker process: one store, one listener, the request handlers, the NameServer timer.

    broker = Broker(BrokerConfig.from_file("broker.conf"))
    await broker.start()
    ...
    await broker.stop()   # unregister, stop serving, flush and close the store

start() binds first so that a listenPort of 0 resolves to the real port before the store opens:
the store host written into every message (and so every offset message id) is
brokerIP1:listenPort, the address clients send CONSUMER_SEND_MSG_BACK to.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Self

from ...net import Dispatcher, RemotingClient, RemotingServer, ServerConfig
from ...protocol.register_body import RegisterBrokerBody
from ...store import MessageStore, open_store
from .config import BrokerConfig
from .delivery.delay_levels import DelayLevels
from .delivery.timers import BrokerTimers
from .handlers.admin import AdminProcessor
from .handlers.checkconfig import CheckClientConfigProcessor
from .handlers.clients import ClientManager
from .handlers.locks import LockProcessor, RebalanceLockManager
from .handlers.offsets import OffsetProcessor
from .handlers.pull import PullProcessor
from .handlers.query import QueryProcessor
from .handlers.send import SendProcessor
from .handlers.sendback import SendBackProcessor
from .handlers.stats import StatsProcessor
from .longpoll import ArrivalWaiters
from .register import NameServerRegistrar
from .subgroups import SubscriptionGroupManager
from .topics import BrokerTopics
from .transactions.service import Transactions

log = logging.getLogger(__name__)

CLIENT_SCAN_INTERVAL_S = 10.0  # ClientHousekeepingService's scan period


class Broker:
    def __init__(self, config: BrokerConfig) -> None:
        self.config = config
        self.dispatcher = Dispatcher()
        self.store: MessageStore | None = None
        self.clients: ClientManager | None = None
        self.arrivals = ArrivalWaiters()
        self._server: RemotingServer | None = None
        self._outbound = RemotingClient()
        self._registrar: NameServerRegistrar | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._started = False
        self._send: SendProcessor | None = None
        self._delays: DelayLevels | None = None
        self._timers: BrokerTimers | None = None
        self._groups: SubscriptionGroupManager | None = None

    @property
    def address(self) -> str:
        """brokerAddr (ip:port), with the real port once started."""
        return self.config.addr

    async def start(self) -> None:
        if self._started:
            raise RuntimeError("broker already started")
        c = self.config
        self._server = RemotingServer(self.dispatcher,
                                      ServerConfig(host=c.bind_host, port=c.listen_port))
        await self._server.start()
        if c.listen_port == 0:
            c = self.config = c.replace(listen_port=self._server.address[1])
        # Synchronous on purpose: no request is read before the handlers exist.
        try:
            self.store = store = open_store(c.store_root, **self._store_config())
        except BaseException:
            await self._server.close()
            raise
        self._registrar = NameServerRegistrar(
            c, lambda: RegisterBrokerBody(topics.data_version(), topics.all_configs(), []),
            self._outbound)
        topics = BrokerTopics(store, self._registrar.register_soon)
        topics.ensure_defaults(c.cluster_name, c.broker_name, c.auto_create_topic,
                               c.default_topic_queue_nums)
        if c.trace_topic_enable:  # TopicConfigManager: 1 read and 1 write queue, perm 6
            topics.ensure_system(c.msg_trace_topic_name)
        self._groups = groups = SubscriptionGroupManager(store.root,
                                                         c.auto_create_subscription_group)
        groups.load()
        self.clients = ClientManager(topics, groups, self._spawn, c.channel_expired_ms / 1000,
                                     c.register_timeout_ms / 1000)
        self._send = SendProcessor(c, store, topics, groups, self.arrivals)
        # Broker services that store some sends elsewhere first hook in here (send.Rewrite).
        transactions = Transactions(c, store, topics, self.clients, self.arrivals, self._spawn)
        self._send.add_rewrite(transactions.rewrite, transactions.REWRITE_PROPS)
        transactions.register_handlers(self.dispatcher)
        self._spawn(transactions.run())
        self._delays = delays = DelayLevels(c, store, topics, self.arrivals)
        self._send.add_rewrite(delays.rewrite, delays.REWRITE_PROPS)
        delays.start(self._spawn)
        self._timers = timers = BrokerTimers(c, store, topics, self.arrivals)
        self._send.add_rewrite(timers.rewrite, timers.REWRITE_PROPS)
        timers.start(self._spawn)
        sendback = SendBackProcessor(c, store, topics, groups, self.arrivals, delays)
        for processor in (delays, sendback):
            processor.register_handlers(self.dispatcher)
        for processor in (self._send,
                          PullProcessor(c, store, topics, groups, self.clients, self.arrivals),
                          OffsetProcessor(store), self.clients,
                          LockProcessor(RebalanceLockManager(c.lock_max_live_ms / 1000)),
                          AdminProcessor(topics, groups, c.register_timeout_ms / 1000),
                          CheckClientConfigProcessor(c), QueryProcessor(store),
                          StatsProcessor(store, topics, self.clients, c.broker_name)):
            processor.register_handlers(self.dispatcher)
        self._spawn(self._scan_clients())
        # Registered before start() returns, so "ready" means routable (BrokerController.start).
        await self._registrar.register_all()
        self._registrar.start()
        self._started = True
        log.info("broker %s (cluster %s, id %d) serving on %s, store %s, %s",
                 c.broker_name, c.cluster_name, c.broker_id, c.addr, c.store_root,
                 "SYNC_FLUSH" if c.sync_flush else "ASYNC_FLUSH")

    async def stop(self) -> None:
        """Clean shutdown: unregister from the NameServers, answer held pulls, close every
        connection, then flush and close the store. Idempotent."""
        if not self._started:
            return
        self._started = False
        if self._registrar is not None:
            await self._registrar.stop()
        self.arrivals.wake_all()
        for _ in range(3):  # let woken pulls write their answers
            await asyncio.sleep(0)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.close()
        await self._outbound.close()
        if self._send is not None:
            self._send.close()
        if self._delays is not None:  # its task is cancelled: persist delayOffset.json
            await asyncio.get_running_loop().run_in_executor(None, self._delays.close)
        if self._timers is not None:  # its task is cancelled: persist the timer progress
            await asyncio.get_running_loop().run_in_executor(None, self._timers.close)
        if self._groups is not None:  # subscriptionGroup.json written whole
            self._groups.close()
        if self.store is not None:
            # close() flushes to disk; off the loop so other loop users are not stalled.
            await asyncio.get_running_loop().run_in_executor(None, self.store.close)
        log.info("broker %s stopped", self.config.broker_name)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _store_config(self) -> dict[str, object]:
        c = self.config
        return {
            "flush": "sync" if c.sync_flush else "async",
            "store_host": (c.broker_ip, c.listen_port),
            "compression": None,  # a broker stores bodies exactly as producers sent them
            "max_message_size": c.max_message_size,
            "sync_flush_timeout_ms": c.sync_flush_timeout_ms,
            "retention_hours": c.file_reserved_hours,
            "commitlog_segment_bytes": c.commitlog_segment_bytes,
            "warm_window_bytes": None if c.warm_mapped_file else 0,
            **c.store_overrides,
        }

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _scan_clients(self) -> None:
        interval = min(CLIENT_SCAN_INTERVAL_S, self.config.channel_expired_ms / 2000)
        while True:
            await asyncio.sleep(interval)
            if self.clients is not None:
                self.clients.scan_expired()
