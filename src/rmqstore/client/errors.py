"""The client's exception tree.

ClientError
  NameServerUnavailable   no NameServer address, or none answered
  RouteNotFound           no route for a topic (and none for TBW102)
  BrokerError             a broker answered a non-success code (``code``, ``remark``)
  SendFailed              every send attempt failed; ``__cause__`` is the last error
  ClientClosed            the object was closed or not started
"""

from __future__ import annotations


class ClientError(Exception):
    """Base of every client error."""


class NameServerUnavailable(ClientError):
    """No NameServer address could be found, or none answered."""


class RouteNotFound(ClientError):
    """The NameServers know no route for the topic."""


class BrokerError(ClientError):
    """A broker answered ``code`` with ``remark``."""

    def __init__(self, code: int, remark: str | None, addr: str = "") -> None:
        super().__init__(f"broker {addr} answered code {code}: {remark}")
        self.code = code
        self.remark = remark
        self.addr = addr


class SendFailed(ClientError):
    """A send failed on every attempt."""


class ClientClosed(ClientError):
    """Used before start() or after close()."""
