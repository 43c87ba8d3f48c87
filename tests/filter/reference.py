"""An independent model of RocketMQ 4.9's SQL92 selector for the property tests: its own tree
(plain tuples), a renderer to SQL text with the fewest parentheses the grammar needs (plus
random extra ones), and a tree-walking evaluator written from the Java sources, not from
rmqstore.filter.

Tree nodes (tuples, first item is the tag):
    ("prop", name)                     ("int"|"long"|"double", value >= 0, suffix_l)
    ("str", text)                      ("bool", True|False)
    ("neg", node)                      ("paren", node)          extra parentheses, no meaning
    ("not", cond)                      ("and"|"or", cond, cond)
    ("rel", op, left, right)           op in < <= > >=
    ("eq", op, left, right)            op in = <>
    ("isnull", node, negated)          ("between", value, low, high, negated)
    ("in", prop_name, [texts], negated)
"""

from __future__ import annotations

import math
import unicodedata
from typing import Any

# Binding strength of each construct, loosest first; a child needs at least the level shown in
# the parent's rule of SelectorParser.jj or it is wrapped in parentheses.
OR, AND, EQUALITY, COMPARISON, UNARY, PRIMARY = range(6)
LEVEL = {"or": OR, "and": AND, "eq": EQUALITY, "isnull": EQUALITY, "rel": COMPARISON,
         "between": COMPARISON, "in": COMPARISON, "not": UNARY, "neg": UNARY}


class RefError(Exception):
    """Where Java throws while evaluating."""


# -- rendering ----------------------------------------------------------------------------

def render(node: tuple, keyword_case: str = "upper") -> str:
    """SQL text for ``node``; keywords in ``keyword_case`` (upper, lower or title)."""

    def kw(word: str) -> str:
        return {"upper": word.upper(), "lower": word.lower(), "title": word.title()}[keyword_case]

    def at_least(child: tuple, level: int) -> str:
        text = go(child)
        return text if level_of(child) >= level else f"({text})"

    def go(n: tuple) -> str:
        tag = n[0]
        if tag == "prop":
            return n[1]
        if tag in ("int", "long"):
            return str(n[1]) + ("L" if n[2] else "")
        if tag == "double":
            return repr(n[1])
        if tag == "str":
            return "'" + n[1].replace("'", "''") + "'"
        if tag == "bool":
            return kw("true" if n[1] else "false")
        if tag == "paren":
            return f"({go(n[1])})"
        if tag == "neg":
            return "- " + at_least(n[1], UNARY)
        if tag == "not":
            return kw("not") + " " + at_least(n[1], UNARY)
        if tag in ("and", "or"):
            level = AND if tag == "or" else EQUALITY
            return f" {kw(tag)} ".join(at_least(child, level) for child in n[1:])
        if tag == "rel":
            return f"{at_least(n[2], UNARY)} {n[1]} {at_least(n[3], UNARY)}"
        if tag == "eq":
            return f"{at_least(n[2], EQUALITY)} {n[1]} {at_least(n[3], COMPARISON)}"
        if tag == "isnull":
            return at_least(n[1], EQUALITY) + " " + kw("is not null" if n[2] else "is null")
        if tag == "between":
            word = kw("not between" if n[4] else "between")
            return (f"{at_least(n[1], UNARY)} {word} {at_least(n[2], UNARY)} {kw('and')} "
                    f"{at_least(n[3], UNARY)}")
        if tag == "in":
            items = ", ".join("'" + v.replace("'", "''") + "'" for v in n[2])
            return f"{n[1]} {kw('not in' if n[3] else 'in')} ({items})"
        raise AssertionError(n)

    return go(node)


def level_of(node: tuple) -> int:
    return LEVEL.get(node[0], PRIMARY)


# -- Java conversions, written from Integer.parseInt / FloatingDecimal / Boolean.valueOf ------

def java_integer(text: str, bits: int) -> int:
    body, sign = text, 1
    if body[:1] in ("+", "-"):
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    if not body or not all(unicodedata.category(c) == "Nd" for c in body):
        raise RefError(f"NumberFormatException {text!r}")
    value = 0
    for c in body:
        value = value * 10 + unicodedata.decimal(c)
        if value > 2 ** bits:
            raise RefError(f"overflow {text!r}")
    value *= sign
    if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
        raise RefError(f"overflow {text!r}")
    return value


def java_double(text: str) -> float:
    s = text.strip("".join(map(chr, range(33))))
    sign = ""
    if s[:1] in ("+", "-"):
        sign, s = s[0], s[1:]
    if s in ("NaN", "Infinity"):
        return float(sign + ("nan" if s == "NaN" else "inf"))
    if s[-1:] in ("f", "F", "d", "D") and s[:2] not in ("0x", "0X"):
        s = s[:-1]
    if s[:2] in ("0x", "0X"):
        if s[-1:] in ("f", "F", "d", "D"):
            s = s[:-1]
        if "p" not in s.lower():
            raise RefError(f"hex without exponent {text!r}")
        try:
            return float.fromhex(sign + s)
        except ValueError as exc:
            raise RefError(str(exc)) from exc
    mantissa, has_exponent, exponent = s.lower().partition("e")
    whole, _, fraction = mantissa.partition(".")
    core = whole + fraction
    ok = core != "" and core.isascii() and core.isdigit()
    if has_exponent:
        digits = exponent[1:] if exponent[:1] in ("+", "-") else exponent
        ok = ok and digits != "" and digits.isascii() and digits.isdigit()
    if not ok:
        raise RefError(f"NumberFormatException {text!r}")
    return float(sign + s)


