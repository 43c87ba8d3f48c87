"""Pre-made JSON response frames for the hottest answers (a send's SUCCESS).

A template is what encode_json_header writes for one response shape (code, remark, extFields
keys, no body) with placeholders where the opaque and some ext values go, turned into a
%-format: filling it is one string format instead of a RemotingCommand, a header dict and the
general encoder, and the bytes are the general encoder's, byte for byte (tested). Filled
values are written as given: the caller passes only text that JSON needs no escape for (hex
message ids, decimal numbers).
"""

from __future__ import annotations

import struct

from .command import RemotingCommand
from .json_header import encode_json_header

_PREFIX = struct.Struct(">iI")  # frame length, header word (serialize type JSON = 0)
_OPAQUE_MARK = 2_147_480_001  # an opaque no real response is built with here
_VALUE_MARK = "<<rmq-value-%d>>"


class JsonFrameTemplate:
    def __init__(self, code: int, ext_fields: dict[str, str | None],
                 remark: str | None = None) -> None:
        """``ext_fields``: the keys in order; None marks a value given to ``frame``."""
        variable = [k for k, v in ext_fields.items() if v is None]
        marks = iter(range(len(variable)))
        ext = {k: (_VALUE_MARK % next(marks) if v is None else v) for k, v in ext_fields.items()}
        cmd = RemotingCommand.response(code, remark, ext)
        cmd.opaque = _OPAQUE_MARK
        text = encode_json_header(cmd).decode("utf-8").replace("%", "%%")
        # fastjson's key order puts extFields before opaque: values first, then the opaque.
        points = [text.index(_VALUE_MARK % i) for i in range(len(variable))]
        opaque_at = text.index(f'"opaque":{_OPAQUE_MARK},')
        if points != sorted(points) or (points and points[-1] > opaque_at):
            raise AssertionError("unexpected JSON header layout")
        for i in range(len(variable)):
            text = text.replace(_VALUE_MARK % i, "%s")
        self._format = text.replace(f'"opaque":{_OPAQUE_MARK},', '"opaque":%d,')

    def frame(self, opaque: int, *values: str) -> bytes:
        """The whole frame: length, header word, header (no body)."""
        header = (self._format % (*values, opaque)).encode("utf-8")
        return _PREFIX.pack(4 + len(header), len(header)) + header
