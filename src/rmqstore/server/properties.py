"""Java .properties, read where the servers read their config files (the format's home is
protocol/java_properties.py)."""

from __future__ import annotations

from ..protocol.java_properties import parse_properties

__all__ = ["parse_properties"]