def double_key(x: float) -> tuple:
    """Orders like Double.compareTo."""
    if math.isnan(x):
        return (1,)
    return (0, x, math.copysign(1.0, x))


def cmp(a: Any, b: Any) -> int:
    return (a > b) - (a < b)


def java_compare(lv: tuple, rv: tuple) -> int:
    """ComparisonExpression.__compare on typed values (kind, python value)."""
    (lk, left), (rk, right) = lv, rv
    numeric = {"int": 32, "long": 64}
    if lk == rk:
        return cmp(double_key(left), double_key(right)) if lk == "double" else cmp(left, right)
    if lk == "bool":
        if rk == "str":
            raise RefError("ClassCastException")
        return -1
    if lk == "str":
        if rk == "bool":
            return cmp(left.lower() == "true", right)
        if rk in numeric:
            return cmp(java_integer(left, numeric[rk]), right)
        return cmp(double_key(java_double(left)), double_key(right))
    if rk == "bool":
        return -1
    if rk == "str":
        if lk in numeric:
            return cmp(left, java_integer(right, numeric[lk]))
        return cmp(double_key(left), double_key(java_double(right)))
    if "double" in (lk, rk):
        return cmp(double_key(float(left)), double_key(float(right)))
    return cmp(left, right)


# -- evaluation -----------------------------------------------------------------------------

def value(node: tuple, props: dict[str, str]) -> tuple | None:
    """A non-condition operand as (kind, python value), or None for NULL."""
    tag = node[0]
    if tag == "paren":
        return value(node[1], props)
    if tag == "prop":
        v = props.get(node[1])
        return None if v is None else ("str", v)
    if tag in ("int", "long", "double", "str", "bool"):
        kind = tag
        if tag == "int" and not -(2 ** 31) <= node[1] < 2 ** 31:
            kind = "long"
        if tag == "long" and -(2 ** 31) <= node[1] < 2 ** 31:
            kind = "int"
        return (kind, node[1])
    if tag == "neg":
        inner = value(node[1], props)
        if inner is None or inner[0] not in ("int", "long", "double"):
            return None
        return (inner[0], -inner[1])
    result = truth(node, props)
    return None if result is None else ("bool", result)


def truth(node: tuple, props: dict[str, str]) -> bool | None:
    """A condition: True, False or None (unknown); raises RefError where Java throws."""
    tag = node[0]
    if tag == "paren":
        return truth(node[1], props)
    if tag == "prop":
        return None if node[1] not in props else False
    if tag == "bool":
        return node[1]
    if tag == "not":
        inner = truth(node[1], props)
        return None if inner is None else not inner
    if tag == "and":
        a = truth(node[1], props)
        if a is False:
            return False
        b = truth(node[2], props)
        if b is False:
            return False
        return None if None in (a, b) else True
    if tag == "or":
        a = truth(node[1], props)
        if a is True:
            return True
        b = truth(node[2], props)
        if b is True:
            return True
        return None if None in (a, b) else False
    if tag == "rel":
        return ordered(node[1], node[2], node[3], props)
    if tag == "eq":
        lv, rv = value(node[2], props), value(node[3], props)
        if lv is None and rv is None:
            result: bool | None = True
        elif lv is None:
            result = None
        elif rv is None:
            result = False
        else:
            result = java_compare(lv, rv) == 0
        if node[1] == "<>" and result is not None:
            return not result
        return result
    if tag == "isnull":
        return (value(node[1], props) is None) != node[2]
    if tag == "between":
        if node[4]:
            return truth(("or", ("rel", "<", node[1], node[2]),
                          ("rel", ">", node[1], node[3])), props)
        return truth(("and", ("rel", ">=", node[1], node[2]),
                      ("rel", "<=", node[1], node[3])), props)
    if tag == "in":
        v = props.get(node[1])
        return None if v is None else ((v in node[2]) != node[3])
    raise AssertionError(node)


def ordered(op: str, left: tuple, right: tuple, props: dict[str, str]) -> bool | None:
    lv = value(left, props)
    if lv is None:
        return None
    rv = value(right, props)
    if rv is None:
        return None
    if lv[0] == rv[0] == "str":
        c = cmp(double_key(java_double(lv[1])), double_key(java_double(rv[1])))
    else:
        c = java_compare(lv, rv)
    return {"<": c < 0, "<=": c <= 0, ">": c > 0, ">=": c >= 0}[op]
