"""asyncio networking for the remoting protocol, on top of rmqstore.protocol: one connection
type for both ends (a single reader, the opaque -> Future table, deadlines), the handler
registry, a listening server and a client with one connection per address."""

from .client import ClientConfig, RemotingClient, split_address
from .connection import RemotingConnection
from .dispatch import Deferred, Dispatcher, Handler, RequestContext, RequestFilter
from .errors import (
    ConnectionClosed,
    RemotingConnectError,
    RemotingTimeout,
    RequestRefused,
    SystemBusy,
)
from .limits import ConnectionLimits
from .loop import loop_factory, run
from .server import RemotingServer, ServerConfig
from .tls import ClientAuth, TlsClientConfig, TlsConfigError, TlsMode, TlsServerConfig

__all__ = [
    "ClientAuth", "ClientConfig", "ConnectionClosed", "ConnectionLimits", "Deferred",
    "Dispatcher", "Handler", "RemotingClient", "RemotingConnectError", "RemotingConnection",
    "RemotingServer", "RemotingTimeout", "RequestContext", "RequestFilter", "RequestRefused",
    "ServerConfig", "SystemBusy", "TlsClientConfig", "TlsConfigError", "TlsMode",
    "TlsServerConfig",
    "loop_factory", "run", "split_address",
]
