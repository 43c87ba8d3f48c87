"""RocketMQ 4.x remoting: frame codec -> connection -> handlers (see frame.py for the bytes)."""

from .client import ClientConfig, RemotingClient
from .codes import LanguageCode, RequestCode, ResponseCode, SerializeType
from .command import ONEWAY_FLAG, RESPONSE_FLAG, RemotingCommand
from .connection import RemotingConnection
from .dispatch import Dispatcher, Handler, RequestContext
from .errors import (
    ConnectionClosed,
    FrameError,
    FrameTooLarge,
    HeaderDecodeError,
    HeaderFieldError,
    RemotingConnectError,
    RemotingError,
    RemotingTimeout,
    SystemBusy,
)
from .frame import DEFAULT_MAX_FRAME_BYTES, FrameDecoder, decode_frame, encode
from .server import RemotingServer, ServerConfig

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES", "ONEWAY_FLAG", "RESPONSE_FLAG",
    "ClientConfig", "ConnectionClosed", "Dispatcher", "FrameDecoder", "FrameError",
    "FrameTooLarge", "Handler", "HeaderDecodeError", "HeaderFieldError", "LanguageCode",
    "RemotingClient", "RemotingCommand", "RemotingConnectError", "RemotingConnection",
    "RemotingError", "RemotingServer", "RemotingTimeout", "RequestCode", "RequestContext",
    "ResponseCode", "SerializeType", "ServerConfig", "SystemBusy", "decode_frame", "encode",
]
