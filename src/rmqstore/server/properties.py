"""Java .properties, read where the servers read their config files (broker.conf,
namesrv.conf, tls.properties); the format's home is protocol/java_properties.py, which the
broker config requests' bodies share."""

from __future__ import annotations

from ..protocol.java_properties import parse_properties

__all__ = ["parse_properties"]
