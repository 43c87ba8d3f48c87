"""The parsed expression: a small tree of frozen dataclasses, one per RocketMQ expression class.

Every node keeps ``pos``, the source offset it was parsed from. Parentheses leave no node:
``(a)`` is the Property ``a``, as in SelectorParser.jj. BoolCast is never written: the parser
adds it where RocketMQ's asBooleanExpression wraps a bare property in a boolean context.
"""

from __future__ import annotations

from dataclasses import dataclass

from .values import Value


@dataclass(frozen=True, slots=True)
class Literal:
    """ConstantExpression: a number, a string, TRUE, FALSE or NULL (value None)."""

    value: Value
    pos: int


@dataclass(frozen=True, slots=True)
class Property:
    """PropertyExpression: a message property by its case-sensitive name; NULL when absent."""

    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class Negate:
    """Unary minus: a number changes sign, anything else is NULL."""

    operand: Node
    pos: int


@dataclass(frozen=True, slots=True)
class BoolCast:
    """A property used as a condition: NULL when absent, else FALSE (a String is no Boolean)."""

    operand: Property
    pos: int


@dataclass(frozen=True, slots=True)
class Not:
    """NOT: three-valued negation (NOT NULL is NULL)."""

    operand: Node
    pos: int


@dataclass(frozen=True, slots=True)
class Compare:
    """A comparison; ``op`` is one of = <> < <= > >=."""

    op: str
    left: Node
    right: Node
    pos: int


@dataclass(frozen=True, slots=True)
class IsNull:
    """IS NULL, or IS NOT NULL when ``negated``; never NULL itself."""

    operand: Node
    negated: bool
    pos: int


@dataclass(frozen=True, slots=True)
class Between:
    """BETWEEN low AND high (``value >= low AND value <= high``), or NOT BETWEEN when
    ``negated`` (``value < low OR value > high``)."""

    value: Node
    low: Node
    high: Node
    negated: bool
    pos: int


@dataclass(frozen=True, slots=True)
class In:
    """IN ('a', 'b'), or NOT IN when ``negated``: string membership of a property."""

    operand: Property
    values: frozenset[str]
    negated: bool
    pos: int


@dataclass(frozen=True, slots=True)
class And:
    """AND over two or more operands, evaluated left to right (chains are flattened)."""

    operands: tuple[Node, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Or:
    """OR over two or more operands, evaluated left to right (chains are flattened)."""

    operands: tuple[Node, ...]
    pos: int


Node = Literal | Property | Negate | BoolCast | Not | Compare | IsNull | Between | In | And | Or

# Nodes RocketMQ types as BooleanExpression (a Literal only when its value is a bool or NULL).
BOOLEAN_NODES = (BoolCast, Not, Compare, IsNull, Between, In, And, Or)


def is_boolean(node: Node) -> bool:
    """Whether RocketMQ's tree would hold a BooleanExpression here."""
    if isinstance(node, Literal):
        return node.value is None or type(node.value) is bool
    return isinstance(node, BOOLEAN_NODES)
