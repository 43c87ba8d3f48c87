"""Parser for RocketMQ's SQL92 message selector (MessageSelector.bySql), 4.9.x grammar.

Recursive descent over SelectorParser.jj, loosest binding first:

    or          := and (OR and)*
    and         := equality (AND equality)*
    equality    := comparison ( '=' comparison | '<>' comparison | IS NULL | IS NOT NULL )*
    comparison  := unary ( ('>'|'>='|'<'|'<=') unary
                         | [NOT] BETWEEN unary AND unary
                         | [NOT] IN '(' STRING (',' STRING)* ')' )*
    unary       := '+' unary | '-' unary | NOT unary | primary
    primary     := literal | ID | '(' or ')'

So NOT binds tighter than every comparison: ``NOT a = 1`` is ``(NOT a) = 1``, as in RocketMQ.
The checks RocketMQ makes while building its tree (ComparisonExpression.checkLessThanOperand,
checkEqualOperand, createBetween's bound order, createInFilter's property, ConstantExpression's
literal ranges, asBooleanExpression) are made here too and raise FilterSyntaxError.

One deliberate difference: RocketMQ's JmsSelector() stops after the first complete expression
and ignores what follows (``a = 1 b = 2`` subscribes to ``a = 1``); here trailing tokens are an
error. Nesting deeper than MAX_DEPTH is refused so parsing and evaluation stay within Python's
recursion limit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn

from .errors import FilterSyntaxError
from .lexer import DECIMAL, EOF, FLOAT, ID, PUNCT, STRING, Token, tokenize
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
    is_boolean,
)
from .values import INT_MAX, INT_MIN, LONG_MAX, JavaInt, JavaLong, compare

MAX_DEPTH = 64
_DOUBLE_MIN_VALUE = 5e-324  # Double.MIN_VALUE: the smallest positive double
_RELATIONAL = ("<", "<=", ">", ">=")


def parse(expression: str) -> Node:
    """The tree of ``expression``; its root is always boolean (a bare property is cast).

    Raises FilterSyntaxError for anything RocketMQ 4.9 refuses at subscription, and for
    trailing tokens after a complete expression.
    """
    return _Parser(expression).parse()


class _Parser:
    """One parse: a token list and a cursor."""

    def __init__(self, expression: str) -> None:
        self.expression = expression
        self.tokens = tokenize(expression)
        self.index = 0
        self.depth = 0

    # -- token helpers -------------------------------------------------------------------

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def at(self, kind: str, text: str | None = None, ahead: int = 0) -> bool:
        token = self.peek(ahead)
        return token.kind == kind and (text is None or token.text == text)

    def take(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def expect(self, kind: str, text: str | None, what: str) -> Token:
        if not self.at(kind, text):
            self.fail(f"expected {what}, found {self.describe(self.peek())}", self.peek().pos)
        return self.take()

    def fail(self, reason: str, pos: int) -> NoReturn:
        raise FilterSyntaxError(reason, self.expression, pos)

    @staticmethod
    def describe(token: Token) -> str:
        if token.kind == EOF:
            return "end of expression"
        if token.kind == STRING:
            return "a string literal"
        return repr(token.text)

    # -- grammar ---------------------------------------------------------------------------

    def parse(self) -> Node:
        root = self.boolean(self.or_expression())
        if not self.at(EOF):
            token = self.peek()
            self.fail(f"unexpected {self.describe(token)} after a complete expression", token.pos)
        return root

    def or_expression(self) -> Node:
        first = self.and_expression()
        operands = [first]
        while self.at("OR"):
            self.take()
            right = self.and_expression()
            operands[0] = self.boolean(first)
            operands.append(self.boolean(right))
        if len(operands) == 1:
            return first
        return Or(_flatten(Or, operands), first.pos)

    def and_expression(self) -> Node:
        first = self.equality()
        operands = [first]
        while self.at("AND"):
            self.take()
            right = self.equality()
            operands[0] = self.boolean(first)
            operands.append(self.boolean(right))
        if len(operands) == 1:
            return first
        return And(_flatten(And, operands), first.pos)

    def equality(self) -> Node:
        left = self.comparison()
        links = 0  # a chain like a = b = c nests to the left, one level per link
        while True:
            token = self.peek()
            if self.depth + links >= MAX_DEPTH and (self.at(PUNCT, "=") or self.at(PUNCT, "<>")
                                                    or self.at("IS")):
                self.fail(f"expression nests deeper than {MAX_DEPTH} levels", token.pos)
            links += 1
            if self.at(PUNCT, "=") or self.at(PUNCT, "<>"):
                self.take()
                right = self.comparison()
                self.check_equal_operands(left, right, token)
                left = Compare(token.text, left, right, token.pos)
            elif self.at("IS"):
                self.take()
                negated = self.at("NOT")
                if negated:
                    self.take()
                self.expect("NULL", None, "NULL after IS" + (" NOT" if negated else ""))
                left = IsNull(left, negated, token.pos)
            else:
                return left

    def comparison(self) -> Node:
        left = self.unary()
        while True:
            token = self.peek()
            if token.kind == PUNCT and token.text in _RELATIONAL:
                self.take()
                right = self.unary()
                self.check_relational_operand(left, token)
                self.check_relational_operand(right, token)
                left = Compare(token.text, left, right, token.pos)
            elif self.at("BETWEEN") or (self.at("NOT") and self.at("BETWEEN", ahead=1)):
                left = self.between(left)
            elif self.at("IN") or (self.at("NOT") and self.at("IN", ahead=1)):
                left = self.in_list(left)
            else:
                return left

    def between(self, value: Node) -> Node:
        token = self.peek()
        negated = token.kind == "NOT"
        self.index += 2 if negated else 1
        low = self.unary()
        self.expect("AND", None, "AND between the bounds of BETWEEN")
        high = self.unary()
        for operand in (value, low, high):
            self.check_relational_operand(operand, token)
        if not negated and isinstance(low, Literal) and isinstance(high, Literal):
            self.check_between_bounds(low, high)
        return Between(value, low, high, negated, token.pos)

    def in_list(self, operand: Node) -> Node:
        token = self.peek()
        negated = token.kind == "NOT"
        self.index += 2 if negated else 1
        self.expect(PUNCT, "(", "'(' after IN")
        values = [self.expect(STRING, None, "a string literal in the IN list").text]
        while self.at(PUNCT, ","):
            self.take()
            values.append(self.expect(STRING, None, "a string literal in the IN list").text)
        self.expect(PUNCT, ")", "',' or ')' in the IN list")
        if not isinstance(operand, Property):
            self.fail("IN needs a property on its left", operand.pos)
        return In(operand, frozenset(values), negated, token.pos)

    def unary(self) -> Node:
        token = self.peek()
        if (token.kind == PUNCT and token.text in ("+", "-")) or token.kind == "NOT":
            self.take()
            operand = self.nested(self.unary, token)
            if token.text == "+":
                return operand
            if token.text == "-":
                return Negate(operand, token.pos)
            return Not(self.boolean(operand), token.pos)
        return self.primary()

    def primary(self) -> Node:
        token = self.take()
        if token.kind == ID:
            return Property(token.text, token.pos)
        if token.kind == STRING:
            return Literal(token.text, token.pos)
        if token.kind == DECIMAL:
            return Literal(self.integer(token), token.pos)
        if token.kind == FLOAT:
            return Literal(self.decimal(token), token.pos)
        if token.kind in ("TRUE", "FALSE", "NULL"):
            return Literal({"TRUE": True, "FALSE": False, "NULL": None}[token.kind], token.pos)
        if token.kind == PUNCT and token.text == "(":
            inner = self.nested(self.or_expression, token)
            self.expect(PUNCT, ")", "')'")
            return inner
        return self.fail(f"expected a value, property or '(', found {self.describe(token)}",
                         token.pos)

    def nested(self, rule: Callable[[], Node], token: Token) -> Node:
        """Run ``rule`` one nesting level deeper, refusing past MAX_DEPTH."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(f"expression nests deeper than {MAX_DEPTH} levels", token.pos)
        node = rule()
        self.depth -= 1
        return node

    # -- literals (ConstantExpression.createFromDecimal / createFloat) ----------------------

    def integer(self, token: Token) -> JavaInt | JavaLong:
        value = int(token.text.rstrip("lL"))
        if value > LONG_MAX:
            self.fail(f"integer literal {token.text} is out of the 64-bit range", token.pos)
        if INT_MIN <= value <= INT_MAX:
            return JavaInt(value)
        return JavaLong(value)

    def decimal(self, token: Token) -> float:
        value = float(token.text)
        if value == float("inf"):
            self.fail(f"decimal literal {token.text} is beyond the double range", token.pos)
        if value < _DOUBLE_MIN_VALUE:
            # createFloat refuses anything under Double.MIN_VALUE, so 0.0 itself is refused.
            self.fail(f"decimal literal {token.text} is below Double.MIN_VALUE (4.9E-324); "
                      "RocketMQ refuses zero decimals, write 0", token.pos)
        return value

    # -- RocketMQ's construction-time checks ------------------------------------------------

    def boolean(self, node: Node) -> Node:
        """asBooleanExpression: booleans pass, a property is cast, anything else is refused."""
        if is_boolean(node):
            return node
        if isinstance(node, Property):
            return BoolCast(node, node.pos)
        return self.fail("expression is not a condition (it will not result in a boolean)",
                         node.pos)

    def check_relational_operand(self, node: Node, op: Token) -> None:
        """checkLessThanOperand: only numbers, properties and negations can be ordered."""
        if isinstance(node, Literal):
            if type(node.value) in (JavaInt, JavaLong, float):
                return
            self.fail(f"{_literal_text(node)} cannot be compared with {op.text}", node.pos)
        if is_boolean(node):
            self.fail(f"a condition cannot be compared with {op.text}", node.pos)

    def check_equal_operands(self, left: Node, right: Node, op: Token) -> None:
        """checkEqualOperand (no NULL literal) and checkEqualOperandCompatability."""
        for node in (left, right):
            if isinstance(node, Literal) and node.value is None:
                self.fail(f"NULL cannot be compared with {op.text}, use IS NULL", node.pos)
        if (isinstance(left, Literal) and isinstance(right, Literal)
                and type(left.value) is bool and type(right.value) is not bool):
            self.fail(f"{_literal_text(left)} cannot be compared with {_literal_text(right)}",
                      left.pos)

    def check_between_bounds(self, low: Literal, high: Literal) -> None:
        """createBetween: constant bounds must be in order (they are numbers by now)."""
        if compare(high.value, low.value) < 0:
            self.fail(f"BETWEEN needs low <= high, got {_literal_text(low)} and "
                      f"{_literal_text(high)}", low.pos)


def _flatten(kind: type[And | Or], operands: list[Node]) -> tuple[Node, ...]:
    """Operands of an AND (OR) chain with nested ANDs (ORs) spliced in; same result and
    evaluation order, since both are associative under RocketMQ's short-circuit rules."""
    flat: list[Node] = []
    for operand in operands:
        if isinstance(operand, kind):
            flat.extend(operand.operands)
        else:
            flat.append(operand)
    return tuple(flat)


def _literal_text(node: Literal) -> str:
    value = node.value
    if value is None:
        return "NULL"
    if type(value) is bool:
        return "TRUE" if value else "FALSE"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value) if isinstance(value, float) else str(int(value))
