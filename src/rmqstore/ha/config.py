"""HAConfig: the HA settings both ends read, with RocketMQ's names and 4.9.7 defaults
(MessageStoreConfig)."""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1 << 20


@dataclass(frozen=True)
class HAConfig:
    heartbeat_interval_ms: int = 5_000  # haSendHeartbeatInterval: reports / empty frames when idle
    housekeeping_interval_ms: int = 20_000  # haHousekeepingInterval: a silent link is closed
    transfer_batch_bytes: int = 32 * 1024  # haTransferBatchSize: the largest frame body sent
    slave_fallbehind_max: int = 256 * MiB  # haSlaveFallbehindMax: a slave further back is "not OK"
    slave_timeout_ms: int = 3_000  # slaveTimeout (4.9.4+): a SYNC_MASTER send waits this long
    # The wait before a slave connects again. Java's HAClient waits 5 s; a refused connection
    # costs nothing, and a slave back sooner after its master restarts lets SYNC_MASTER sends
    # succeed again sooner.
    reconnect_interval_ms: int = 1_000
    # Our limit (RocketMQ has none): links a master serves at once; one more is closed at
    # once. Each costs a task, a write buffer and a read of the log.
    max_slaves: int = 8
    # Ours too: how long after an append the links push it. 0, at once, is what a SYNC_MASTER's
    # sends wait for; an ASYNC_MASTER gathers a few ms of appends into fewer frames (Java's
    # writer waits up to 100 ms for an ASYNC_MASTER's).
    push_delay_ms: int = 0

    def __post_init__(self) -> None:
        if self.push_delay_ms < 0:
            raise ValueError("push_delay_ms must not be negative")
        for name in ("heartbeat_interval_ms", "housekeeping_interval_ms",
                     "transfer_batch_bytes", "slave_fallbehind_max", "slave_timeout_ms",
                     "reconnect_interval_ms", "max_slaves"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.transfer_batch_bytes > 4 * MiB:
            raise ValueError("transfer_batch_bytes must be at most 4 MiB (a RocketMQ slave's "
                             "read buffer)")
