"""RemotingCommand: one request or response, independent of how its header is encoded.

Mirrors remoting/.../protocol/RemotingCommand.java (rocketmq-all-4.9.7). ``ext_fields`` is the
"custom header": a flat str -> str map (headers.py turns it into typed objects).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .codes import SerializeType

RESPONSE_FLAG = 0x1  # flag bit 0 (RPC_TYPE): set on responses
ONEWAY_FLAG = 0x2  # flag bit 1 (RPC_ONEWAY): the request expects no response

# MQVersion.Version ordinal we announce; the value a Java 4.9.7 broker sends
# (common/.../MQVersion.java).
SERVER_VERSION = 403
# Java clients look the name up in their enum, so an unknown name would break them
# (remoting/.../protocol/LanguageCode.java).
SERVER_LANGUAGE = "JAVA"


@dataclass(slots=True)
class RemotingCommand:
    """A decoded (or to-be-encoded) frame. ``body`` is owned by the command (a bytes copy)."""

    code: int
    language: str = SERVER_LANGUAGE
    version: int = SERVER_VERSION
    opaque: int = 0
    flag: int = 0
    remark: str | None = None
    ext_fields: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    serialize_type: SerializeType = SerializeType.JSON

    @classmethod
    def request(cls, code: int, ext_fields: dict[str, str] | None = None,
                body: bytes = b"") -> RemotingCommand:
        """A two-way request; the connection assigns the opaque when it sends it."""
        return cls(code=int(code), ext_fields=dict(ext_fields or {}), body=body)

    @classmethod
    def response(cls, code: int, remark: str | None = None,
                 ext_fields: dict[str, str] | None = None, body: bytes = b"") -> RemotingCommand:
        """A response; the dispatcher copies opaque and serialize type from the request."""
        return cls(code=int(code), flag=RESPONSE_FLAG, remark=remark,
                   ext_fields=dict(ext_fields or {}), body=body)

    @property
    def is_response(self) -> bool:
        return bool(self.flag & RESPONSE_FLAG)

    @property
    def is_oneway(self) -> bool:
        return bool(self.flag & ONEWAY_FLAG)


def answer(request: RemotingCommand, response: RemotingCommand) -> RemotingCommand:
    """Bind ``response`` to ``request``: same opaque, RESPONSE bit set, same header encoding.

    NettyRemotingAbstract.processRequestCommand does the same three things before writing.
    """
    response.opaque = request.opaque
    response.flag |= RESPONSE_FLAG
    response.serialize_type = request.serialize_type
    return response
