"""A replica store following a master in its own process, no broker: what an application
embedding rmqstore runs on its standby machine. Test helper:

    python follower.py STORE_DIR MASTER_HA_ADDR STORE_CONFIG_JSON

Prints the replica's end offset as a line whenever it changes (and "ready" first); on SIGTERM
it stops following, closes the store cleanly and exits 0. RMQ_TEST_SLOW_WRITE_US slows its
native link's appends down (a slow disk: the master's bytes wait in the socket).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading

import rmqstore
from rmqstore import _native
from rmqstore.ha import Background, HAClient, HAConfig


def slow_writes(delay_us: int) -> None:
    """Every native link sleeps delay_us before each append."""
    class Slow(_native.Follower):
        def __init__(self, *args) -> None:
            super().__init__(*args)
            self.slow_writes(delay_us)

    _native.Follower = Slow  # type: ignore[misc]


def main() -> None:
    root, master, config = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    if delay_us := int(os.environ.get("RMQ_TEST_SLOW_WRITE_US", "0")):
        slow_writes(delay_us)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with rmqstore.open(root, replica=True, **config) as store:
        with Background(HAClient(store, master, HAConfig(reconnect_interval_ms=200))):
            print("ready", flush=True)
            last = -1
            while not stop.wait(0.02):
                if store.replica.dispatched != last:
                    last = store.replica.dispatched
                    print(last, flush=True)


if __name__ == "__main__":
    main()
