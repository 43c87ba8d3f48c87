"""Errors of the wire format. RemotingError is the base of every remoting error, these and the
connection's (rmqstore.net.errors):

RemotingError
  FrameError          the byte stream can no longer be trusted: the connection is closed
    FrameTooLarge     length word over the configured maximum, or under the 4-byte minimum
    HeaderDecodeError header bytes that are not a valid JSON or ROCKETMQ header
  HeaderFieldError    a custom-header field missing or unparsable: answered with SYSTEM_ERROR
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
