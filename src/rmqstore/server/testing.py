"""Run `rmqstore serve` as a child process for integration tests — ours and yours.

A real NameServer + Broker on free loopback ports, started the way a user starts it
(`python -m rmqstore.cli serve ...`), so that a test exercises the same sockets, codec and
store as production. Every wait here is bounded; every failure carries the tail of the log.

    import tempfile
    from pathlib import Path
    from rmqstore.server.testing import (
        ServeProcess, call, create_topic, free_broker_port, free_port, route, wait_until)

    tmp = Path(tempfile.mkdtemp())
    ns, broker = free_port(), free_broker_port()
    with ServeProcess(["--data", str(tmp / "data"), "--namesrv-port", str(ns),
                       "--broker-port", str(broker), "--http-port", "0"],
                      tmp / "serve.log") as serve:
        create_topic(f"127.0.0.1:{broker}", "Orders")
        wait_until(lambda: route(f"127.0.0.1:{ns}", "Orders"), 10, what="route of Orders")
        ...  # point any RocketMQ 4.x client at 127.0.0.1:{ns}

`SMALL_STORE_ARGS` (the default `store_args`) keeps each broker's files to tens of MB; pass
`store_args=()` to measure with RocketMQ's default sizes. `call` is a blocking one-shot remoting
request (what mqadmin does), for admin steps and assertions outside any client.
"""

from __future__ import annotations

import collections
import fcntl
import itertools
import json
import logging
import os
import random
import re
import signal as signals
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

from ..protocol import FrameDecoder, RemotingCommand, RequestCode, encode
from ..protocol.acl_signature import Credentials, sign_request

__all__ = [
    "READY_PREFIX",
    "SMALL_STORE_ARGS",
    "ServeError",
    "ServeProcess",
    "call",
    "create_topic",
    "free_broker_port",
    "free_port",
    "free_port_block",
    "max_offset",
    "route",
    "wait_until",
]

log = logging.getLogger(__name__)

READY_PREFIX = "rmqstore serve:"  # the line `serve` writes to stderr once it listens
# A default store reserves a 1 GiB CommitLog segment (and pre-makes the next) and a 420 MB index
# file per broker: gigabytes of disk across a test run. These keep a broker to tens of MB.
SMALL_STORE_ARGS: tuple[str, ...] = (
    "--store", "commitlog_segment_bytes=16777216", "--store", "consumequeue_units=30000",
    "--store", "index_slots=40000", "--store", "index_entries=160000")
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 15.0
LOG_TAIL = 4000  # characters of the log quoted in errors

T = TypeVar("T")


class ServeError(RuntimeError):
    """`rmqstore serve` did not start, did not stop on SIGTERM, or a call got no answer."""


# Test servers take ports below Linux's ephemeral range (32768-60999 by default): a run that
# opens tens of thousands of client connections leaves them in TIME_WAIT there, and a port the
# OS hands out for "any free port" would then rarely have its neighbour free.
TEST_PORTS = (20000, 32000)
# Each process that draws ports claims a slice of TEST_PORTS no other process on this machine
# holds (a flock per slice, released when the process dies): test runs side by side (xdist
# workers, other checkouts' runs) then never draw the same port in one another's window
# between the draw and the server's bind.
SLICE_WIDTH = 600
SLICE_LOCKS = Path(tempfile.gettempdir()) / "rmqstore-test-ports"

_slice: tuple[int, int] | None = None
_slice_fd: int | None = None  # the held lock (not inherited: os.open is close-on-exec)


def _test_ports() -> tuple[int, int]:
    """The range free ports are drawn from: RMQSTORE_TEST_PORTS="LOW-HIGH" if set, else a
    slice of TEST_PORTS claimed by this process."""
    spec = os.environ.get("RMQSTORE_TEST_PORTS")
    if spec:
        low, _, high = spec.partition("-")
        return int(low), int(high)
    return _claim_slice()


