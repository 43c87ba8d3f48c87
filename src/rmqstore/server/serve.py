"""`rmqstore serve`: a NameServer and a Broker in one process, or either alone, until SIGTERM or
SIGINT, then a clean shutdown (the broker unregisters, flushes and closes its store)."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

from ..net import loop as loops
from .broker import Broker, BrokerConfig
from .namesrv import NameServer, NamesrvConfig

log = logging.getLogger(__name__)

ROLES = ("all", "namesrv", "broker")


@dataclass(frozen=True)
class ServeOptions:
    role: str
    namesrv: NamesrvConfig
    broker: BrokerConfig


async def serve(options: ServeOptions, ready=None) -> None:
    """Start the roles asked for, call ready(description) once they listen, run until a
    termination signal, then stop them in reverse order."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    started: list = []
    parts = []
    try:
        if options.role in ("all", "namesrv"):
            namesrv = NameServer(options.namesrv)
            await namesrv.start()
            started.append(namesrv)
            parts.append("namesrv %s:%d" % namesrv.address)
        if options.role in ("all", "broker"):
            broker = Broker(options.broker)
            await broker.start()
            started.append(broker)
            http = "" if broker.web is None else " http %s:%d" % broker.web.address
            parts.append(f"broker {broker.address}{http} (store {options.broker.store_root})")
        if ready is not None:
            ready(", ".join(parts))
        await stop.wait()
        log.info("stopping")
    finally:
        for part in reversed(started):
            await part.stop()


def run(options: ServeOptions, ready=None) -> None:
    """serve() on the preferred event loop, uvloop when installed, for both flush modes (a
    sync-flush broker's group commit is led from the loop itself: see aio_commit)."""
    loops.run(serve(options, ready))
