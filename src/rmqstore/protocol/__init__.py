"""RocketMQ 4.x's wire formats, pure and sans-I/O (the standard library only): the frame and
its JSON and binary headers, request and response codes, every custom header, Java fastjson's
JSON dialect, route data, the register-broker body, and the message record and properties
codec that pull responses and batches share with the store's files. rmqstore.net carries it
over asyncio; the server, the client and the engine read their formats from here."""

from .codes import LanguageCode, RequestCode, ResponseCode, SerializeType
from .command import ONEWAY_FLAG, RESPONSE_FLAG, RemotingCommand
from .errors import FrameError, FrameTooLarge, HeaderDecodeError, HeaderFieldError, RemotingError
from .frame import DEFAULT_MAX_FRAME_BYTES, FrameDecoder, decode_frame, encode

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES", "ONEWAY_FLAG", "RESPONSE_FLAG", "FrameDecoder", "FrameError",
    "FrameTooLarge", "HeaderDecodeError", "HeaderFieldError", "LanguageCode", "RemotingCommand",
    "RemotingError", "RequestCode", "ResponseCode", "SerializeType", "decode_frame", "encode",
]
