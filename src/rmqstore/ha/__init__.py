"""Replication between stores (RocketMQ 4.x's master/slave HA, its wire format in
rmqstore.protocol.ha): beside the engine rather than inside the broker, so that an embedded
store can feed a replica on another machine as well as a broker can.

    master:  HAService(store, port=10912)          streams the commit log to every slave
    replica: HAClient(open_store(..., replica=True), "master-host:10912")

Each runs on an event loop: a broker's own, or a thread of its own with Background.
"""

from .background import Background
from .client import HAClient
from .config import HAConfig
from .master import HAService

__all__ = ["Background", "HAClient", "HAConfig", "HAService"]
