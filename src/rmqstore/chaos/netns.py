"""Network namespaces for a chaos run (root only): one per node, each with one address on a
bridge this run made, so that faults can cut and slow real links with iptables and tc
(iproute2 and iptables from Debian), as OpenMessaging Chaos' NetUtil does on its hosts
(its netem is missing from this kernel: a slow link is an htb class).

    bridge  rq<tag>br   10.<a>.<b>.254/24     (this process reaches every node through it)
    node i  rq<tag>n<i> 10.<a>.<b>.<i+1>/24   veth rq<tag>p<i> in the namespace, rq<tag>v<i>
                                              on the bridge

Traffic goes only to addresses inside namespaces this run created. ``destroy`` removes all of
it (the namespaces take their veths with them).
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import shutil
import subprocess

log = logging.getLogger(__name__)

TOOLS = ("ip", "iptables", "tc")


def available() -> str | None:
    """None when namespaces can be made here, else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        return f"missing {', '.join(missing)} (apt-get install iproute2 iptables)"
    return None


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=10)


class Namespaces:
    def __init__(self, nodes: int) -> None:
        tag = secrets.token_hex(2)
        self.bridge = f"rq{tag}br"
        net = f"10.{random.randrange(200, 250)}.{random.randrange(0, 255)}"
        self.cidr = f"{net}.0/24"
        self.host_ip = f"{net}.254"
        self.names = [f"rq{tag}n{i}" for i in range(nodes)]
        self.ips = [f"{net}.{i + 1}" for i in range(nodes)]
        self._inner = [f"rq{tag}p{i}" for i in range(nodes)]
        self._outer = [f"rq{tag}v{i}" for i in range(nodes)]
        self.created = False

    def create(self) -> None:
        try:
            _run("ip", "link", "add", self.bridge, "type", "bridge")
            self.created = True
            _run("ip", "addr", "add", f"{self.host_ip}/24", "dev", self.bridge)
            _run("ip", "link", "set", self.bridge, "up")
            for ns, ip, inner, outer in zip(self.names, self.ips, self._inner, self._outer,
                                            strict=True):
                _run("ip", "netns", "add", ns)
                _run("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
                _run("ip", "link", "set", inner, "netns", ns)
                _run("ip", "link", "set", outer, "master", self.bridge)
                _run("ip", "link", "set", outer, "up")
                self.exec(ns, "ip", "addr", "add", f"{ip}/24", "dev", inner)
                self.exec(ns, "ip", "link", "set", inner, "up")
                self.exec(ns, "ip", "link", "set", "lo", "up")
        except BaseException:
            self.destroy()
            raise
        log.info("namespaces %s on %s (%s)", self.names, self.bridge, self.cidr)

    def destroy(self) -> None:
        for ns in self.names:
            _run("ip", "netns", "del", ns, check=False)
        if self.created:
            _run("ip", "link", "del", self.bridge, check=False)
            self.created = False

    def prefix(self, i: int) -> list[str]:
        return ["ip", "netns", "exec", self.names[i]]

    @staticmethod
    def exec(ns: str, *cmd: str) -> None:
        _run("ip", "netns", "exec", ns, *cmd)

    # -- faults ------------------------------------------------------------------------------
    def isolate(self, i: int) -> None:
        """Node i reaches nobody and nobody reaches it (its own processes still talk on lo)."""
        ns, dev = self.names[i], self._inner[i]
        self.exec(ns, "iptables", "-A", "INPUT", "-i", dev, "-j", "DROP")
        self.exec(ns, "iptables", "-A", "OUTPUT", "-o", dev, "-j", "DROP")

    def cut_port(self, i: int, port: int) -> None:
        """Node i's processes reach no TCP port ``port`` anywhere (its own included): a broker
        cut from every controller, whose requests go to that port."""
        self.exec(self.names[i], "iptables", "-A", "OUTPUT", "-p", "tcp", "--dport", str(port),
                  "-j", "DROP")

    def slow(self, i: int, port: int, rate: str = "16kbit") -> None:
        """What reaches node i from TCP port ``port`` (a master's HA port) limited to ``rate``,
        the rest untouched (htb with a u32 filter on the bridge's side of its veth; this
        kernel has no netem or prio): a slave's replication falls behind its master's writes,
        while its heartbeats and its etcd member's traffic flow as before."""
        dev = self._outer[i]
        _run("tc", "qdisc", "del", "dev", dev, "root", check=False)  # an earlier one, healed
        _run("tc", "qdisc", "add", "dev", dev, "root", "handle", "1:", "htb", "default", "10")
        _run("tc", "class", "add", "dev", dev, "parent", "1:", "classid", "1:10", "htb",
             "rate", "10gbit")
        _run("tc", "class", "add", "dev", dev, "parent", "1:", "classid", "1:20", "htb",
             "rate", rate, "ceil", rate)
        _run("tc", "filter", "add", "dev", dev, "protocol", "ip", "parent", "1:", "prio", "1",
             "u32", "match", "ip", "sport", str(port), "0xffff", "flowid", "1:20")

    def heal(self, i: int) -> None:
        """Rules flushed; a slowed class opened up rather than removed, so that what it holds
        is delivered at once, not dropped and left to TCP's backed-off retransmission."""
        ns = self.names[i]
        _run("ip", "netns", "exec", ns, "iptables", "-F", check=False)
        _run("tc", "class", "change", "dev", self._outer[i], "parent", "1:", "classid", "1:20",
             "htb", "rate", "10gbit", check=False)
