"""Tokens of RocketMQ 4.9's SelectorParser.jj, with JavaCC's longest-match rule.

    whitespace   " " \\t \\n \\r \\f                   (nothing else: \\v or U+00A0 is an error)
    comments     -- ... up to and including a newline; /* ... */
                 ("--" with no newline after it is two minus signs, as in JavaCC)
    keywords     NOT AND OR BETWEEN IN TRUE FALSE NULL IS        (any case)
    DECIMAL      0 | [1-9][0-9]*[lL]?
    FLOAT        5.5 | 5. | .5 | 5E10, exponents with an optional sign, any case
    STRING       'it''s'  (a doubled quote is one quote; may span lines)
    ID           [a-zA-Z_$][a-zA-Z0-9_$]*                         (no dots, ASCII only)
    punctuation  = <> > >= < <= ( ) , + -

A keyword wins over ID only at the same length ("inx" is an ID), as in JavaCC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import FilterSyntaxError

KEYWORDS = frozenset({"NOT", "AND", "OR", "BETWEEN", "IN", "TRUE", "FALSE", "NULL", "IS"})

# Token kinds besides the keywords (which are their own kind, upper case).
DECIMAL, FLOAT, STRING, ID, PUNCT, EOF = "DECIMAL", "FLOAT", "STRING", "ID", "PUNCT", "EOF"

_SPACE = re.compile(r"[ \t\n\r\f]+")
_LINE_COMMENT = re.compile(r"--[^\n\r]*(?:\r\n|\n|\r)")
_BLOCK_COMMENT = re.compile(r"/\*[^*]*\*+(?:[^*/][^*]*\*+)*/")
_FLOAT = re.compile(
    r"[0-9]+\.[0-9]*(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+"
)
_DECIMAL = re.compile(r"0|[1-9][0-9]*[lL]?")
_STRING = re.compile(r"'(?:''|[^'])*'")
_ID = re.compile(r"[a-zA-Z_$][a-zA-Z0-9_$]*")
_PUNCT = re.compile(r"<>|<=|>=|[=<>(),+-]")


@dataclass(frozen=True, slots=True)
class Token:
    """One token: ``kind`` is a keyword (upper case) or one of DECIMAL FLOAT STRING ID PUNCT EOF;
    ``text`` is the source text (for STRING, the decoded value); ``pos`` and ``end`` are the
    offsets of its first character and one past its last."""

    kind: str
    text: str
    pos: int
    end: int


def tokenize(expression: str) -> list[Token]:
    """Every token of ``expression``, ending with one EOF token at ``len(expression)``.

    Raises FilterSyntaxError at the first character no token can start with.
    """
    tokens: list[Token] = []
    pos, end = 0, len(expression)
    while pos < end:
        skip = _skip(expression, pos)
        if skip > pos:
            pos = skip
            continue
        token = _next_token(expression, pos)
        tokens.append(token)
        pos = token.end
    tokens.append(Token(EOF, "", end, end))
    return tokens


def _skip(expression: str, pos: int) -> int:
    """The offset after any whitespace or comment starting at ``pos`` (``pos`` if none)."""
    for pattern in (_SPACE, _LINE_COMMENT, _BLOCK_COMMENT):
        match = pattern.match(expression, pos)
        if match:
            return match.end()
    return pos


def _next_token(expression: str, pos: int) -> Token:
    char = expression[pos]
    if char == "'":
        match = _STRING.match(expression, pos)
        if match is None:
            raise FilterSyntaxError("unterminated string literal", expression, pos)
        return Token(STRING, match.group()[1:-1].replace("''", "'"), pos, match.end())
    number = _FLOAT.match(expression, pos)
    if number:
        return Token(FLOAT, number.group(), pos, number.end())
    number = _DECIMAL.match(expression, pos)
    if number:
        return Token(DECIMAL, number.group(), pos, number.end())
    word = _ID.match(expression, pos)
    if word:
        upper = word.group().upper()
        return Token(upper if upper in KEYWORDS else ID, word.group(), pos, word.end())
    punct = _PUNCT.match(expression, pos)
    if punct:
        return Token(PUNCT, punct.group(), pos, punct.end())
    if expression.startswith("/*", pos):
        raise FilterSyntaxError("unterminated comment", expression, pos)
    if expression.startswith("!=", pos):
        raise FilterSyntaxError("'!=' is not SQL92, use '<>'", expression, pos)
    if expression.startswith('"', pos):
        raise FilterSyntaxError("string literals take single quotes", expression, pos)
    raise FilterSyntaxError(f"unexpected character {char!r}", expression, pos)

