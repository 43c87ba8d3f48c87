"""The Broker process: one store, one listener, the request handlers, the NameServer timer.

    broker = Broker(BrokerConfig.from_file("broker.conf"))
    await broker.start()
    ...
    await broker.stop()   # unregister, stop serving, flush and close the store

start() binds first so that a listenPort of 0 resolves to the real port before the store opens:
the store host written into every message (and so every offset message id) is
brokerIP1:listenPort, the address clients send CONSUMER_SEND_MSG_BACK to.

brokerRole decides replication (replication.py): a master serves its HA port before it
registers; a slave opens its store as a replica, follows its master and copies its metadata
(slave_sync.py), and starts none of the services that write (delay levels, timers,
transaction checks). In controller mode (enableControllerMode) the controller decides the role
and moves it in place (replicas_manager.py, controller_replication.py): the broker starts
fenced, as a slave without a master; delay levels and timers run while it is master.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import resource
from collections.abc import Awaitable
from typing import Self

from ...errors import StoreLayoutError, StoreLockedError
from ...net import ClientConfig, Dispatcher, RemotingClient, RemotingServer
from ...protocol.acl_signature import sign_request
from ...protocol.register_body import RegisterBrokerBody
from ...store import MessageStore, open_store
from ..acl import AccessControl, install_access_control
from ..config_error import ConfigError
from ..listen import listen
from .broker_stats import BrokerStats
from .config import BrokerConfig
from .controller_replication import ControllerReplication
from .delivery.delay_levels import DelayLevels
from .delivery.timers import BrokerTimers
from .handlers.admin import AdminProcessor
from .handlers.broker_info import BrokerInfoProcessor
from .handlers.checkconfig import CheckClientConfigProcessor
from .handlers.client_admin import ClientAdminProcessor
from .handlers.clients import ClientManager
from .handlers.locks import LockProcessor, RebalanceLockManager
from .handlers.offsets import OffsetProcessor
from .handlers.pull import PullProcessor
from .handlers.query import QueryProcessor
from .handlers.send import SendProcessor
from .handlers.sendback import SendBackProcessor
from .handlers.stats import StatsProcessor
from .longpoll import ArrivalWaiters
from .metrics.collector import BrokerState
from .metrics.rpc import RpcLatency
from .register import NameServerRegistrar
from .replicas_manager import ReplicasManager
from .replication import MasterReplication, Replication, SlaveReplication
from .role import BrokerRole
from .runtime_config import RuntimeConfig
from .slave_sync import SlaveSynchronize
from .stats import Statistics
from .subgroups import SubscriptionGroupManager
from .topics import BrokerTopics, TopicCaps
from .transactions.service import Transactions
from .web import BrokerWeb

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
        credentials = config.credentials
        # Everything this broker sends to NameServers and other brokers is signed.
        self._outbound = RemotingClient(
            ClientConfig(tls=config.remoting.tls_client),
            before_request=None if credentials is None else (
                lambda request: sign_request(request, credentials)))
        self._registrar: NameServerRegistrar | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._started = False
        self._send: SendProcessor | None = None
        self._delays: DelayLevels | None = None
        self._timers: BrokerTimers | None = None
        self._groups: SubscriptionGroupManager | None = None
        self.stats: Statistics | None = None
        self.web: BrokerWeb | None = None
        self.rpc = RpcLatency()
        self.dispatcher.observer = self.rpc
        self.master: MasterReplication | None = None
        self.slave: SlaveReplication | None = None
        self.role = BrokerRole(config)
        self.controlled: ControllerReplication | None = None  # controller mode
        self.replicas: ReplicasManager | None = None
        self._master_tasks: set[asyncio.Task[None]] = set()  # what runs only on a master

    @property
    def address(self) -> str:
        """brokerAddr (ip:port), with the real port once started."""
        return self.config.addr

    async def start(self) -> None:
        if self._started:
            raise RuntimeError("broker already started")
        c = self.config
        # Before listening: a broker asked for ACL never serves a request without it.
        access = install_access_control(c.acl, self.dispatcher, "broker")
        self._server = RemotingServer(self.dispatcher, c.server_config())
        await listen(self._server.start(), "the broker", c.bind_host, c.listen_port,
                     "listenPort (or --broker-port) chooses another")
        warn_descriptor_budget(self._server.max_connections, c.max_queue_nums_per_broker)
        if c.listen_port == 0:
            # any free port for the HA listener too: listenPort + 1 of a random port may be
            # anyone's
            c = self.config = c.replace(listen_port=self._server.address[1],
                                        ha_listen_port=c.ha_listen_port or 0)
        # Synchronous on purpose: no request is read before the handlers exist.
        try:
            self.store = store = open_store(c.store_root, **self._store_config())
        except BaseException as exc:
            await self._server.close()
            if isinstance(exc, StoreLockedError):
                # the engine's hint about shared=True means nothing to an operator
                raise ConfigError(f"{c.store_root} is open in another process: another broker "
                                  f"runs on this store") from None
            if isinstance(exc, StoreLayoutError):
                raise ConfigError(str(exc)) from None
            if isinstance(exc, OSError):
                raise ConfigError(f"store {c.store_root} cannot be opened: "
                                  f"{exc.strerror or exc}") from None
            raise
        replication: Replication | None = None
        on_answer = None
        if c.controller_mode:
            self.controlled = replication = ControllerReplication(
                c, store, self._queues_grew, self.arrivals.notify_all)
            on_answer = self.controlled.on_register_answer
        elif c.slave:
            self.slave = SlaveReplication(c, store, self._queues_grew)
            on_answer = self.slave.on_register_answer
        else:
            c = self.config = await self._serve_ha(c, store)
            replication = self.master
        self._registrar = NameServerRegistrar(
            c, lambda: RegisterBrokerBody(topics.data_version(),
                                          topics.registered_configs(c.broker_permission), []),
            self._outbound, on_answer, role=self.role)
        topics = BrokerTopics(store, self._registrar.register_soon, TopicCaps(
            c.max_queue_nums_per_topic, c.max_topic_nums, c.max_queue_nums_per_broker))
        topics.ensure_defaults(c.cluster_name, c.broker_name, c.auto_create_topic,
                               c.default_topic_queue_nums)
        if c.trace_topic_enable:  # TopicConfigManager: 1 read and 1 write queue, perm 6
            topics.ensure_system(c.msg_trace_topic_name)
        self._groups = groups = SubscriptionGroupManager(store.root,
                                                         c.auto_create_subscription_group)
        groups.load()
        self.clients = ClientManager(topics, groups, self._spawn, c.channel_expired_ms / 1000,
                                     c.register_timeout_ms / 1000)
        self.stats = stats = Statistics(store, topics, self.clients)
        traffic = stats.traffic
        # RocketMQ's StatsItem windows and TPS over the same counters (315, 28)
        rocketmq_stats = BrokerStats(traffic, c.cluster_name)
        self._spawn(rocketmq_stats.run())
        self._send = SendProcessor(c, store, topics, groups, self.arrivals, replication,
                                   traffic=traffic, role=self.role)
        # Broker services that store some sends elsewhere first hook in here (send.Rewrite).
        transactions = Transactions(c, store, topics, self.clients, self.arrivals, self._spawn,
                                    traffic=traffic)
        self._send.add_rewrite(transactions.rewrite, transactions.REWRITE_PROPS)
        transactions.register_handlers(self.dispatcher)
        self._spawn(transactions.run())
        self._delays = delays = DelayLevels(c, store, topics, self.arrivals)
        self._send.add_rewrite(delays.rewrite, delays.REWRITE_PROPS)
        delays.start(self._spawn)
        self._timers = timers = BrokerTimers(c, store, topics, self.arrivals)
        self._send.add_rewrite(timers.rewrite, timers.REWRITE_PROPS)
        if not c.slave and not c.controller_mode:  # a slave's timer log is its master's
            timers.start(self._spawn)
        sendback = SendBackProcessor(c, store, topics, groups, self.arrivals, delays,
                                     traffic=traffic, role=self.role)
        offsets = OffsetProcessor(store)
        for processor in (delays, sendback):
            processor.register_handlers(self.dispatcher)
        for processor in (self._send,
                          PullProcessor(c, store, topics, groups, self.clients, self.arrivals,
                                        traffic=traffic, role=self.role),
                          offsets, self.clients,
                          LockProcessor(RebalanceLockManager(c.lock_max_live_ms / 1000)),
                          AdminProcessor(store, topics, groups, self.clients,
                                         c.register_timeout_ms / 1000),
                          CheckClientConfigProcessor(c), QueryProcessor(store),
                          StatsProcessor(store, topics, self.clients, c.broker_name, stats),
                          BrokerInfoProcessor(store, rocketmq_stats,
                                              self._runtime_config(store, topics, groups),
                                              self._requests_in_flight),
                          ClientAdminProcessor(store, topics, self.clients, c.broker_name,
                                               offsets.offset_by_time)):
            processor.register_handlers(self.dispatcher)
        self._spawn(self._scan_clients())
        self._spawn(stats.history.run())
        if access is not None:
            self._spawn(access.watch())
        await self._follow_master(topics, groups, delays)
        if c.http_enabled:
            try:
                await self._start_web(BrokerState(c, store, topics, groups, self.clients,
                                                  stats, self.rpc, self._registrar), access)
            except BaseException:
                self._started = True  # so that stop() closes what was opened
                await self.stop()
                raise
        if self.controlled is not None:
            await self._join_controller(topics, groups, delays, timers)
        self._started = True
        # Registered before start() returns, so "ready" means routable (BrokerController.start).
        if not await self._registrar.register_all(quiet=True) and c.namesrv_addrs:
            self._registrar = None  # nothing to unregister from
            await self.stop()
            raise ConfigError(f"no NameServer of namesrvAddr ({';'.join(c.namesrv_addrs)}) "
                              f"answered: start one, or fix namesrvAddr (--namesrv-addr)")
        self._registrar.start()
        log.info("broker %s (cluster %s, id %d, %s) serving on %s, HA %s, store %s, %s",
                 c.broker_name, c.cluster_name, c.broker_id, c.broker_role, c.addr, c.ha_addr,
                 c.store_root, "SYNC_FLUSH" if c.sync_flush else "ASYNC_FLUSH")

    async def _serve_ha(self, c: BrokerConfig, store: MessageStore) -> BrokerConfig:
        """A master's HA listener, before it registers the HA address (its real port)."""
        self.master = MasterReplication(c, store)
        try:
            await listen(self.master.start(), "the broker's HA service", c.bind_host,
                         c.ha_port, "haListenPort chooses another")
        except BaseException:
            assert self._server is not None
            await self._server.close()
            store.close()
            raise
        if c.acl_enable:  # said once at start: the HA port is outside what ACL guards
            log.warning("aclEnable=true, but the HA port %s:%d serves the commit log to "
                        "whoever connects, as RocketMQ's: keep it where only slaves reach it",
                        *self.master.service.address)
        return c.replace(ha_listen_port=self.master.service.address[1])

    async def _follow_master(self, topics: BrokerTopics, groups: SubscriptionGroupManager,
                             delays: DelayLevels) -> None:
        """A slave's HA client and metadata sync."""
        if self.slave is not None:
            slave = self.slave
            await slave.start()
            sync = SlaveSynchronize(self._outbound, lambda: slave.master_addr, self.store,
                                    topics, groups, delays.service)
            self._spawn(sync.run())

    async def _join_controller(self, topics: BrokerTopics, groups: SubscriptionGroupManager,
                               delays: DelayLevels, timers: BrokerTimers) -> None:
        """Controller mode: the role comes from the controllers (replicas_manager.py); the
        master's metadata is copied while slave; delay levels and timers run while master."""
        assert self.controlled is not None and self.store is not None
        store, role = self.store, self.role

        async def role_changed() -> None:
            topics.next_version(role.master_epoch)  # stateVersion: the NameServer's rule
            for task in list(self._master_tasks):
                task.cancel()
            self._master_tasks.clear()
            if not role.slave:
                def spawn_master(coro: Awaitable[None]) -> None:
                    self._master_tasks.add(asyncio.ensure_future(coro))
                spawn_master(delays.service.run(self.arrivals.notify))
                timers.start(spawn_master)
            if self._registrar is not None:
                await self._registrar.register_all()
                if role.slave:  # until the new master is registered: its HA address
                    self._spawn(self._learn_master_ha())

        self.replicas = replicas = ReplicasManager(self.config, role, store, self.controlled,
                                                   self._outbound, role_changed, self._spawn)
        replicas.register_handlers(self.dispatcher)
        sync = SlaveSynchronize(self._outbound, lambda: replicas.master_addr if role.slave
                                else None, store, topics, groups, delays.service)
        self._spawn(sync.run())
        self._spawn(replicas.run())

    async def _learn_master_ha(self, attempts: int = 50) -> None:
        """RocketMQ's slave learns its master's HA address from its next registration's
        answer; here registrations repeat (bounded) until one names it."""
        controlled = self.controlled
        for _ in range(attempts):
            client = controlled.client if controlled is not None else None
            if client is None or client.master is not None or not self.role.slave:
                return
            await asyncio.sleep(0.2)
            if self._registrar is not None:
                await self._registrar.register_all()

    def _queues_grew(self, queues: set[tuple[str, int]]) -> None:
        """A slave's dispatch added messages: wake the pulls held on them."""
        for topic, queue_id in queues:
            self.arrivals.notify(topic, queue_id)

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
        for task in [*self._tasks, *self._master_tasks]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._master_tasks, return_exceptions=True)
        for replication in (self.master, self.slave, self.controlled):
            if replication is not None:
                await replication.stop()
        if self.web is not None:
            await self.web.close()
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
            "replica": c.slave or c.controller_mode,  # controller mode starts fenced
            "delay_levels": c.message_delay_level,
            # the store's disk alarm acts on these: reclaims, deletes early, refuses writes
            "disk_max_used_ratio": c.disk_max_used_ratio,
            "disk_clean_forcibly_ratio": c.disk_clean_forcibly_ratio,
            "disk_full_ratio": c.disk_full_ratio,
            **c.store_overrides,
        }

    def _runtime_config(self, store: MessageStore, topics: BrokerTopics,
                        groups: SubscriptionGroupManager) -> RuntimeConfig:
        """The config UPDATE_BROKER_CONFIG changes, with what must follow a change of a value
        copied at start."""
        def retention_hours(hours: object) -> None:
            store.retention.retention_s = float(hours) * 3600  # type: ignore[arg-type]

        def disk_ratio(ratio: object) -> None:  # the disk alarm's first level
            store.disk_alarm.thresholds = dataclasses.replace(
                store.disk_alarm.thresholds, max_used=float(ratio))  # type: ignore[arg-type]

        def auto_create_groups(on: object) -> None:
            groups.auto_create = bool(on)

        return RuntimeConfig(self.config, store.config, {
            "fileReservedTime": retention_hours, "diskMaxUsedSpaceRatio": disk_ratio,
            "autoCreateSubscriptionGroup": auto_create_groups,
            "brokerPermission": lambda _: topics.touch()})  # routes carry the new perm

    def _requests_in_flight(self) -> int:
        server = self._server
        return sum(c.requests_in_flight for c in server.connections) if server else 0

    async def _start_web(self, state: BrokerState, access: AccessControl | None) -> None:
        c = self.config
        self.web = BrokerWeb(state, c.http_host, c.metrics_port,
                             metrics=c.metrics_exporter == "PROM",
                             dashboard=c.dashboard_enable, access=access)
        try:
            await self.web.start()
        except OSError as exc:
            raise ConfigError(f"metricsPromExporterPort {c.metrics_port} on {c.http_host}: "
                              f"{exc.strerror or exc}") from None
        if c.metrics_port == 0:
            self.config = c.replace(metrics_port=self.web.address[1])

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


DESCRIPTOR_RESERVE = 256  # the store's own files, index, config writes, the outbound clients


def warn_descriptor_budget(max_connections: int, max_queues: int) -> None:
    """Say so at start if the caps allow more open files than ulimit -n: past it, sends to new
    queues fail (with an error response) rather than the caps refusing them first."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max_connections + max_queues + DESCRIPTOR_RESERVE
    if soft != resource.RLIM_INFINITY and wanted > soft:
        log.warning("serverMaxConnections %d + maxQueueNumsPerBroker %d + %d may need more "
                    "descriptors than ulimit -n allows (%d): raise it or lower the caps",
                    max_connections, max_queues, DESCRIPTOR_RESERVE, soft)
