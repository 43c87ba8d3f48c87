"""Pre-made JSON frames for the hottest commands: a send's SUCCESS answer, a producer's send.

A template is what encode_json_header writes for one command shape (code, flag, language,
version, remark, extFields keys) with placeholders where the opaque and some ext values go,
turned into a %-format: filling it is one string format instead of a RemotingCommand, a header
dict and the general encoder, and the bytes are the general encoder's, byte for byte (tested).
Filled values are written as given: the caller passes text that JSON needs no escape for (hex
message ids, decimal numbers) or escapes it with ``json_text``.
"""

from __future__ import annotations

import re
import struct

from .command import RemotingCommand
from .json_header import _quote, encode_json_header

_PREFIX = struct.Struct(">iI")  # frame length, header word (serialize type JSON = 0)
_OPAQUE_MARK = 2_147_480_001  # an opaque no real response is built with here
_VALUE_MARK = "<<rmq-value-%d>>"
_PLACEHOLDER = re.compile("%([%sd])")  # a template's %-format: an escaped %, a value, the opaque


def json_text(value: str) -> str:
    """``value`` escaped for a template's placeholder (inside its quotes), as the general
    encoder escapes it."""
    return _quote(value)[1:-1]


class JsonFrameTemplate:
    def __init__(self, code: int, ext_fields: dict[str, str | None],
                 remark: str | None = None) -> None:
        """A response's; ``ext_fields``: the keys in order; None marks a value given to
        ``frame``."""
        self._format = _format(RemotingCommand.response(code, remark), ext_fields)

    @classmethod
    def request(cls, code: int, ext_fields: dict[str, str | None], language: str,
                version: int) -> JsonFrameTemplate:
        """A two-way request's, stamped with the sender's language and version."""
        cmd = RemotingCommand.request(code)
        cmd.language, cmd.version = language, version
        template = cls.__new__(cls)
        template._format = _format(cmd, ext_fields)
        return template

    def frame(self, opaque: int, *values: str, body: bytes = b"") -> bytes:
        """The whole frame: length, header word, header, ``body``."""
        header = (self._format % (*values, opaque)).encode("utf-8")
        return b"".join((_PREFIX.pack(4 + len(header) + len(body), len(header)), header, body))

    def pieces(self) -> tuple[bytes, ...]:
        """The header's UTF-8 text around the values and the opaque, in order (one more piece
        than placeholders): what a writer of its own fills in to make ``frame``'s bytes (the
        broker's native send answer, _native/send_path.c)."""
        texts, at = [""], 0
        for mark in _PLACEHOLDER.finditer(self._format):
            texts[-1] += self._format[at:mark.start()]
            if mark.group(1) == "%":
                texts[-1] += "%"
            else:
                texts.append("")
            at = mark.end()
        texts[-1] += self._format[at:]
        return tuple(text.encode("utf-8") for text in texts)


def _format(cmd: RemotingCommand, ext_fields: dict[str, str | None]) -> str:
    """encode_json_header's text of ``cmd`` with ``ext_fields`` as a %-format: a %s for each
    None value, then a %d for the opaque."""
    variable = [k for k, v in ext_fields.items() if v is None]
    marks = iter(range(len(variable)))
    cmd.ext_fields = {k: (_VALUE_MARK % next(marks) if v is None else v)
                      for k, v in ext_fields.items()}
    cmd.opaque = _OPAQUE_MARK
    text = encode_json_header(cmd).decode("utf-8").replace("%", "%%")
    # fastjson's key order puts extFields before opaque: values first, then the opaque.
    points = [text.index(_VALUE_MARK % i) for i in range(len(variable))]
    opaque_at = text.index(f'"opaque":{_OPAQUE_MARK},')
    if points != sorted(points) or (points and points[-1] > opaque_at):
        raise AssertionError("unexpected JSON header layout")
    for i in range(len(variable)):
        text = text.replace(_VALUE_MARK % i, "%s")
    return text.replace(f'"opaque":{_OPAQUE_MARK},', '"opaque":%d,')
