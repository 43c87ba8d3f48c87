"""What one server lets its connections cost: ConnectionLimits, enforced by connection.py (per
connection) and server.py (the connection count, the timeouts' sweep).

RocketMQ's own knobs where it has one (NettyServerConfig, NettySystemConfig of
rocketmq-all-4.9.7): the idle timeout is serverChannelMaxIdleTimeSeconds (120 s), the frame
limit com.rocketmq.remoting.frameMaxLength. RocketMQ has no read timeout, no per-connection
buffer cap and no connection cap; ours have the defaults below.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass

from ..protocol.frame import frame_limit

DEFAULT_FRAME_READ_TIMEOUT_S = 30.0
DEFAULT_MAX_IDLE_S = 120.0  # NettyServerConfig.serverChannelMaxIdleTimeSeconds
MAX_CONNECTIONS_CEILING = 10_000  # the automatic cap never goes above this


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """Every field bounds one resource; see the module docstring for the names they come from.

    ``max_connections`` None means: half the process's descriptor limit (RLIMIT_NOFILE) at the
    time the server starts, at most MAX_CONNECTIONS_CEILING, leaving the other half to the store.
    """

    max_frame_bytes: int = frame_limit()  # a request larger than this closes its connection
    # What one connection may make us hold: its partial frame, the bodies of its requests still
    # being served, and its responses not yet sent. Above it, we stop reading from it until
    # that drains (back-pressure, not an error).
    max_buffered_bytes: int = 2 * frame_limit()
    # A frame whose first byte arrived must be complete within this, or the connection closes
    # (a peer trickling bytes holds a buffer and a descriptor for nothing); 0 = no limit.
    frame_read_timeout_s: float = DEFAULT_FRAME_READ_TIMEOUT_S
    # A connection with no bytes either way and no request in flight for this long is closed,
    # as Netty's IdleStateHandler(0, 0, serverChannelMaxIdleTimeSeconds) does; 0 = never.
    max_idle_s: float = DEFAULT_MAX_IDLE_S
    max_connections: int | None = None

    def __post_init__(self) -> None:
        if self.max_frame_bytes < 1024:
            raise ValueError(f"max_frame_bytes {self.max_frame_bytes} is below 1024")
        if self.max_buffered_bytes < self.max_frame_bytes:
            raise ValueError(f"max_buffered_bytes {self.max_buffered_bytes} is below "
                             f"max_frame_bytes {self.max_frame_bytes}: a full frame must fit")
        if self.frame_read_timeout_s < 0 or self.max_idle_s < 0:
            raise ValueError("timeouts must be 0 (off) or positive")
        if self.max_connections is not None and self.max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, not {self.max_connections}")

    def connection_cap(self) -> int:
        """max_connections, or the automatic value (see the class docstring)."""
        if self.max_connections is not None:
            return self.max_connections
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            return MAX_CONNECTIONS_CEILING
        return max(16, min(MAX_CONNECTIONS_CEILING, soft // 2))
