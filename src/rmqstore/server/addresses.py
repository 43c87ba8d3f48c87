"""Which address a server tells others to reach it at, when it listens on every interface.

RocketMQ's brokerIP1 defaults to RemotingUtil.getLocalAddress(): the machine's first non-loopback
IPv4 address. Here: the source address of the default route (a UDP socket's connect picks it
and sends nothing), else what the host name resolves to; never a wildcard or loopback address
unless nothing else exists.
"""

from __future__ import annotations

import ipaddress
import socket

from .config_error import ConfigError

# Any routable address works: a UDP connect only selects the route, no packet leaves.
_ROUTE_PROBE = ("192.0.2.1", 9)  # TEST-NET-1 (RFC 5737)


def advertised_address() -> str:
    """This machine's address for others to connect to; ConfigError if it has none but
    loopback (then brokerIP1 or --broker-ip must say)."""
    for candidate in (_route_source(), _host_name_address()):
        if candidate is not None and _usable(candidate):
            return candidate
    raise ConfigError("listening on every interface, but this machine has no address but "
                      "loopback to advertise: set brokerIP1 (or --broker-ip)")


def is_wildcard(host: str) -> bool:
    try:
        return host == "" or ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def _route_source() -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(_ROUTE_PROBE)
            return s.getsockname()[0]
    except OSError:
        return None


def _host_name_address() -> str | None:
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return None


def _usable(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return not (ip.is_loopback or ip.is_unspecified or ip.is_link_local)
