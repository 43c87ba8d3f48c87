"""Message ids (UNIQ_KEY) and client ids, made the way RocketMQ's Java client makes them.

UNIQ_KEY (common/.../message/MessageClientIDSetter.java, rocketmq-all-4.9.7), 16 bytes as 32
uppercase hex characters::

    size  field
       4  client IPv4 address
       2  process id, low 16 bits
       4  a per-process random int (Java: the class loader's hashCode; C++: random)
       4  ms since the start of the current calendar month (local time), int32
       2  counter, incremented per id, wrapping at 2^16

Example: 7F000001 1A2B 5F3C9D01 0BEBC200 0001 = 127.0.0.1, pid 0x1A2B, 200_000_000 ms into the
month, counter 1.
"""

from __future__ import annotations

import itertools
import os
import random
import socket
import struct
import threading
import time
from datetime import datetime


def local_ip() -> str:
    """The address other hosts would see (RemotingUtil.getLocalAddress); 127.0.0.1 if none."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))  # no packet is sent
            return s.getsockname()[0]
    except OSError:
        return "127.0.0.1"


def _month_bounds_ms(now_ms: int) -> tuple[int, int]:
    now = datetime.fromtimestamp(now_ms / 1000)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    nxt = (start.replace(year=start.year + 1, month=1) if start.month == 12
           else start.replace(month=start.month + 1))
    return int(start.timestamp() * 1000), int(nxt.timestamp() * 1000)


class UniqIdGenerator:
    """MessageClientIDSetter.createUniqID; thread-safe."""

    def __init__(self, ip: str | None = None) -> None:
        addr = socket.inet_aton(ip or local_ip())
        self._prefix = (addr + struct.pack(">H", os.getpid() & 0xFFFF)
                        + struct.pack(">I", random.getrandbits(32))).hex().upper()
        self._counter = itertools.count(random.getrandbits(16))
        self._lock = threading.Lock()
        self._start_ms = 0
        self._next_start_ms = 0

    def next_id(self) -> str:
        now_ms = int(time.time() * 1000)
        with self._lock:
            if now_ms >= self._next_start_ms:
                self._start_ms, self._next_start_ms = _month_bounds_ms(now_ms)
            diff = now_ms - self._start_ms
            count = next(self._counter) & 0xFFFF
        diff = 0 if -1_000_000 < diff < 0 else diff
        return "%s%08X%04X" % (self._prefix, diff & 0x7FFFFFFF, count)  # >iH in hex


_generator: UniqIdGenerator | None = None


def create_uniq_id() -> str:
    """A fresh UNIQ_KEY from the process-wide generator."""
    global _generator
    if _generator is None:
        _generator = UniqIdGenerator()
    return _generator.next_id()


def uniq_id_time_ms(uniq_id: str) -> int:
    """MessageClientIDSetter.getNearlyTimeFromID: the id's creation time, ms since the epoch."""
    raw = bytes.fromhex(uniq_id)
    diff = struct.unpack(">i", raw[-6:-2])[0]
    now_ms = int(time.time() * 1000)
    start, _ = _month_bounds_ms(now_ms)
    if start + diff > now_ms:  # made last month
        start, _ = _month_bounds_ms(start - 1)
    return start + diff


_instances = itertools.count()


def make_client_id(instance_name: str | None, ip: str | None = None) -> str:
    """ClientConfig.buildMQClientId: ``ip@instanceName``; with no instance name, Java's
    ``pid#nanoTime`` (here pid#counter#ns) so every client object in a process is distinct."""
    name = instance_name or f"{os.getpid()}#{next(_instances)}#{time.monotonic_ns()}"
    return f"{ip or local_ip()}@{name}"
