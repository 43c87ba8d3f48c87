"""Which brokers are alive, from their heartbeats (RocketMQ 5's DefaultBrokerHeartbeatManager):
every controller keeps its own table, as every broker heartbeats every controller.

A broker is alive while its last heartbeat is younger than the timeout it sent with it
(heartbeatTimeoutMills). A newer heartbeat's epoch and max offset replace the old ones only
when they are ahead (the election compares them). A broker whose connection closed is dead at
once only when its process is provably gone (its listen port refuses connections: see
controller.py); a hung or cut-off one waits out its timeout, which outlasts its master lease.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from .elect import LiveInfo

Key = tuple[str, str, int]  # (cluster, broker name, controller broker id)


@dataclass(slots=True)
class BrokerLive:
    broker_addr: str
    last_s: float
    timeout_s: float
    channel: object | None
    info: LiveInfo
    confirm_offset: int


class BrokerLiveTable:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.table: dict[Key, BrokerLive] = {}

    def on_heartbeat(self, key: Key, broker_addr: str, timeout_s: float, channel: object | None,
                     epoch: int, max_offset: int, confirm_offset: int, priority: int) -> None:
        now = self._clock()
        prev = self.table.get(key)
        if prev is None:
            self.table[key] = BrokerLive(broker_addr, now, timeout_s, channel,
                                         LiveInfo(epoch, max_offset, priority), confirm_offset)
            return
        prev.last_s, prev.timeout_s, prev.channel = now, timeout_s, channel
        prev.broker_addr = broker_addr
        old = prev.info
        if epoch > old.epoch or (epoch == old.epoch and max_offset > old.max_offset):
            prev.info = LiveInfo(epoch, max_offset, priority)
            prev.confirm_offset = confirm_offset
        else:
            prev.info = LiveInfo(old.epoch, old.max_offset, priority)

    def alive(self, key: Key) -> bool:
        live = self.table.get(key)
        return live is not None and self._clock() - live.last_s <= live.timeout_s

    def live_info(self, key: Key) -> LiveInfo | None:
        return self.table[key].info if self.alive(key) else None

    def last_heard(self, key: Key) -> float | None:
        live = self.table.get(key)
        return live.last_s if live is not None else None

    def remove(self, key: Key) -> BrokerLive | None:
        return self.table.pop(key, None)

    def expired(self) -> list[Key]:
        """scanNotActiveBroker: the brokers whose heartbeat timed out, removed."""
        now = self._clock()
        gone = [k for k, v in self.table.items() if now - v.last_s > v.timeout_s]
        for k in gone:
            del self.table[k]
        return gone

    def on_channel(self, channel: object) -> list[tuple[Key, BrokerLive]]:
        """The brokers that heartbeat on ``channel`` (a connection that just closed)."""
        return [(k, v) for k, v in self.table.items() if v.channel is channel]
