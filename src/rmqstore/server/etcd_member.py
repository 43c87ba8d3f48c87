"""A local etcd member, started and supervised by `rmqstore serve` for its controller (the
etcd binary from Debian's etcd-server package, 3.4; `apt-get install etcd-server`).

Its flags are derived from the cluster's peers, given once for every node:

    --etcd-peers n1=10.0.0.1:2379:2380,n2=10.0.0.2:2379:2380,n3=10.0.0.3:2379:2380
    --etcd-name n1

    etcd --name n1 --data-dir <data>/etcd
         --listen-client-urls http://10.0.0.1:2379 --advertise-client-urls http://10.0.0.1:2379
         --listen-peer-urls http://10.0.0.1:2380 --initial-advertise-peer-urls http://...:2380
         --initial-cluster n1=http://10.0.0.1:2380,n2=...,n3=... --initial-cluster-state new
         --initial-cluster-token rmqstore-<names joined>

A member that exits while serve runs is started again after a pause (its data directory keeps
it in the cluster); serve's stop ends it with SIGTERM, then SIGKILL after 5 s, and on Linux it
dies with serve (PR_SET_PDEATHSIG), so a killed serve leaves no member holding the ports of
the one its restart starts. Its output goes to <data>/etcd.log.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import shutil
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from .config_error import ConfigError

log = logging.getLogger(__name__)

RESTART_PAUSE_S = 1.0
STOP_GRACE_S = 5.0


@dataclass(frozen=True, slots=True)
class EtcdPeer:
    name: str
    host: str
    client_port: int
    peer_port: int

    @property
    def client_url(self) -> str:
        return f"http://{self.host}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{self.host}:{self.peer_port}"


def parse_peers(text: str) -> tuple[EtcdPeer, ...]:
    """"n1=host:client:peer,..." -> peers; ConfigError names what is wrong."""
    peers = []
    for item in text.split(","):
        name, sep, rest = item.strip().partition("=")
        parts = rest.rsplit(":", 2)
        if not sep or not name or len(parts) != 3 or not parts[1].isdigit() or \
                not parts[2].isdigit():
            raise ConfigError(f"--etcd-peers: {item.strip()!r} is not name=host:clientPort:"
                              "peerPort")
        peers.append(EtcdPeer(name, parts[0], int(parts[1]), int(parts[2])))
    if len({p.name for p in peers}) != len(peers):
        raise ConfigError("--etcd-peers: a name appears twice")
    return tuple(peers)


@dataclass(frozen=True, slots=True)
class EtcdMemberConfig:
    name: str
    peers: tuple[EtcdPeer, ...]
    data_dir: Path
    binary: str = "etcd"

    def __post_init__(self) -> None:
        if self.name not in {p.name for p in self.peers}:
            raise ConfigError(f"--etcd-name {self.name} is not one of --etcd-peers "
                              f"({', '.join(p.name for p in self.peers)})")

    @property
    def me(self) -> EtcdPeer:
        return next(p for p in self.peers if p.name == self.name)

    @property
    def endpoints(self) -> str:
        """Every member's client address for the controller's client, its own member first
        (so that one member's death troubles one controller)."""
        peers = sorted(self.peers, key=lambda p: p.name != self.name)
        return ",".join(f"{p.host}:{p.client_port}" for p in peers)

    def command(self) -> list[str]:
        me = self.me
        return [self.binary, "--name", me.name, "--data-dir", str(self.data_dir),
                "--listen-client-urls", me.client_url, "--advertise-client-urls", me.client_url,
                "--listen-peer-urls", me.peer_url, "--initial-advertise-peer-urls", me.peer_url,
                "--initial-cluster", ",".join(f"{p.name}={p.peer_url}" for p in self.peers),
                "--initial-cluster-state", "new",
                "--initial-cluster-token", "rmqstore-" + "-".join(p.name for p in self.peers)]


class EtcdMember:
    """Start with ``await start()``; ``await stop()`` ends it and its supervision."""

    def __init__(self, config: EtcdMemberConfig) -> None:
        self.config = config
        self._process: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def start(self) -> None:
        if shutil.which(self.config.binary) is None:
            raise ConfigError(f"{self.config.binary} not found: install etcd-server "
                              "(apt-get install etcd-server) or give --etcd-endpoints")
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        await self._spawn()
        self._task = asyncio.get_running_loop().create_task(self._supervise(),
                                                             name="etcd-member")

    async def _spawn(self) -> None:
        log_path = self.config.data_dir.parent / "etcd.log"
        with open(log_path, "ab") as out:
            self._process = await asyncio.create_subprocess_exec(
                *self.config.command(), stdout=out, stderr=out, stdin=asyncio.subprocess.DEVNULL,
                preexec_fn=_die_with_parent)
        log.info("etcd member %s started (pid %d, client %s)", self.config.name,
                 self._process.pid, self.config.me.client_url)

    async def _supervise(self) -> None:
        while not self._stopping:
            assert self._process is not None
            code = await self._process.wait()
            if self._stopping:
                return
            log.warning("etcd member %s exited (%s); starting it again in %.0f s",
                        self.config.name, code, RESTART_PAUSE_S)
            await asyncio.sleep(RESTART_PAUSE_S)
            if not self._stopping:
                await self._spawn()

    async def stop(self) -> None:
        self._stopping = True
        process = self._process
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_GRACE_S)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        log.info("etcd member %s stopped", self.config.name)


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL when serve dies, however it dies."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
