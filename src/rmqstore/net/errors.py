"""Errors of connections and calls (the wire format's are in rmqstore.protocol.errors):

RemotingError
  SystemBusy          raised by a handler to answer SYSTEM_BUSY (back-pressure)
  RequestRefused      raised by a handler (or what it calls) to answer a code and a remark
  ConnectionClosed    a pending or new call on a closed connection; __cause__ is why it closed
  RemotingTimeout     no response before the deadline (also a TimeoutError)
  RemotingConnectError  the client could not connect
"""

from __future__ import annotations

from ..protocol.errors import RemotingError


class SystemBusy(RemotingError):
    """Raised by a handler to shed load; the peer gets SYSTEM_BUSY with this message as remark."""


class RequestRefused(RemotingError):
    """A request the server will not carry out, for a reason the client may see: the
    dispatcher answers ``code`` with this message as remark (a limit reached, say)."""

    def __init__(self, code: int, remark: str) -> None:
        super().__init__(remark)
        self.code = code


class ConnectionClosed(RemotingError):
    """The connection is closed; ``__cause__`` holds the error that closed it, if any."""


class RemotingTimeout(RemotingError, TimeoutError):
    """No response arrived before the request's deadline."""


class RemotingConnectError(RemotingError):
    """Could not connect to the address; ``__cause__`` is the OSError."""
