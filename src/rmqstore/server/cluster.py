"""A controller-mode cluster on one machine, for development and tests (`rmqstore cluster up`):
n nodes on loopback ports, each with

    a NameServer with the controller, and the etcd member it starts and supervises
        rmqstore serve --role namesrv --etcd-peers <all> --etcd-name n<i>
    a broker of one broker set, whose role the controller decides
        rmqstore serve --role broker -c <dir>/n<i>/broker.conf  (enableControllerMode=true)

as separate processes, so a test can kill, stop or cut off any one of them. Ports are
``base + 10 i + k`` (k: 0 NameServer, 1 broker, 2 its HA port, 3 etcd client, 4 etcd peer),
or any free ones; with ``hosts`` (one address per node, e.g. network namespaces) every node
takes the same ports on its own address, and ``prefixes`` run its processes there
(``ip netns exec``). Every wait is bounded.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ..protocol import RequestCode
from .etcd_member import stop_members_under
from .testing import SMALL_STORE_ARGS, ServeError, ServeProcess, call, free_broker_port, free_port

MASTER_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class NodePorts:
    namesrv: int
    broker: int
    ha: int
    etcd_client: int
    etcd_peer: int


def node_ports(count: int, base: int | None) -> list[NodePorts]:
    if base is not None:
        return [NodePorts(base + 10 * i, base + 10 * i + 1, base + 10 * i + 2,
                          base + 10 * i + 3, base + 10 * i + 4) for i in range(count)]
    out = []
    for _ in range(count):
        broker = free_broker_port()
        out.append(NodePorts(free_port(), broker, broker + 1, free_port(), free_port()))
    return out


class Node:
    def __init__(self, index: int, root: Path, ports: NodePorts, host: str = "127.0.0.1",
                 prefix: Sequence[str] = ()) -> None:
        self.index = index
        self.name = f"n{index}"
        self.root = root / self.name
        self.ports = ports
        self.host = host
        self.prefix = list(prefix)
        self.namesrv_addr = f"{host}:{ports.namesrv}"
        self.broker_addr = f"{host}:{ports.broker}"
        self.ha_addr = f"{host}:{ports.ha}"
        self.namesrv: ServeProcess | None = None
        self.broker: ServeProcess | None = None

    @property
    def store(self) -> Path:
        return self.root / "store"


class LocalCluster:
    def __init__(self, root: Path, nodes: int = 3, base_port: int | None = None,
                 broker_name: str = "broker-a", cluster: str = "c1",
                 store_args: Sequence[str] = SMALL_STORE_ARGS, verbose: bool = True,
                 broker_settings: dict[str, str] | None = None,
                 namesrv_settings: dict[str, str] | None = None,
                 hosts: Sequence[str] | None = None,
                 prefixes: Sequence[Sequence[str]] | None = None) -> None:
        """broker_settings / namesrv_settings: more broker.conf / namesrv.conf keys."""
        self.root = Path(root)
        self.broker_name = broker_name
        self.cluster = cluster
        if hosts is not None:  # one address each: the same ports everywhere
            ports = node_ports(1, base_port or 19876)[0]
            self.nodes = [Node(i, self.root, ports, h, prefixes[i] if prefixes else ())
                          for i, h in enumerate(hosts)]
        else:
            self.nodes = [Node(i, self.root, p)
                          for i, p in enumerate(node_ports(nodes, base_port))]
        self._drawn = base_port is None and hosts is None  # ports free_port() chose
        self._store_args = list(store_args)
        self._verbose = verbose
        self._broker_settings = dict(broker_settings or {})
        self._namesrv_settings = dict(namesrv_settings or {})

    @property
    def namesrv_addrs(self) -> str:
        return ";".join(n.namesrv_addr for n in self.nodes)

    @property
    def etcd_peers(self) -> str:
        return ",".join(f"{n.name}={n.host}:{n.ports.etcd_client}:{n.ports.etcd_peer}"
                        for n in self.nodes)

    def namesrv_process(self, node: Node) -> ServeProcess:
        node.root.mkdir(parents=True, exist_ok=True)
        conf = node.root / "namesrv.conf"
        conf.write_text("".join(f"{k}={v}\n" for k, v in {
            "enableControllerInNamesrv": "true", **self._namesrv_settings}.items()))
        return ServeProcess(["--role", "namesrv", "--host", node.host,
                             "--namesrv-port", str(node.ports.namesrv),
                             "--http-port", "0", "--data", str(node.root / "ns"),
                             "--namesrv-config", str(conf), "--etcd-peers", self.etcd_peers,
                             "--etcd-name", node.name], node.root / "namesrv.log",
                            store_args=(), verbose=self._verbose, drop_env=("NAMESRV_ADDR",),
                            prefix=node.prefix)

    def broker_process(self, node: Node) -> ServeProcess:
        node.root.mkdir(parents=True, exist_ok=True)
        conf = node.root / "broker.conf"
        settings = {
            "brokerClusterName": self.cluster, "brokerName": self.broker_name,
            "brokerIP1": node.host, "listenPort": str(node.ports.broker),
            "haListenPort": str(node.ports.ha), "storePathRootDir": str(node.store),
            "namesrvAddr": self.namesrv_addrs, "enableControllerMode": "true",
            "controllerAddr": self.namesrv_addrs, **self._broker_settings}
        conf.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        return ServeProcess(["--role", "broker", "-c", str(conf)], node.root / "broker.log",
                            store_args=self._store_args, verbose=self._verbose,
                            drop_env=("NAMESRV_ADDR",), prefix=node.prefix)

    def start(self) -> None:
        """Every NameServer (etcd members with them), then every broker; returns once a
        master is elected and registered."""
        try:
            for node in self.nodes:
                node.namesrv = self.namesrv_process(node).start()
            for node in self.nodes:
                node.broker = self._start_broker(node)
            self.wait_master()
        except BaseException:
            self.stop()
            raise

    def _start_broker(self, node: Node) -> ServeProcess:
        """The node's broker; drawn ports that another process took between the draw and the
        bind (nothing reserves them meanwhile) are drawn again, once."""
        try:
            return self.broker_process(node).start()
        except ServeError as e:
            if not self._drawn or "port is in use" not in str(e):
                raise
        broker = free_broker_port()
        node.ports = replace(node.ports, broker=broker, ha=broker + 1)
        node.broker_addr, node.ha_addr = f"{node.host}:{broker}", f"{node.host}:{broker + 1}"
        return self.broker_process(node).start()

    def stop(self) -> None:
        """Brokers first, then NameServers (and their etcd members)."""
        procs = [n.broker for n in self.nodes] + [n.namesrv for n in self.nodes]
        for proc in procs:
            if proc is not None and proc.running:  # a stopped process cannot take SIGTERM
                proc.signal(signal.SIGCONT)
        for proc in procs:
            if proc is not None:
                proc.stop()
        stop_members_under(self.root)  # members a killed NameServer left running

    # -- what the cluster says ---------------------------------------------------------------
    def brokers_by_id(self, namesrv: str | None = None) -> dict[int, str]:
        """brokerAddrs of the broker set as a NameServer has them ({} if it cannot say)."""
        addr = namesrv or self.nodes[0].namesrv_addr
        try:
            r = call(addr, RequestCode.GET_BROKER_CLUSTER_INFO, timeout_s=2.0)
        except (OSError, ServeError):
            return {}
        if r.code != 0:
            return {}
        table = json.loads(r.body).get("brokerAddrTable", {})
        data = table.get(self.broker_name) or {}
        return {int(k): v for k, v in (data.get("brokerAddrs") or {}).items()}

    def master(self, namesrv: str | None = None) -> str | None:
        """The master's broker address as a NameServer has it (None: none registered)."""
        return self.brokers_by_id(namesrv).get(0)

    def wait_master(self, timeout_s: float = MASTER_TIMEOUT_S,
                    not_addr: str | None = None) -> str:
        """Until some NameServer names a master (other than ``not_addr``)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for node in self.nodes:
                if node.namesrv is None or not node.namesrv.running:
                    continue
                found = self.master(node.namesrv_addr)
                if found is not None and found != not_addr:
                    return found
            time.sleep(0.05)
        raise ServeError(f"no master{' other than ' + not_addr if not_addr else ''} "
                         f"within {timeout_s} s")

    def node_of(self, broker_addr: str) -> Node:
        return next(n for n in self.nodes if n.broker_addr == broker_addr)
