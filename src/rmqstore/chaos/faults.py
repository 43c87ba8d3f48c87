"""The faults of a chaos run, on a LocalCluster (OpenMessaging Chaos' fault list, RIP-44's
weak spots): each picks its target when injected, and heals what it did.

    kill-master / kill-slave      SIGKILL the broker; heal: start it again (it rejoins as a
                                  slave and cuts what its new master never had)
    stop-master / stop-slave      SIGSTOP the broker; heal: SIGCONT
    kill-etcd-leader              SIGKILL the etcd leader; heal: its serve starts it again
    kill-controller               SIGKILL the active controller's NameServer (and its etcd
                                  member); heal: start it again
    partition-master              the master's node cut from everyone (namespaces: iptables)
    partition-master-controller   the master cut from every controller (its port), nothing else
    slow-slave                    its master's HA traffic to a slave limited (tc htb), so it
                                  leaves the in-sync set;
                                  heal: the limit goes, it catches up and returns

Partitions and the slow link need network namespaces (root); without them those faults are
refused (NotAvailable), and the runner says so.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from ..protocol import RequestCode
from ..server.cluster import LocalCluster, Node
from ..server.testing import ServeError, call
from .netns import Namespaces

KINDS = ("kill-master", "stop-master", "kill-slave", "stop-slave", "kill-etcd-leader",
         "kill-controller", "partition-master", "partition-master-controller", "slow-slave")
NEEDS_NAMESPACES = frozenset({"partition-master", "partition-master-controller", "slow-slave"})
MASTER_FAULTS = frozenset({"kill-master", "stop-master", "partition-master",
                           "partition-master-controller"})


class NotAvailable(Exception):
    """The fault cannot be made here (no namespaces, no such target)."""


class Injected:
    """One fault in force; heal() undoes it."""

    def __init__(self, kind: str, cluster: LocalCluster, namespaces: Namespaces | None,
                 rng: random.Random) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {', '.join(KINDS)}")
        if kind in NEEDS_NAMESPACES and namespaces is None:
            raise NotAvailable(f"{kind} needs network namespaces (root, iproute2, iptables)")
        self.kind = kind
        self._cluster = cluster
        self._ns = namespaces
        self._rng = rng
        self.node: Node | None = None
        self.target = ""
        self.injected_at = 0.0  # wall clock, the moment before the fault's action

    def inject(self) -> None:
        c, kind = self._cluster, self.kind
        if "master" in kind:
            self.node = c.node_of(c.wait_master(10.0))
        elif kind.endswith("slave"):
            master = c.wait_master(10.0)
            self.node = self._rng.choice([n for n in c.nodes if n.broker_addr != master])
        elif kind == "kill-etcd-leader":
            self.node = etcd_leader(c)
        else:
            self.node = active_controller(c)
        self.target = self.node.broker_addr if "master" in kind or "slave" in kind \
            else self.node.name
        self.injected_at = time.time()
        _ACTIONS[kind][0](self.node, self._ns)

    def heal(self) -> None:
        assert self.node is not None
        _ACTIONS[self.kind][1](self.node, self._ns)


def _kill_etcd(node: Node, _ns: Namespaces | None) -> None:
    os.kill(etcd_pid(node), signal.SIGKILL)  # its serve starts it again within a second


def _nothing(_node: Node, _ns: Namespaces | None) -> None:
    pass


Action = Callable[[Node, "Namespaces | None"], None]
# kind -> (inject, heal); a namespaces fault is never made without them (checked above)
_ACTIONS: dict[str, tuple[Action, Action]] = {
    "kill-master": (lambda n, _: n.broker.kill(), lambda n, _: n.broker.start()),
    "kill-slave": (lambda n, _: n.broker.kill(), lambda n, _: n.broker.start()),
    # pause() returns once every thread is stopped, so the fault's time counts from there
    "stop-master": (lambda n, _: n.broker.pause(), lambda n, _: n.broker.resume()),
    "stop-slave": (lambda n, _: n.broker.pause(), lambda n, _: n.broker.resume()),
    "kill-etcd-leader": (_kill_etcd, _nothing),
    "kill-controller": (lambda n, _: n.namesrv.kill(), lambda n, _: n.namesrv.start()),
    "partition-master": (lambda n, ns: ns.isolate(n.index), lambda n, ns: ns.heal(n.index)),
    "partition-master-controller": (lambda n, ns: ns.cut_port(n.index, n.ports.namesrv),
                                    lambda n, ns: ns.heal(n.index)),
    # its master's HA traffic to it (every node's HA port is the same)
    "slow-slave": (lambda n, ns: ns.slow(n.index, n.ports.ha), lambda n, ns: ns.heal(n.index)),
}


def etcd_status(node: Node) -> dict | None:
    req = urllib.request.Request(f"http://{node.host}:{node.ports.etcd_client}"
                                 "/v3/maintenance/status", data=b"{}", method="POST")
    try:
        with urllib.request.urlopen(req, timeout=1.0) as answer:
            return json.loads(answer.read())
    except OSError:
        return None


def etcd_leader(cluster: LocalCluster) -> Node:
    statuses = {n.index: etcd_status(n) for n in cluster.nodes}
    for n in cluster.nodes:
        s = statuses[n.index]
        if s is None:
            continue
        for m in cluster.nodes:
            t = statuses[m.index]
            if t is not None and t["header"]["member_id"] == s.get("leader"):
                return m
    raise NotAvailable("no etcd leader found")


def etcd_pid(node: Node) -> int:
    """The etcd process serving ``node`` (its data directory names it)."""
    marker = str(node.root / "ns" / "etcd").encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if cmdline.startswith(b"etcd\0") and marker in cmdline:
            return int(entry.name)
    raise NotAvailable(f"no etcd process of {node.name}")


def active_controller(cluster: LocalCluster) -> Node:
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        found = active_controller_now(cluster)
        if found is not None:
            return found
        time.sleep(0.1)
    raise NotAvailable("no active controller found")


def active_controller_now(cluster: LocalCluster, besides: Node | None = None) -> Node | None:
    """The node whose controller says it is active (asked once each), other than ``besides``."""
    for n in cluster.nodes:
        if n is besides or n.namesrv is None or not n.namesrv.running:
            continue
        try:
            r = call(n.namesrv_addr, RequestCode.CONTROLLER_GET_METADATA_INFO, timeout_s=1.0)
        except (OSError, ServeError):
            continue
        if r.ext_fields.get("isLeader") == "true":
            return n
    return None
