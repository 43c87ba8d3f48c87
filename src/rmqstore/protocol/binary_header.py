"""The ROCKETMQ binary header (serialize type 1): layout in frame.py's docstring.

Follows RocketMQSerializable.java (rocketmq-all-4.9.7): every integer big-endian and signed,
a zero-length string decodes as null, so a remark of "" and an extFields value of "" do not
survive a round trip (the Java decoder drops them the same way).
"""

from __future__ import annotations

import struct

from .codes import LanguageCode, SerializeType
from .command import RemotingCommand
from .errors import HeaderDecodeError

# code int16 | language int8 | version int16 | opaque int32 | flag int32  (13 bytes)
_FIXED = struct.Struct(">hbhii")
_INT32 = struct.Struct(">i")  # remark length, extFields length, value length
_INT16 = struct.Struct(">h")  # key length
_LANGUAGE_CODES = frozenset(m.value for m in LanguageCode)
_NAME_TO_BYTE = {m.name: m.value for m in LanguageCode}


def encode_binary_header(cmd: RemotingCommand) -> bytes:
    """The header bytes; raises ValueError if code or version do not fit an int16."""
    for name in ("code", "version"):
        value = getattr(cmd, name)
        if not -(2**15) <= value < 2**15:
            raise ValueError(f"{name} {value} does not fit the ROCKETMQ header's int16")
    language = _NAME_TO_BYTE.get(cmd.language, LanguageCode.OTHER.value)
    parts = [_FIXED.pack(cmd.code, language, cmd.version, cmd.opaque, cmd.flag)]
    remark = cmd.remark.encode("utf-8") if cmd.remark else b""
    parts += [_INT32.pack(len(remark)), remark]
    ext = bytearray()
    for key, value in cmd.ext_fields.items():
        k, v = key.encode("utf-8"), str(value).encode("utf-8")
        if len(k) >= 2**15:
            raise ValueError(f"extFields key of {len(k)} bytes does not fit an int16 length")
        ext += _INT16.pack(len(k)) + k + _INT32.pack(len(v)) + v
    parts += [_INT32.pack(len(ext)), bytes(ext)]
    return b"".join(parts)


def decode_binary_header(data: bytes, body: bytes) -> RemotingCommand:
    """Parse a binary header of exactly ``len(data)`` bytes; bytes after extFields are ignored."""
    if len(data) < _FIXED.size + 8:
        raise HeaderDecodeError(f"ROCKETMQ header of {len(data)} bytes is shorter than 21")
    code, lang, version, opaque, flag = _FIXED.unpack_from(data, 0)
    pos = _FIXED.size
    remark, pos = _read_str(data, pos, _INT32, "remark")
    if pos + 4 > len(data):
        raise HeaderDecodeError("ROCKETMQ header truncated before the extFields length")
    (ext_len,) = _INT32.unpack_from(data, pos)
    pos += 4
    if not 0 <= ext_len <= len(data) - pos:
        raise HeaderDecodeError(f"extFields length {ext_len} exceeds the header "
                                f"({len(data) - pos} left)")
    ext_fields: dict[str, str] = {}
    end = pos + ext_len
    block = data[:end]  # entries must not run past the extFields block
    while pos < end:
        key, pos = _read_str(block, pos, _INT16, "extFields key")
        value, pos = _read_str(block, pos, _INT32, "extFields value")
        if key is not None and value is not None:
            ext_fields[key] = value
    language = LanguageCode(lang).name if lang in _LANGUAGE_CODES else LanguageCode.OTHER.name
    return RemotingCommand(code=code, language=language, version=version, opaque=opaque, flag=flag,
                           remark=remark, ext_fields=ext_fields, body=body,
                           serialize_type=SerializeType.ROCKETMQ)


def _read_str(data: bytes, pos: int, length: struct.Struct, what: str) -> tuple[str | None, int]:
    if pos + length.size > len(data):
        raise HeaderDecodeError(f"ROCKETMQ header truncated in the length of the {what}")
    (n,) = length.unpack_from(data, pos)
    pos += length.size
    if n == 0:
        return None, pos
    if n < 0 or n > len(data) - pos:
        raise HeaderDecodeError(f"{what} length {n} outside the header ({len(data) - pos} left)")
    # Java's readCharSequence substitutes U+FFFD for bad UTF-8 rather than failing.
    return data[pos:pos + n].decode("utf-8", errors="replace"), pos + n
