"""The remoting exception tree. Which ones close a connection and which become a response:

RemotingError
  FrameError          the byte stream can no longer be trusted: the connection is closed
    FrameTooLarge     length word over the configured maximum, or under the 4-byte minimum
    HeaderDecodeError header bytes that are not a valid JSON or ROCKETMQ header
  HeaderFieldError    a custom-header field missing or unparsable: answered with SYSTEM_ERROR
  SystemBusy          raised by a handler to answer SYSTEM_BUSY (back-pressure)
  ConnectionClosed    a pending or new call on a closed connection; __cause__ is why it closed
  RemotingTimeout     no response before the deadline (also a TimeoutError)
  RemotingConnectError  the client could not connect
"""

from __future__ import annotations


class RemotingError(Exception):
    """Base of every remoting error."""


class FrameError(RemotingError):
    """The stream is malformed; nothing after this point can be framed, so the connection closes."""


class FrameTooLarge(FrameError):
    """A frame's length is outside [4, max_frame_bytes - 4]."""


class HeaderDecodeError(FrameError):
    """The header bytes do not decode as the serialize type the frame announced."""


class HeaderFieldError(RemotingError):
    """A required custom-header field is missing, or a field does not parse as its type."""


class SystemBusy(RemotingError):
    """Raised by a handler to shed load; the peer gets SYSTEM_BUSY with this message as remark."""


class ConnectionClosed(RemotingError):
    """The connection is closed; ``__cause__`` holds the error that closed it, if any."""


class RemotingTimeout(RemotingError, TimeoutError):
    """No response arrived before the request's deadline."""


class RemotingConnectError(RemotingError):
    """Could not connect to the address; ``__cause__`` is the OSError."""