def _claim_slice() -> tuple[int, int]:
    """The first slice whose lock this process gets (tried from a pid-chosen one on); all of
    TEST_PORTS, with a warning, when every slice is held or locks cannot be taken."""
    global _slice, _slice_fd
    if _slice is not None:
        return _slice
    low, high = TEST_PORTS
    count = (high - low) // SLICE_WIDTH
    try:
        SLICE_LOCKS.mkdir(mode=0o777, exist_ok=True)
        for k in range(count):
            index = (os.getpid() + k) % count
            fd = os.open(SLICE_LOCKS / f"{index}.lock", os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            _slice_fd, _slice = fd, (low + index * SLICE_WIDTH, low + (index + 1) * SLICE_WIDTH)
            return _slice
        log.warning("every test port slice under %s is held: drawing from all of %s",
                    SLICE_LOCKS, TEST_PORTS)
    except OSError as e:
        log.warning("cannot lock a test port slice (%s): drawing from all of %s", e, TEST_PORTS)
    _slice = TEST_PORTS
    return _slice


# Ports handed out lately: a test draws several before it starts anything, and two draws of
# one free port (nothing binds it in between) would give a server its own NameServer's port.
# Far fewer than a slice holds, so that a neighbouring free pair stays easy to find.
_handed_out: collections.deque[int] = collections.deque(maxlen=128)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now and not handed out lately by this process
    (another process may still take it later)."""
    for _ in range(100):
        port = random.randrange(*_test_ports())
        if port not in _handed_out and _bindable(host, port):
            _handed_out.append(port)
            return port
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_broker_port(host: str = "127.0.0.1", attempts: int = 200) -> int:
    """A port p with p+1 free too: the broker's HA port defaults to listenPort + 1."""
    for _ in range(attempts):
        low, high = _test_ports()
        p = random.randrange(low, high - 1)
        if p not in _handed_out and p + 1 not in _handed_out and _bindable(host, p) \
                and _bindable(host, p + 1):
            _handed_out.extend((p, p + 1))
            return p
    raise ServeError(f"no free port pair on {host} in {attempts} attempts")


def free_port_block(count: int, host: str = "127.0.0.1", attempts: int = 200) -> int:
    """The first of ``count`` consecutive free ports (``rmqstore cluster up --base-port``)."""
    for _ in range(attempts):
        low, high = _test_ports()
        base = random.randrange(low, high - count + 1)
        block = range(base, base + count)
        if not any(p in _handed_out for p in block) and all(_bindable(host, p) for p in block):
            _handed_out.extend(block)
            return base
    raise ServeError(f"no {count} consecutive free ports on {host} in {attempts} attempts")


def _bindable(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def wait_until(predicate: Callable[[], T], timeout_s: float, interval_s: float = 0.05,
               what: str = "condition") -> T:
    """Poll ``predicate`` until it returns something truthy (returned); AssertionError after
    ``timeout_s``. Blocking; for asyncio code poll with ``asyncio.sleep`` instead."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)


def _all_threads_stopped(pid: int) -> bool:
    """Every thread of ``pid`` in state T (stopped) per /proc (Linux); a thread that exits
    meanwhile runs nothing."""
    tasks = Path(f"/proc/{pid}/task")
    for task in tasks.iterdir():
        try:
            stat = (task / "stat").read_text()
        except FileNotFoundError:
            continue
        if stat[stat.rindex(")") + 2] not in "Tt":  # the state follows "(comm) "
            return False
    return True


class ServeProcess:
    """One `python -m rmqstore.cli serve ARGS` child; stdout and stderr go to ``log_path``.

    ``start`` (again after ``stop``/``kill`` to restart; ``args`` may be edited in between)
    appends to the log and waits for a ready line written by this start. ``stop`` never raises;
    ``terminate`` raises if SIGTERM is ignored, for tests that assert a clean shutdown.
    """

    def __init__(self, args: Sequence[str], log_path: Path, *,
                 store_args: Sequence[str] = SMALL_STORE_ARGS, verbose: bool = False,
                 env: Mapping[str, str] | None = None, drop_env: Iterable[str] = (),
                 start_timeout_s: float = START_TIMEOUT_S,
                 stop_timeout_s: float = STOP_TIMEOUT_S, cwd: Path | None = None,
                 metrics_port: int | None = 0, prefix: Sequence[str] = ()) -> None:
        """metrics_port: the broker's HTTP port (/metrics, dashboard) as --metrics-port, any
        free one by default so that servers side by side never fight over 5557; None leaves
        it to the config. cwd: where relative paths (the default --data) resolve. prefix: what
        runs serve (e.g. ``ip netns exec NS``, which execs it: same pid)."""
        self.prefix = list(prefix)
        self.args = list(args)
        self.metrics_port = metrics_port
        self.log_path = Path(log_path)
        self.store_args = list(store_args)
        self.verbose = verbose  # `rmqstore -v`: INFO logging into the log file
        self.env = dict(os.environ if env is None else env)
        for name in drop_env:
            self.env.pop(name, None)
        self.cwd = cwd  # where relative paths (the default --data) resolve
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready_line = ""

    def command(self) -> list[str]:
        http = [] if self.metrics_port is None else ["--metrics-port", str(self.metrics_port)]
        return [*self.prefix, sys.executable, "-m", "rmqstore.cli",
                *(["-v"] if self.verbose else []), "serve", *self.args, *http,
                *self.store_args]

    @property
    def http_url(self) -> str | None:
        """http://host:port of the broker's HTTP port (/metrics, dashboard), read from the
        ready line; None when it is off or the server has not started."""
        found = re.search(r" http (\S+):(\d+)", self.ready_line)
        return f"http://{found[1]}:{found[2]}" if found else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def start(self) -> Self:
        """Start and wait for the ready line; ServeError (process killed) if none comes."""
        if self.running:
            raise ServeError(f"rmqstore serve {self.args} is already running")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:  # the child keeps its own descriptor
            start_at = out.tell()
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=out, env=self.env, cwd=self.cwd)
        self.ready_line = self._wait_ready(start_at)
        log.debug("started pid %d: %s", self.proc.pid, self.ready_line)
        return self

    def _wait_ready(self, start_at: int) -> str:
        assert self.proc is not None
        deadline = time.monotonic() + self.start_timeout_s
        pending = b""
        with open(self.log_path, "rb") as f:
            f.seek(start_at)  # a restart appends: the previous run's ready line does not count
            while True:
                exited = self.proc.poll() is not None  # before reading: its last lines are in
                pending += f.read()
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    text = line.decode(errors="replace").rstrip("\r")
                    if text.startswith(READY_PREFIX):
                        return text
                if exited:
                    raise ServeError(f"rmqstore serve {self.args} exited with "
                                     f"{self.proc.returncode}:\n{self.log()[-LOG_TAIL:]}")
                if time.monotonic() >= deadline:
                    self.kill()
                    raise ServeError(f"rmqstore serve {self.args} not ready in "
                                     f"{self.start_timeout_s} s:\n{self.log()[-LOG_TAIL:]}")
                time.sleep(0.05)

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after ``stop_timeout_s``; the exit code (None if never run)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signals.SIGTERM)
            try:
                self.proc.wait(self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("rmqstore serve pid %d ignored SIGTERM; killing", self.proc.pid)
                self.kill()
        return self.proc.returncode

    def terminate(self) -> int | None:
        """SIGTERM and wait; ServeError (after a SIGKILL) if it does not stop in time."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signals.SIGTERM)
        try:
            return self.proc.wait(self.stop_timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise ServeError(f"rmqstore serve ignored SIGTERM for {self.stop_timeout_s} s:\n"
                             f"{self.log()[-LOG_TAIL:]}") from None

    def kill(self) -> None:
        """SIGKILL (a crash: no flush, no shutdown hooks) and reap."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(self.stop_timeout_s)

    def signal(self, sig: int) -> None:
        if not self.running:
            raise ServeError(f"rmqstore serve {self.args} is not running")
        assert self.proc is not None
        self.proc.send_signal(sig)

    def pause(self, timeout_s: float = 10.0) -> None:
        """SIGSTOP, returning once every thread of the process is stopped. kill() returns
        before that: the kernel stops the other threads only when the one it signalled next
        runs, and meanwhile they still work (a slave still acknowledges what it receives)."""
        self.signal(signals.SIGSTOP)
        assert self.proc is not None
        wait_until(lambda: _all_threads_stopped(self.proc.pid), timeout_s, interval_s=0.001,
                   what=f"every thread of pid {self.proc.pid} stopped")

    def resume(self) -> None:
        """SIGCONT (after ``pause``)."""
        self.signal(signals.SIGCONT)

    def log(self) -> str:
        """The whole log file so far ('' before the first start)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


# -- blocking admin calls, one connection each --------------------------------------------------
_opaques = itertools.count(1)


def call(addr: str, code: int, ext: Mapping[str, str] | None = None, body: bytes = b"",
         timeout_s: float = 5.0, credentials: Credentials | None = None) -> RemotingCommand:
    """Send one request to ``host:port`` (signed with ``credentials`` if given, for a server
    with aclEnable=true) and return its response; ServeError if the peer closes first,
    socket.timeout (an OSError) if no answer comes within ``timeout_s``."""
    host, port = addr.rsplit(":", 1)
    request = RemotingCommand.request(code, dict(ext or {}), body)
    if credentials is not None:
        sign_request(request, credentials)
    request.opaque = next(_opaques)
    deadline = time.monotonic() + timeout_s
    with socket.create_connection((host, int(port)), timeout=timeout_s) as sock:
        sock.sendall(encode(request))
        decoder = FrameDecoder()
        while True:
            # a bound on the whole answer, not on each recv
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            data = sock.recv(65536)
            if not data:
                raise ServeError(f"{addr} closed the connection without answering {code}")
            for cmd in decoder.feed(data):
                if cmd.is_response and cmd.opaque == request.opaque:
                    return cmd


def create_topic(broker: str, topic: str, queues: int = 4, perm: int = 6,
                 credentials: Credentials | None = None) -> None:
    """UPDATE_AND_CREATE_TOPIC on one broker, as `mqadmin updateTopic` sends it. The route
    reaches the NameServer with the broker's next registration: wait for it with ``route``."""
    r = call(broker, RequestCode.UPDATE_AND_CREATE_TOPIC, {
        "topic": topic, "defaultTopic": "TBW102", "readQueueNums": str(queues),
        "writeQueueNums": str(queues), "perm": str(perm), "topicFilterType": "SINGLE_TAG",
        "topicSysFlag": "0", "order": "false"}, credentials=credentials)
    if r.code != 0:
        raise ServeError(f"creating {topic} on {broker}: code {r.code}, {r.remark}")


def route(namesrv: str, topic: str, credentials: Credentials | None = None) -> dict | None:
    """The NameServer's route of ``topic`` as JSON (queueDatas, brokerDatas), or None."""
    r = call(namesrv, RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": topic},
             credentials=credentials)
    return json.loads(r.body) if r.code == 0 else None


def max_offset(broker: str, topic: str, queue_id: int,
               credentials: Credentials | None = None) -> int:
    """The next logical offset of one queue (GET_MAX_OFFSET)."""
    r = call(broker, RequestCode.GET_MAX_OFFSET, {"topic": topic, "queueId": str(queue_id)},
             credentials=credentials)
    if r.code != 0:
        raise ServeError(f"max offset of {topic}/{queue_id} on {broker}: {r.remark}")
    return int(r.ext_fields["offset"])
