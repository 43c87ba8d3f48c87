"""The Broker: RocketMQ 4.x request handlers over the embedded store (see app.py)."""

from .app import Broker
from .config import BrokerConfig

__all__ = ["Broker", "BrokerConfig"]
