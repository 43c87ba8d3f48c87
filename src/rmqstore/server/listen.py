"""Starting a listener, with a bind failure told as the one line `rmqstore serve` prints."""

from __future__ import annotations

import errno
import socket
from collections.abc import Awaitable

from .config_error import ConfigError

_REASONS = {
    errno.EADDRINUSE: "the port is in use (another rmqstore or RocketMQ running?)",
    errno.EADDRNOTAVAIL: "this machine has no such address",
    errno.EACCES: "permission denied (ports below 1024 need privileges)",
}


async def listen(start: Awaitable[None], what: str, host: str, port: int,
                 hint: str = "") -> None:
    """Await ``start`` (a server's start()); ConfigError naming ``what`` and the address if
    it cannot bind, with ``hint`` (how to choose another port) appended."""
    try:
        await start
    except socket.gaierror as exc:
        raise ConfigError(f"{what} cannot listen on {host}:{port}: unknown host "
                          f"({exc.strerror})") from None
    except OSError as exc:
        reason = _REASONS.get(exc.errno or 0, exc.strerror or str(exc))
        raise ConfigError(f"{what} cannot listen on {host}:{port}: {reason}"
                          f"{'; ' + hint if hint else ''}") from None
