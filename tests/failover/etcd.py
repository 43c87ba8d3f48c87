"""A real etcd cluster for tests: n members of Debian's etcd 3.4 on free loopback ports, each its
own process (flags from rmqstore's EtcdMemberConfig), so a test can SIGKILL or SIGSTOP any of
them and find the leader through etcd's HTTP gateway. Every wait is bounded."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from rmqstore.server.etcd_member import EtcdMemberConfig, EtcdPeer
from rmqstore.server.testing import free_port
from tests.prerequisites import missing

START_TIMEOUT_S = 15.0


def need_etcd() -> None:
    if shutil.which("etcd") is None:
        missing("etcd (Debian's etcd-server: apt-get install etcd-server)")


class EtcdCluster:
    def __init__(self, root: Path, n: int = 3) -> None:
        need_etcd()
        self.root = root
        self.peers = tuple(EtcdPeer(f"e{i}", "127.0.0.1", free_port(), free_port())
                           for i in range(n))
        self.procs: list[subprocess.Popen | None] = [None] * n

    @property
    def endpoints(self) -> str:
        return ",".join(f"{p.host}:{p.client_port}" for p in self.peers)

    def config(self, i: int) -> EtcdMemberConfig:
        return EtcdMemberConfig(self.peers[i].name, self.peers, self.root / f"e{i}" / "etcd")

    def start(self, i: int | None = None) -> None:
        for k in range(len(self.peers)) if i is None else [i]:
            cfg = self.config(k)
            cfg.data_dir.mkdir(parents=True, exist_ok=True)
            with open(cfg.data_dir.parent / "etcd.log", "ab") as out:
                self.procs[k] = subprocess.Popen(cfg.command(), stdout=out, stderr=out,
                                                 stdin=subprocess.DEVNULL)
        self.wait_healthy()

    def wait_healthy(self, timeout_s: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.leader() is not None:
                return
            time.sleep(0.1)
        raise AssertionError(f"etcd cluster not healthy within {timeout_s} s")

    def status(self, i: int) -> dict | None:
        peer = self.peers[i]
        req = urllib.request.Request(f"{peer.client_url}/v3/maintenance/status", data=b"{}",
                                     method="POST")
        try:
            with urllib.request.urlopen(req, timeout=0.5) as answer:
                return json.loads(answer.read())
        except OSError:
            return None

    def leader(self) -> int | None:
        """Index of the member that is leader, as a live member reports it."""
        for i in range(len(self.peers)):
            s = self.status(i) if self.alive(i) else None
            if s and s.get("leader") and s["leader"] != "0":
                for k in range(len(self.peers)):
                    t = self.status(k) if self.alive(k) else None
                    if t and t["header"]["member_id"] == s["leader"]:
                        return k
        return None

    def alive(self, i: int) -> bool:
        p = self.procs[i]
        return p is not None and p.poll() is None

    def kill(self, i: int) -> None:
        p = self.procs[i]
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGCONT)
            p.kill()
            p.wait(5)

    def pause(self, i: int, paused: bool) -> None:
        p = self.procs[i]
        if p is not None and p.poll() is None:
            os.kill(p.pid, signal.SIGSTOP if paused else signal.SIGCONT)

    def stop(self) -> None:
        for i, p in enumerate(self.procs):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
            self.procs[i] = None
        shutil.rmtree(self.root, ignore_errors=True)
