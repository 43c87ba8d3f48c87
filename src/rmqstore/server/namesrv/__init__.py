"""RocketMQ 4.x-compatible NameServer: broker registry, topic routes, KV config, address list."""

from .app import NameServer, NamesrvConfig, run_namesrv
from .routes import RouteInfoManager

__all__ = ["NameServer", "NamesrvConfig", "RouteInfoManager", "run_namesrv"]
