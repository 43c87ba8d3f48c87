"""Pre-made JSON frames for the hottest commands: a send's SUCCESS answer, a producer's send.

A template is what encode_json_header writes for one command shape (code, flag, language,
version, remark, extFields keys) with placeholders where the opaque and some ext values go,
turned into a %-format: filling it is one string format instead of a RemotingCommand, a header
dict and the general encoder, and the bytes are the general encoder's, byte for byte (tested).
Filled values are written as given: the caller passes text that JSON needs no escape for (hex
message ids, decimal numbers) or escapes it with ``json_text``.

``fill`` is ``frame`` in one native call (_codec.fill_frame, from the template's text cut at
its placeholders): it escapes str values itself, writes ints in decimal and a dict as message
properties; ``frame`` stays the reference it is tested against.
"""

from __future__ import annotations

import struct

from . import _codec
from .command import RemotingCommand
from .json_header import _quote, encode_json_header
from .message import properties_text

_PREFIX = struct.Struct(">iI")  # frame length, header word (serialize type JSON = 0)
_OPAQUE_MARK = 2_147_480_001  # an opaque no real response is built with here
_VALUE_MARK = "<<rmq-value-%d>>"


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
        self._pieces = _pieces(self._format)

    @classmethod
    def request(cls, code: int, ext_fields: dict[str, str | None], language: str,
                version: int) -> JsonFrameTemplate:
        """A two-way request's, stamped with the sender's language and version."""
        cmd = RemotingCommand.request(code)
        cmd.language, cmd.version = language, version
        template = cls.__new__(cls)
        template._format = _format(cmd, ext_fields)
        template._pieces = _pieces(template._format)
        return template

    def frame(self, opaque: int, *values: str, body: bytes = b"") -> bytes:
        """The whole frame: length, header word, header, ``body``."""
        header = (self._format % (*values, opaque)).encode("utf-8")
        return b"".join((_PREFIX.pack(4 + len(header) + len(body), len(header)), header, body))

    def fill(self, opaque: int, values: tuple[str | int | dict[str, str], ...],
             body: bytes = b"") -> bytes:
        """frame() with ``values`` unescaped: a str is JSON-escaped, an int written in
        decimal, a dict written as message properties (raising PropertyError as
        properties_text does)."""
        out = _codec.fill_frame(self._pieces, values, opaque, body)
        if out is None:  # a value the native writer leaves to Python (or refuses)
            texts = [json_text(properties_text(v)) if isinstance(v, dict)
                     else json_text(v) if isinstance(v, str) else str(v) for v in values]
            out = self.frame(opaque, *texts, body=body)
        return out

    def pieces(self) -> tuple[bytes, ...]:
        """The header's UTF-8 text around the values and the opaque, in order (one more piece
        than placeholders): what a writer of its own fills in to make ``frame``'s bytes (fill,
        and the broker's native send answer, _native/send_path.c)."""
        return self._pieces


def _pieces(fmt: str) -> tuple[bytes, ...]:
    """The %-format's text between its placeholders (%s each value, %d the opaque)."""
    parts, start, i = [], 0, 0
    while (i := fmt.find("%", i)) >= 0:
        if fmt[i + 1] in "sd":
            parts.append(fmt[start:i].replace("%%", "%").encode("utf-8"))
            start = i + 2
        i += 2
    parts.append(fmt[start:].replace("%%", "%").encode("utf-8"))
    return tuple(parts)


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
