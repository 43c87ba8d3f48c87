"""Turns a parsed tree into nested closures, so a pull evaluates each message without
re-walking or re-parsing anything.

A closure takes the message's properties (str -> str) and returns a Value; the boolean ones
return True, False or None (SQL's unknown). The semantics are RocketMQ 4.9's expression classes:

    AND / OR     LogicExpression: FALSE (TRUE) wins, else NULL if either side is NULL
    NOT          UnaryExpression.createNOT: NULL stays NULL
    =            ComparisonExpression.doCreateEqual: NULL on the left gives NULL, NULL only on
                 the right gives FALSE, NULL on both sides gives TRUE; otherwise __compare == 0
    <>           NOT (=)
    < <= > >=    NULL if either side is NULL (the right side is then not evaluated); two Strings
                 are both read with Double.valueOf; otherwise __compare (values.compare)
    IS [NOT] NULL, [NOT] BETWEEN, [NOT] IN, unary minus, a bare property: see nodes.py

Where RocketMQ throws while evaluating, the closure raises FilterEvaluationError; the whole
expression then fails, in the same order of evaluation, as Java's exception does.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

from .nodes import (
    And,
    Between,
    BoolCast,
    Compare,
    In,
    IsNull,
    Literal,
    Negate,
    Node,
    Not,
    Or,
    Property,
)
from .values import PARSE_AS, Value, compare, compare_doubles, negate, parse_double

Props = Mapping[str, str]
Evaluator = Callable[[Props], Value]

_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}


def build(node: Node) -> Evaluator:
    """The closure evaluating ``node``."""
    if isinstance(node, Literal):
        return _constant(node.value)
    if isinstance(node, Property):
        name = node.name
        return lambda props: props.get(name)
    if isinstance(node, Negate):
        if isinstance(node.operand, Literal):
            return _constant(negate(node.operand.value))
        inner = build(node.operand)
        return lambda props: negate(inner(props))
    if isinstance(node, BoolCast):
        return _bool_cast(node.operand.name)
    if isinstance(node, Not):
        return _not(build(node.operand))
    if isinstance(node, Compare):
        return _comparison(node)
    if isinstance(node, IsNull):
        return _is_null(build(node.operand), node.negated)
    if isinstance(node, Between):
        return _between(node)
    if isinstance(node, In):
        return _in(node.operand.name, node.values, node.negated)
    if isinstance(node, And):
        return _and([build(operand) for operand in node.operands])
    if isinstance(node, Or):
        return _or([build(operand) for operand in node.operands])
    raise TypeError(f"not a filter node: {node!r}")


def _constant(value: Value) -> Evaluator:
    return lambda props: value


def _bool_cast(name: str) -> Evaluator:
    # createBooleanCast: a present property is a String, never a Boolean, so FALSE.
    return lambda props: None if props.get(name) is None else False


def _not(inner: Evaluator) -> Evaluator:
    def evaluate(props: Props) -> Value:
        value = inner(props)
        return None if value is None else not value
    return evaluate


def _is_null(inner: Evaluator, negated: bool) -> Evaluator:
    return lambda props: (inner(props) is None) is not negated


def _in(name: str, values: frozenset[str], negated: bool) -> Evaluator:
    def evaluate(props: Props) -> Value:
        value = props.get(name)
        if type(value) is not str:
            return None
        return (value in values) is not negated
    return evaluate


def _between(node: Between) -> Evaluator:
    """``prop BETWEEN 1 AND 5`` with bounds of one number type reads the property once; any
    other BETWEEN is evaluated as the two comparisons RocketMQ builds."""
    value, low, high = node.value, node.low, node.high
    if (isinstance(value, Property) and isinstance(low, Literal) and isinstance(high, Literal)
            and type(low.value) is type(high.value) and type(low.value) in PARSE_AS):
        return _property_between(value.name, low.value, high.value, node.negated)
    return build(_expand_between(node))


def _property_between(name: str, low: Any, high: Any, negated: bool) -> Evaluator:
    parse = PARSE_AS[type(low)]
    if isinstance(low, float):
        def position(number: Any) -> tuple[int, int]:
            return compare_doubles(number, low), compare_doubles(number, high)
    else:
        def position(number: Any) -> tuple[int, int]:
            return (number > low) - (number < low), (number > high) - (number < high)

    def evaluate(props: Props) -> Value:
        text = props.get(name)
        if text is None:
            return None
        below_low, above_high = position(parse(text))
        if negated:
            return below_low < 0 or above_high > 0
        return below_low >= 0 and above_high <= 0
    return evaluate


def _expand_between(node: Between) -> Node:
    """createBetween / createNotBetween: the AND (OR) of two comparisons."""
    if node.negated:
        return Or((Compare("<", node.value, node.low, node.pos),
                   Compare(">", node.value, node.high, node.pos)), node.pos)
    return And((Compare(">=", node.value, node.low, node.pos),
                Compare("<=", node.value, node.high, node.pos)), node.pos)


def _and(operands: list[Evaluator]) -> Evaluator:
    def evaluate(props: Props) -> Value:
        unknown = False
        for operand in operands:
            value = operand(props)
            if value is False:
                return False
            if value is None:
                unknown = True
        return None if unknown else True
    return evaluate


def _or(operands: list[Evaluator]) -> Evaluator:
    def evaluate(props: Props) -> Value:
        unknown = False
        for operand in operands:
            value = operand(props)
            if value is True:
                return True
            if value is None:
                unknown = True
        return None if unknown else False
    return evaluate


def _comparison(node: Compare) -> Evaluator:
    if node.op == "<>":
        return _not(_equal(node.left, node.right))
    if node.op == "=":
        return _equal(node.left, node.right)
    order = _ORDER[node.op]
    if isinstance(node.left, Property) and isinstance(node.right, Literal):
        parse = PARSE_AS.get(type(node.right.value))
        if parse is not None:
            return _property_against_number(node.left.name, order, parse, node.right.value)
    return _ordering(build(node.left), build(node.right), order)


def _equal(left_node: Node, right_node: Node) -> Evaluator:
    if (isinstance(left_node, Property) and isinstance(right_node, Literal)
            and type(right_node.value) is str):
        return _property_equals_string(left_node.name, right_node.value)
    left, right = build(left_node), build(right_node)

    def evaluate(props: Props) -> Value:
        lv, rv = left(props), right(props)
        if lv is None:
            return True if rv is None else None
        if rv is None:
            return False
        return compare(lv, rv) == 0
    return evaluate


def _property_equals_string(name: str, literal: str) -> Evaluator:
    def evaluate(props: Props) -> Value:
        value = props.get(name)
        return None if value is None else value == literal
    return evaluate


def _ordering(left: Evaluator, right: Evaluator,
              order: Callable[[Any, Any], bool]) -> Evaluator:
    def evaluate(props: Props) -> Value:
        lv = left(props)
        if lv is None:
            return None
        rv = right(props)
        if rv is None:
            return None
        if type(lv) is str and type(rv) is str:
            return order(compare_doubles(parse_double(lv), parse_double(rv)), 0)
        return order(compare(lv, rv), 0)
    return evaluate


def _property_against_number(name: str, order: Callable[[Any, Any], bool],
                             parse: Callable[[str], Any], literal: Value) -> Evaluator:
    """``prop < 3`` and friends, the common case: the property read as the literal's type."""
    if isinstance(literal, float):
        number = literal

        def evaluate_double(props: Props) -> Value:
            value = props.get(name)
            if value is None:
                return None
            return order(compare_doubles(parse_double(value), number), 0)
        return evaluate_double

    def evaluate_integer(props: Props) -> Value:
        value = props.get(name)
        if value is None:
            return None
        return order(parse(value), literal)
    return evaluate_integer
