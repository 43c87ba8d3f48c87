"""RouteInfoManager: which brokers serve which topics, and which brokers are alive.

Same tables and rules as namesrv/.../routeinfo/RouteInfoManager.java (rocketmq-all-4.9.7):

* topic_queue_table   topic -> brokerName -> QueueData (queue counts and perm of that broker)
* broker_addr_table   brokerName -> BrokerData (cluster, brokerAddrs: brokerId -> "ip:port",
                      id 0 = master)
* cluster_addr_table  clusterName -> {brokerName}
* broker_live_table   brokerAddr -> BrokerLiveInfo (last heartbeat, data version, connection)
* filter_server_table brokerAddr -> [filter server addr]

Only a master (broker id 0) writes queue data, and only when its data version changed or it
registers for the first time. An address leaves when its broker unregisters, its heartbeat
is older than the expiry, or its connection closes; a broker name (and its queue data) goes
when its last address goes.

Controller mode (RocketMQ 5's registerBroker): a broker id held by another live address whose
stateVersion (its master epoch) is higher is not taken by the newcomer, so a deposed master
can never reclaim id 0. Every change of a broker name's master address is told to
``on_master_changed(broker_name)``.

Everything runs on the event loop thread, so there is no lock (Java's ReadWriteLock).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from ...protocol.register_body import RegisterBrokerBody
from ...protocol.route import MASTER_ID, BrokerData, QueueData, TopicRouteData
from ...protocol.topic_config import DataVersion, TopicConfig

log = logging.getLogger(__name__)

PERM_WRITE = 0x2  # PermName.PERM_WRITE


@dataclass(slots=True)
class BrokerLiveInfo:
    last_update_s: float  # on the manager's clock (monotonic by default)
    data_version: DataVersion
    channel: object | None  # the connection it registered on; compared by identity
    ha_server_addr: str


@dataclass(frozen=True, slots=True)
class RegisterBrokerResult:
    """Set only for a slave whose master is alive: where to replicate from."""

    ha_server_addr: str | None = None
    master_addr: str | None = None


class RouteInfoManager:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.on_master_changed: Callable[[str], None] = lambda broker_name: None
        self.topic_queue_table: dict[str, dict[str, QueueData]] = {}
        self.broker_addr_table: dict[str, BrokerData] = {}
        self.cluster_addr_table: dict[str, set[str]] = {}
        self.broker_live_table: dict[str, BrokerLiveInfo] = {}
        self.filter_server_table: dict[str, list[str]] = {}

    # -- registration ------------------------------------------------------------------------

    def register_broker(self, cluster_name: str, broker_addr: str, broker_name: str,
                        broker_id: int, ha_server_addr: str, body: RegisterBrokerBody,
                        channel: object | None = None) -> RegisterBrokerResult:
        """Add or refresh one broker address; a master's topics become queue data."""
        self.cluster_addr_table.setdefault(cluster_name, set()).add(broker_name)
        broker = self.broker_addr_table.get(broker_name)
        first = broker is None
        if broker is None:
            broker = BrokerData(cluster_name, broker_name, {})
            self.broker_addr_table[broker_name] = broker
        # One address, one id: a slave promoted to master drops its old <1, addr> entry.
        master_before = broker.broker_addrs.get(MASTER_ID)
        for old_id in [i for i, a in broker.broker_addrs.items()
                       if a == broker_addr and i != broker_id]:
            del broker.broker_addrs[old_id]
        old_addr = broker.broker_addrs.get(broker_id)
        if old_addr is not None and old_addr != broker_addr:
            holder = self.broker_live_table.get(old_addr)
            if holder is not None and \
                    holder.data_version.state_version > body.data_version.state_version:
                log.warning("cluster %s broker %s id %d: %s (stateVersion %d) is refused, %s "
                            "holds it at stateVersion %d", cluster_name, broker_name, broker_id,
                            broker_addr, body.data_version.state_version, old_addr,
                            holder.data_version.state_version)
                self.broker_live_table.pop(broker_addr, None)
                self._master_moved(broker_name, master_before)
                return RegisterBrokerResult()
        broker.broker_addrs[broker_id] = broker_addr
        first = first or old_addr is None
        if broker_id == MASTER_ID:
            if old_addr != broker_addr:
                log.info("cluster %s broker %s: master address %s -> %s",
                         cluster_name, broker_name, old_addr, broker_addr)
            if first or self._topic_config_changed(broker_addr, body.data_version):
                for tc in body.topic_configs.values():
                    self._update_queue_data(broker_name, tc)

        previous = self.broker_live_table.get(broker_addr)
        self.broker_live_table[broker_addr] = BrokerLiveInfo(
            self._clock(), body.data_version, channel, ha_server_addr)
        if previous is None:
            log.info("new broker registered: %s (%s/%s id %d), HA server %s",
                     broker_addr, cluster_name, broker_name, broker_id, ha_server_addr)

        if body.filter_server_list is not None:
            if body.filter_server_list:
                self.filter_server_table[broker_addr] = list(body.filter_server_list)
            else:
                self.filter_server_table.pop(broker_addr, None)

        self._master_moved(broker_name, master_before)
        if broker_id != MASTER_ID:
            master_addr = broker.broker_addrs.get(MASTER_ID)
            master = self.broker_live_table.get(master_addr) if master_addr else None
            if master is not None:
                return RegisterBrokerResult(master.ha_server_addr, master_addr)
        return RegisterBrokerResult()

    def _master_moved(self, broker_name: str, before: str | None) -> None:
        broker = self.broker_addr_table.get(broker_name)
        now = broker.broker_addrs.get(MASTER_ID) if broker is not None else None
        if now != before:
            self.on_master_changed(broker_name)

    def unregister_broker(self, cluster_name: str, broker_addr: str, broker_name: str,
                          broker_id: int) -> None:
        """The broker said goodbye (UNREGISTER_BROKER)."""
        live = self.broker_live_table.pop(broker_addr, None)
        self.filter_server_table.pop(broker_addr, None)
        log.info("unregister broker %s (%s/%s id %d): %s", broker_addr, cluster_name,
                 broker_name, broker_id, "was live" if live else "was not live")
        broker = self.broker_addr_table.get(broker_name)
        if broker is None:
            return
        if broker.broker_addrs.pop(broker_id, None) is not None and broker_id == MASTER_ID:
            self.on_master_changed(broker_name)
        if not broker.broker_addrs:
            del self.broker_addr_table[broker_name]
            names = self.cluster_addr_table.get(cluster_name)
            if names is not None:
                names.discard(broker_name)
                if not names:
                    del self.cluster_addr_table[cluster_name]
            self._remove_topics_of(broker_name)

    # -- liveness ----------------------------------------------------------------------------

    def scan_not_active_brokers(self, expire_s: float) -> list[BrokerLiveInfo]:
        """Drop every address whose last heartbeat is older than ``expire_s``.

        Returns the dropped entries so that the caller can close their connections, as Java's
        scanNotActiveBroker does.
        """
        deadline = self._clock() - expire_s
        expired = [(addr, info) for addr, info in self.broker_live_table.items()
                   if info.last_update_s < deadline]
        for addr, info in expired:
            log.warning("broker %s expired: no heartbeat for %.1fs", addr,
                        self._clock() - info.last_update_s)
            self._remove_broker_addr(addr)
        return [info for _addr, info in expired]

    def on_channel_destroy(self, channel: object) -> None:
        """A connection closed: forget the brokers that registered on it, at once.

        Java stops at the first match; a connection shared by several brokers (a proxy, a
        test) is as dead for all of them, so every match goes.
        """
        gone = [addr for addr, info in self.broker_live_table.items() if info.channel is channel]
        for addr in gone:
            log.info("connection of broker %s closed, removing its routes", addr)
            self._remove_broker_addr(addr)

    # -- queries -----------------------------------------------------------------------------

    def pickup_topic_route_data(self, topic: str) -> TopicRouteData | None:
        """The route of ``topic``, or None when no queue data or no broker data exists."""
        queues = self.topic_queue_table.get(topic)
        if not queues:
            return None
        brokers: list[BrokerData] = []
        filters: dict[str, list[str]] = {}
        for name in queues:
            broker = self.broker_addr_table.get(name)
            if broker is None:
                continue
            brokers.append(BrokerData(broker.cluster, broker.broker_name,
                                      dict(broker.broker_addrs)))
            for addr in broker.broker_addrs.values():
                if addr in self.filter_server_table:
                    filters[addr] = list(self.filter_server_table[addr])
        if not brokers:
            return None
        return TopicRouteData(tuple(queues.values()), tuple(brokers), filters)

    def touch(self, broker_addr: str) -> None:
        """Count a live broker's QUERY_DATA_VERSION as a heartbeat."""
        live = self.broker_live_table.get(broker_addr)
        if live is not None:
            live.last_update_s = self._clock()

    def topic_list(self) -> list[str]:
        return sorted(self.topic_queue_table)

    def topics_of_cluster(self, cluster: str) -> list[str]:
        """getTopicsByCluster: topics with queues on a broker of ``cluster``."""
        names = self.cluster_addr_table.get(cluster, set())
        return sorted(t for t, queues in self.topic_queue_table.items()
                      if any(b in names for b in queues))

    def system_topics(self) -> tuple[list[str], str | None]:
        """getSystemTopicList: the cluster and broker names (each a topic of its brokers)
        and the address of a master to ask about them."""
        topics = set(self.cluster_addr_table)
        for names in self.cluster_addr_table.values():
            topics |= names
        master = next((b.master_addr for b in self.broker_addr_table.values()
                       if b.master_addr), None)
        return sorted(topics), master

    def delete_topic(self, topic: str) -> bool:
        """deleteTopic: forget its queue data (every broker's); False if unknown."""
        return self.topic_queue_table.pop(topic, None) is not None

    def set_write_perm(self, broker_name: str, writable: bool) -> int:
        """operateWritePermOfBroker: clear (wipeWritePerm) or set (addWritePerm) PERM_WRITE on
        every topic of ``broker_name``; returns how many topics it touched. It lasts until
        the broker registers a changed topic set."""
        count = 0
        for queues in self.topic_queue_table.values():
            qd = queues.get(broker_name)
            if qd is None:
                continue
            perm = qd.perm | PERM_WRITE if writable else qd.perm & ~PERM_WRITE
            queues[broker_name] = dataclasses.replace(qd, perm=perm)
            count += 1
        log.info("%s write permission of broker %s on %d topics",
                 "added" if writable else "wiped", broker_name, count)
        return count

    def topic_config_version(self, broker_addr: str) -> DataVersion | None:
        live = self.broker_live_table.get(broker_addr)
        return live.data_version if live is not None else None

    # -- internals ---------------------------------------------------------------------------

    def _topic_config_changed(self, broker_addr: str, version: DataVersion) -> bool:
        return self.topic_config_version(broker_addr) != version

    def _update_queue_data(self, broker_name: str, tc: TopicConfig) -> None:
        qd = QueueData(broker_name, tc.read_queue_nums, tc.write_queue_nums, tc.perm,
                       tc.topic_sys_flag)
        queues = self.topic_queue_table.setdefault(tc.name, {})
        old = queues.get(broker_name)
        queues[broker_name] = qd
        if old is None:
            log.info("topic %s registered on %s: %s", tc.name, broker_name, qd)
        elif old != qd:
            log.info("topic %s changed on %s: %s -> %s", tc.name, broker_name, old, qd)

    def _remove_broker_addr(self, broker_addr: str) -> None:
        """RouteInfoManager.onChannelDestroy's cleanup, keyed by address."""
        self.broker_live_table.pop(broker_addr, None)
        self.filter_server_table.pop(broker_addr, None)
        for name, broker in list(self.broker_addr_table.items()):
            ids = [i for i, a in broker.broker_addrs.items() if a == broker_addr]
            if not ids:
                continue
            for i in ids:
                del broker.broker_addrs[i]
            if MASTER_ID in ids:
                self.on_master_changed(name)
            if not broker.broker_addrs:
                del self.broker_addr_table[name]
                for cluster, names in list(self.cluster_addr_table.items()):
                    if name in names:
                        names.discard(name)
                        if not names:
                            del self.cluster_addr_table[cluster]
                self._remove_topics_of(name)
            return

    def _remove_topics_of(self, broker_name: str) -> None:
        for topic, queues in list(self.topic_queue_table.items()):
            if queues.pop(broker_name, None) is not None:
                log.info("topic %s: queues of %s removed", topic, broker_name)
            if not queues:
                del self.topic_queue_table[topic]
