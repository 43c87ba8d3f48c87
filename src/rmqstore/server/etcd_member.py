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
it in the cluster); serve's stop ends it with SIGTERM, then SIGKILL after 5 s. A serve that was
killed leaves its member running (its controller's death does not shake etcd); the next serve
on that data directory adopts it (found by its command line, Linux) rather than start a second
one on the same ports. Its output goes to <data>/etcd.log.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import time
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
        self.pid: int | None = None
        self._process: asyncio.subprocess.Process | None = None  # None: adopted, or none
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        if shutil.which(self.config.binary) is None:
            raise ConfigError(f"{self.config.binary} not found: install etcd-server "
                              "(apt-get install etcd-server) or give --etcd-endpoints")
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        running = _running_member(self.config)
        if running is not None:
            self.pid = running
            log.info("etcd member %s already running (pid %d): adopted", self.config.name,
                     running)
        else:
            await self._spawn()
        self._task = asyncio.get_running_loop().create_task(self._supervise(),
                                                             name="etcd-member")

    async def _spawn(self) -> None:
        log_path = self.config.data_dir.parent / "etcd.log"
        with open(log_path, "ab") as out:
            self._process = await asyncio.create_subprocess_exec(
                *self.config.command(), stdout=out, stderr=out, stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True)  # not killed with serve's process group
        self.pid = self._process.pid
        log.info("etcd member %s started (pid %d, client %s)", self.config.name, self.pid,
                 self.config.me.client_url)

    async def _exited(self) -> object:
        """Until the member (spawned or adopted) is gone; its exit code if known."""
        if self._process is not None:
            return await self._process.wait()
        while self.pid is not None and _alive(self.pid):
            await asyncio.sleep(ADOPTED_POLL_S)
        return "unknown"

    async def _supervise(self) -> None:
        while not self._stopping:
            code = await self._exited()
            if self._stopping:
                return
            log.warning("etcd member %s exited (%s); starting it again in %.0f s",
                        self.config.name, code, RESTART_PAUSE_S)
            await asyncio.sleep(RESTART_PAUSE_S)
            if not self._stopping:
                await self._spawn()

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        pid = self.pid
        if pid is not None and _alive(pid):
            os.kill(pid, signal.SIGTERM)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + STOP_GRACE_S
            while _alive(pid) and loop.time() < deadline:
                if self._process is not None and self._process.returncode is None:
                    try:
                        await asyncio.wait_for(self._process.wait(), 0.1)
                    except TimeoutError:
                        pass
                else:
                    await asyncio.sleep(0.1)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        log.info("etcd member %s stopped", self.config.name)


ADOPTED_POLL_S = 0.5


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (our own child, not reaped yet) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] != "Z"
    except OSError:
        return True


def _members_under(root: Path, binary: str = "etcd") -> list[tuple[int, Path]]:
    """(pid, data dir) of every live etcd whose data directory is ``root`` or below (Linux)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if not args or Path(args[0].decode(errors="replace")).name != Path(binary).name or \
                b"--data-dir" not in args:
            continue
        data = Path(args[args.index(b"--data-dir") + 1].decode(errors="replace"))
        if (data == root or root in data.parents) and _alive(int(entry.name)):
            found.append((int(entry.name), data))
    return found


def _running_member(config: EtcdMemberConfig) -> int | None:
    """The pid of an etcd already serving ``config``'s data directory, or None."""
    for pid, data in _members_under(config.data_dir, config.binary):
        if data == config.data_dir:
            return pid
    return None


def stop_members_under(root: Path) -> int:
    """SIGTERM (SIGKILL after 5 s) every etcd whose data directory is under ``root``: what a
    killed serve left behind. Returns how many there were."""
    found = _members_under(root)
    for pid, _ in found:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for pid, _ in found:
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    return len(found)
