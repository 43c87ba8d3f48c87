"""The error a server raises for a setting it cannot honour: `rmqstore serve` exits non-zero
with its text as the one line it prints, never a traceback."""

from __future__ import annotations


class ConfigError(Exception):
    """A configuration value refused at start; ``str()`` is the whole reason, on one line."""
