"""Java value semantics the filter inherits from RocketMQ: the number types a literal becomes,
the String -> number conversions applied to property values, and the ordering
ComparisonExpression.__compare uses when the two sides differ in type.

Runtime values are Python objects of exactly these types (checked with ``type() is``):

    None       SQL NULL (a missing property, the NULL literal)
    bool       java.lang.Boolean
    str        java.lang.String (every property value)
    JavaInt    java.lang.Integer (integer literals within 32 bits)
    JavaLong   java.lang.Long (integer literals beyond 32 bits, up to 64)
    float      java.lang.Double (decimal literals)
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Callable
from typing import Any

from .errors import FilterEvaluationError

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1


class JavaInt(int):
    """A java.lang.Integer: an integer literal that fits in 32 bits."""

    __slots__ = ()


class JavaLong(int):
    """A java.lang.Long: an integer literal that needs 64 bits."""

    __slots__ = ()


Value = None | bool | str | JavaInt | JavaLong | float

# Integer.parseInt: optional sign, then Character.digit(c, 10) digits (Unicode Nd), nothing else.
_JAVA_INTEGER = re.compile(r"[+-]?\d+")
# FloatingDecimal.readJavaFormatString after String.trim(): ASCII digits only, an optional
# f/F/d/D suffix, NaN and Infinity spelled exactly so.
_JAVA_DECIMAL = re.compile(
    r"[+-]?(?:NaN|Infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[fFdD]?)", re.ASCII
)
_JAVA_HEX = re.compile(
    r"[+-]?0[xX](?:[0-9a-fA-F]+\.?|[0-9a-fA-F]*\.[0-9a-fA-F]+)[pP][+-]?[0-9]+[fFdD]?", re.ASCII
)
_TRIMMED = "".join(chr(c) for c in range(0x21))  # String.trim() strips every char <= ' '


def _integer(text: str) -> int | None:
    """The integer Java's parseInt/parseLong digits spell, or None if they spell none. More than
    20 significant digits is out of every range we check, so int() never sees them (it refuses
    strings past sys.get_int_max_str_digits())."""
    if len(text) < 19 and text.isdigit() and text.isascii():
        return int(text)  # the common case: plain ASCII digits, within the long range
    if not _JAVA_INTEGER.fullmatch(text):
        return None
    significant = text.lstrip("+-").lstrip("0") or "0"
    if len(significant) > 20:
        return None
    return -int(significant) if text[0] == "-" else int(significant)


def parse_int(text: str) -> JavaInt:
    """Integer.valueOf(text); a NumberFormatException becomes FilterEvaluationError."""
    value = _integer(text)
    if value is not None and INT_MIN <= value <= INT_MAX:
        return JavaInt(value)
    raise FilterEvaluationError(f"not a java int: {text!r}")


def parse_long(text: str) -> JavaLong:
    """Long.valueOf(text); a NumberFormatException becomes FilterEvaluationError."""
    value = _integer(text)
    if value is not None and LONG_MIN <= value <= LONG_MAX:
        return JavaLong(value)
    raise FilterEvaluationError(f"not a java long: {text!r}")


def parse_double(text: str) -> float:
    """Double.valueOf(text); a NumberFormatException becomes FilterEvaluationError."""
    trimmed = text.strip(_TRIMMED)
    if _JAVA_DECIMAL.fullmatch(trimmed):
        if trimmed[-1] in "fFdD" and not trimmed.endswith("Infinity"):
            trimmed = trimmed[:-1]
        return float(trimmed.replace("Infinity", "inf").replace("NaN", "nan"))
    if _JAVA_HEX.fullmatch(trimmed):
        return float.fromhex(trimmed.rstrip("fFdD"))
    raise FilterEvaluationError(f"not a java double: {text!r}")


def parse_boolean(text: str) -> bool:
    """Boolean.valueOf(text): "true" in any case is true, everything else false."""
    return text.lower() == "true"


def _double_bits(value: float) -> int:
    """Double.doubleToLongBits: the IEEE bits as a signed long, every NaN collapsed to one."""
    if math.isnan(value):
        return 0x7FF8000000000000
    return struct.unpack(">q", struct.pack(">d", value))[0]


def compare_doubles(left: float, right: float) -> int:
    """Double.compareTo: numeric order, then -0.0 < 0.0, and NaN above everything and equal to
    itself."""
    if left < right:
        return -1
    if left > right:
        return 1
    lbits, rbits = _double_bits(left), _double_bits(right)
    return (lbits > rbits) - (lbits < rbits)


def _order(left: Any, right: Any) -> int:
    # Integer/Long/Boolean.compareTo (false < true); String only ever needs == 0 here.
    return (left > right) - (left < right)


def compare(left: Any, right: Any) -> int:
    """ComparisonExpression.__compare with convertStringExpressions on (the parser always sets
    it): widen numbers, convert a String side to the other side's type, and answer -1 for
    pairs it cannot convert. Neither side may be None; both are Values.

    Raises FilterEvaluationError where Java throws: a String that does not parse as the other
    side's number type, and Boolean on the left of a String (its ``(String) lv`` cast fails).
    """
    lt, rt = type(left), type(right)
    if lt is rt:
        return compare_doubles(left, right) if lt is float else _order(left, right)
    if lt is str:
        if rt is bool:
            return _order(parse_boolean(left), right)
        return _compare_numbers(PARSE_AS[rt](left), right)
    if lt is bool:
        if rt is str:
            raise FilterEvaluationError("java.lang.ClassCastException: Boolean = String")
        return -1
    if rt is str:
        return _compare_numbers(left, PARSE_AS[lt](right))
    if rt is bool:
        return -1
    return _compare_numbers(left, right)


def _compare_numbers(left: Any, right: Any) -> int:
    """Two numbers after Java's widening: Integer with Long as longs, with Double as doubles."""
    if type(left) is float or type(right) is float:
        return compare_doubles(float(left), float(right))
    return _order(left, right)


def negate(value: Value) -> Value:
    """UnaryExpression.createNegate: numbers change sign in their own type (Java's two's
    complement wrap included); anything else (a String property, a Boolean) is NULL."""
    if isinstance(value, JavaInt):
        return JavaInt((-value + 2**31) % 2**32 - 2**31)
    if isinstance(value, JavaLong):
        return JavaLong((-value + 2**63) % 2**64 - 2**63)
    if isinstance(value, float):
        return -value
    return None


# The String -> number conversion __compare applies for each number type on the other side.
PARSE_AS: dict[type, Callable[[str], Any]] = {
    JavaInt: parse_int, JavaLong: parse_long, float: parse_double,
}
