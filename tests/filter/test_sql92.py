"""Known answers for the SQL92 filter: RocketMQ's documentation and its own ExpressionTest /
ParserTest cases, precedence, the Java quirks we reproduce on purpose, and malformed
expressions refused with a position."""

from __future__ import annotations

import pytest

from rmqstore.filter import Filter, FilterEvaluationError, FilterSyntaxError, compile, parse
from rmqstore.filter.nodes import And, Between, BoolCast, Compare, Not, Or, Property
from rmqstore.filter.sql92 import MAX_DEPTH

DOC_SELECTOR = ("TAGS is not null and TAGS in ('TagA', 'TagB') "
                "and (a is not null and a between 0 and 3)")


def shape(node: object) -> object:
    """A tree without source positions, for comparing parses of differently spaced text."""
    if isinstance(node, tuple):
        return tuple(shape(item) for item in node)
    fields = getattr(node, "__dataclass_fields__", None)
    if fields is None:
        return node
    return (type(node).__name__,) + tuple(
        shape(getattr(node, name)) for name in fields if name != "pos")


def outcome(expression: str, **props: str) -> object:
    """True / False / None, or "error" where RocketMQ's evaluation throws."""
    try:
        return compile(expression).evaluate(props)
    except FilterEvaluationError:
        return "error"


# -- RocketMQ documentation (filter by SQL92) ----------------------------------------------

@pytest.mark.parametrize("a, expected", [("0", True), ("3", True), ("2", True), ("4", False),
                                         ("-1", False)])
def test_docs_between(a: str, expected: bool) -> None:
    assert compile("a between 0 and 3").matches({"a": a}) is expected


@pytest.mark.parametrize("props, expected", [
    ({"TAGS": "TagA", "a": "1"}, True),
    ({"TAGS": "TagB", "a": "3"}, True),
    ({"TAGS": "TagC", "a": "1"}, False),
    ({"TAGS": "TagA", "a": "7"}, False),
    ({"TAGS": "TagA"}, False),
    ({"a": "1"}, False),
])
def test_docs_tags_and_property(props: dict[str, str], expected: bool) -> None:
    assert compile(DOC_SELECTOR).matches(props) is expected


def test_docs_constant_kinds() -> None:
    assert outcome("a = 123", a="123") is True
    assert outcome("a > 3.1415", a="3.2") is True
    assert outcome("a = 'abc'", a="abc") is True
    assert outcome("a IS NULL") is True
    assert outcome("TRUE") is True and outcome("FALSE") is False


# -- RocketMQ's ExpressionTest / ParserTest ------------------------------------------------

@pytest.mark.parametrize("expression, props, expected", [
    ("a=3 and b<>4 And c>5 AND d<=4", {"a": "3", "b": "5", "c": "6", "d": "1"}, True),
    ("a=3 and b<>4 And c>5 AND d<=4", {"a": "4", "b": "5", "c": "6", "d": "1"}, False),
    ("a=3 or b<>4 Or c>5 OR d<=4", {"a": "3"}, True),
    ("a=3 or b<>4 Or c>5 OR d<=4", {"a": "4", "b": "5"}, True),
    ("a=3 or b<>4 Or c>5 OR d<=4", {"a": "4", "b": "4", "c": "3", "d": "2"}, True),
    ("a=3 or b<>4 Or c>5 OR d<=4", {"a": "4", "b": "4", "c": "3", "d": "10"}, False),
    ("a in ('3', '4', '5')", {"a": "4"}, True),
    ("a in ('3', '4', '5')", {"a": "8"}, False),
    ("a not in ('3', '4', '5')", {"a": "8"}, True),
    ("a not in ('3', '4', '5')", {"a": "5"}, False),
    ("a between 2 and 10", {"a": "10"}, True),
    ("a between 2 and 10", {"a": "11"}, False),
    ("a not between 2 and 10", {"a": "1"}, True),
    ("a not between 2 and 10", {"a": "3"}, False),
    ("a is null", {"abc": "2"}, True),
    ("a is not null", {"abc": "2"}, False),
    ("a is not null and a='hello'", {"a": "hello"}, True),
    ("a is not null and a='hello'", {}, False),
    ("a=TRUE OR b=FALSE", {"a": "true", "b": "false"}, True),
    ("a=TRUE OR b=FALSE", {"a": "false", "b": "true"}, False),
    ("a is null OR a='hello'", {}, True),
    ("a is null OR a='hello'", {"a": "abc"}, False),
    ("TAGS is not null and TAGS='''''tag'''''", {"TAGS": "''tag''"}, True),
    ("a > 3.1E10", {"a": str(3.1415e10)}, True),
    ("a > 3.14", {"a": "3.1415"}, True),
    ("a > b", {"a": "10", "b": "20"}, False),
    ("a > b", {"a": "20", "b": "10"}, True),
    ("a=b", {"a": "3.14", "b": "3.14"}, True),
    ("a<>b", {"a": "3.14", "b": "3.141"}, True),
    ("a <= now", {"a": "1", "now": "2"}, True),
])
def test_rocketmq_expression_cases(expression: str, props: dict[str, str],
                                   expected: bool) -> None:
    assert compile(expression).matches(props) is expected


@pytest.mark.parametrize("expression, props", [
    ("key is not null and key between 0 and 100", {"key": "con"}),
    ("a between 0 and 100", {"a": "abc"}),
    ("a between up and low", {"a": "3.14", "up": "up", "low": "low"}),
])
def test_rocketmq_string_compare_throws(expression: str, props: dict[str, str]) -> None:
    with pytest.raises(FilterEvaluationError):
        compile(expression).evaluate(props)
    assert compile(expression).matches(props) is False


@pytest.mark.parametrize("expression", [
    "a and between 2 and 10", " a between 10 and 0", "a > 100000000000000000000000",
    "a > 1" + "1" * 400 + ".5",
])
def test_rocketmq_parser_refusals(expression: str) -> None:
    with pytest.raises(FilterSyntaxError):
        compile(expression)


def test_whitespace_case_and_comments_do_not_change_the_tree() -> None:
    spaced = "a=3  and    b<>4 AND c>5 and /* note */ d<=4 -- trailing\n"
    assert shape(parse("a=3 and b<>4 And c>5 AND d<=4")) == shape(parse(spaced))
    tree = parse(spaced)
    assert isinstance(tree, And) and len(tree.operands) == 4


# -- precedence: NOT > comparisons > equality > AND > OR ------------------------------------

def test_and_binds_tighter_than_or() -> None:
    tree = parse("a = '1' OR b = '1' AND c = '1'")
    assert isinstance(tree, Or) and isinstance(tree.operands[1], And)
    assert outcome("a = '1' OR b = '1' AND c = '1'", a="1", b="0", c="0") is True
    assert outcome("(a = '1' OR b = '1') AND c = '1'", a="1", b="0", c="0") is False


def test_not_binds_tighter_than_and_and_or() -> None:
    # (NOT a) = 'x': Boolean against String throws in RocketMQ (see the next test).
    assert outcome("NOT a = 'x' AND TRUE", a="y") == "error"
    assert outcome("NOT (a = 'x') AND TRUE", a="y") is True
    assert outcome("NOT FALSE OR FALSE") is True
    assert outcome("NOT (FALSE OR TRUE)") is False
    assert outcome("NOT TRUE AND FALSE OR TRUE") is True


def test_not_binds_tighter_than_comparison_as_in_rocketmq() -> None:
    # SelectorParser.jj puts NOT in unaryExpr: NOT a = 1 is (NOT a) = 1, and a present String
    # property cast to a boolean is FALSE, so NOT gives TRUE, and TRUE = 1 is FALSE.
    tree = parse("NOT a = 1")
    assert isinstance(tree, Compare) and isinstance(tree.left, Not)
    assert isinstance(tree.left.operand, BoolCast)
    assert outcome("NOT a = 1", a="1") is False
    assert outcome("NOT (a = 1)", a="1") is False
    assert outcome("NOT (a = 1)", a="2") is True
    with pytest.raises(FilterSyntaxError):
        compile("NOT a > 1")          # a condition cannot be ordered
    with pytest.raises(FilterSyntaxError):
        compile("NOT a IN ('x')")     # IN needs a property on its left


def test_equality_is_looser_than_ordering() -> None:
    assert outcome("a > 1 = TRUE", a="2") is True
    assert outcome("a = 1 = TRUE", a="1") is True
    assert outcome("a = 1 = FALSE", a="1") is False
    with pytest.raises(FilterSyntaxError):
        compile("a > 1 > 0")


def test_between_takes_its_and() -> None:
    tree = parse("a BETWEEN 1 AND 2 AND b = 'x'")
    assert isinstance(tree, And) and isinstance(tree.operands[0], Between)
    assert outcome("a BETWEEN 1 AND 2 AND b = 'x'", a="2", b="x") is True
    assert outcome("a BETWEEN -3 AND -1", a="-2") is True


# -- NULL and three-valued logic (RocketMQ's, not textbook SQL) -----------------------------

def test_missing_property_is_unknown() -> None:
    assert outcome("a > 1") is None
    assert outcome("a = 'x'") is None
    assert outcome("a <> 'x'") is None
    assert outcome("a IN ('x')") is None and outcome("a NOT IN ('x')") is None
    assert outcome("a BETWEEN 1 AND 2") is None
    assert outcome("a NOT BETWEEN 1 AND 2") is None


def test_kleene_and_or() -> None:
    assert outcome("a > 1 AND FALSE") is False
    assert outcome("a > 1 AND TRUE") is None
    assert outcome("a > 1 OR TRUE") is True
    assert outcome("a > 1 OR FALSE") is None
    assert outcome("NOT (a > 1)") is None
    assert compile("NOT (a > 1)").matches({}) is False


def test_equality_null_rules_are_asymmetric() -> None:
    # doCreateEqual: NULL on the left is unknown, NULL only on the right is FALSE, both TRUE.
    assert outcome("a = 3") is None
    assert outcome("3 = a") is False
    assert outcome("3 <> a") is True
    assert outcome("a = b") is True
    assert outcome("a <> b") is False
    assert outcome("a IS NULL") is True and outcome("a IS NOT NULL") is False


def test_bare_property_is_never_true() -> None:
    # createBooleanCast: a present property is a String, not a Boolean, so FALSE.
    assert outcome("a", a="true") is False
    assert outcome("a") is None
    assert outcome("NOT a", a="true") is True


# -- numbers: property values are read as the literal's Java type ---------------------------

@pytest.mark.parametrize("expression, a, expected", [
    ("a = 3", "3", True), ("a = 3", "+3", True), ("a = 3", "03", True),
    ("a = 3", "3.0", "error"), ("a = 3", " 3", "error"), ("a = 3", "x", "error"),
    ("a > 3", "3.5", "error"),                       # Integer.valueOf("3.5") throws
    ("a > 3.0", "3.5", True), ("a = 3.0", " 3 ", True), ("a = 3.0", "3d", True),
    ("a = 3.0", "0x1.8p1", True), ("a = 3.0", "3e0", True), ("a > 3.0", "inf", "error"),
    ("a > 3.0", "Infinity", True), ("a > 3.0", "NaN", True),   # Double.compareTo: NaN on top
    ("a = 3", "2147483648", "error"), ("a = 2147483648", "2147483648", True),
    ("a < 9223372036854775807", "9223372036854775806", True),
    ("a = 5L", "5", True), ("a = -5", "-5", True), ("a = - -5", "5", True),
    ("a = TRUE", "True", True), ("a = FALSE", "anything", True),    # Boolean.valueOf
    ("TRUE = a", "true", "error"),                 # __compare's (String) cast of a Boolean
    ("a = '3'", "3", True), ("a = '3'", "3.0", False), ("3 = '3'", "", True),
    ("-a > 1", "5", None),                         # negating a String is NULL
    ("a > b", "1", None),                          # b missing
    ("b > a", "1", None),
])
def test_numeric_conversions(expression: str, a: str, expected: object) -> None:
    assert outcome(expression, a=a) == expected


def test_decimal_literal_ranges_follow_constant_expression() -> None:
    for text in ("0.0", "0.", ".0", "0e5", "1e-400", "1e400"):
        with pytest.raises(FilterSyntaxError):
            compile(f"a > {text}")
    assert outcome("a > 4.9E-324", a="1") is True
    assert outcome("a > 9223372036854775807L", a="1") is False


# -- syntax errors -------------------------------------------------------------------------

@pytest.mark.parametrize("expression, position, fragment", [
    ("", 0, "expected a value"),
    ("a =", 3, "end of expression"),
    ("a = 1 b = 2", 6, "after a complete expression"),
    ("a = 'x", 4, "unterminated string"),
    ("a != 1", 2, "'!='"),
    ('a = "x"', 4, "single quotes"),
    ("a IN 'x'", 5, "'(' after IN"),
    ("a IN ()", 6, "string literal in the IN list"),
    ("a IN (1, 2)", 6, "string literal in the IN list"),
    ("a IN ('x' 'y')", 10, "',' or ')'"),
    ("3 IN ('x')", 0, "IN needs a property"),
    ("(a = 1", 6, "')'"),
    ("a = 1)", 5, "after a complete expression"),
    ("a IS 1", 5, "NULL after IS"),
    ("a IS NOT 1", 9, "NULL after IS NOT"),
    ("a BETWEEN 1 2", 12, "AND between the bounds"),
    ("a BETWEEN 3 AND 1", 10, "low <= high"),
    ("a BETWEEN 'a' AND 'b'", 10, "cannot be compared"),
    ("a > 'x'", 4, "cannot be compared"),
    ("a > TRUE", 4, "cannot be compared"),
    ("a = NULL", 4, "use IS NULL"),
    ("TRUE = 1", 0, "cannot be compared"),
    ("a = 1 AND 3", 10, "not a condition"),
    ("3", 0, "not a condition"),
    ("NOT 'x'", 4, "not a condition"),
    ("a = 0L", 5, "after a complete expression"),
    ("a.b = 1", 1, "unexpected character '.'"),
    ("a = 1 /* open", 6, "unterminated comment"),
    ("a CONTAINS 'x'", 2, "after a complete expression"),     # a 5.x keyword, not 4.9
    ("a STARTSWITH 'x'", 2, "after a complete expression"),
    ("a = 1 ;", 6, "unexpected character ';'"),
    ("a = 9223372036854775808", 4, "64-bit range"),
    ("été = 1", 0, "unexpected character"),
])
def test_syntax_errors(expression: str, position: int, fragment: str) -> None:
    with pytest.raises(FilterSyntaxError) as caught:
        compile(expression)
    error = caught.value
    assert error.position == position, str(error)
    assert fragment in error.reason, str(error)
    assert error.expression == expression
    assert error.pointer().splitlines()[1] == " " * position + "^"


def test_nesting_is_bounded() -> None:
    ok = "(" * (MAX_DEPTH - 1) + "a = 1" + ")" * (MAX_DEPTH - 1)
    assert compile(ok).matches({"a": "1"})
    with pytest.raises(FilterSyntaxError, match="nests deeper"):
        compile("(" * (MAX_DEPTH + 1) + "a = 1" + ")" * (MAX_DEPTH + 1))
    with pytest.raises(FilterSyntaxError, match="nests deeper"):
        compile("NOT " * 1000 + "TRUE")
    with pytest.raises(FilterSyntaxError, match="nests deeper"):
        compile("a IS NULL" + " IS NULL" * 1000)


def test_long_flat_chains_evaluate() -> None:
    chain = " AND ".join(f"p{i} = '{i}'" for i in range(2000))
    selector = compile(chain)
    assert selector.matches({f"p{i}": str(i) for i in range(2000)})
    assert not selector.matches({})


# -- lexing details --------------------------------------------------------------------------

def test_keywords_any_case_and_names_case_sensitive() -> None:
    assert outcome("a iS nOt NuLl aNd A = 'y'", a="x", A="y") is True
    assert outcome("A = 'y'", a="y") is None
    assert isinstance(parse("inx"), BoolCast)          # longer than the keyword IN: an ID
    assert shape(parse("$x_1 = 'v'")) == shape(parse("$x_1='v'"))
    assert isinstance(parse("(a)").operand, Property)  # type: ignore[union-attr]


def test_comments_and_minus_signs() -> None:
    assert outcome("a = 1 -- note\n", a="1") is True
    assert outcome("a /* x */ = 1", a="1") is True
    assert outcome("a = --1", a="1") is True            # no newline: two minus signs, as JavaCC
    with pytest.raises(FilterSyntaxError):
        compile("a = 1 -- note")                         # RocketMQ ignores the tail; we refuse


def test_string_literals() -> None:
    assert outcome("a = 'it''s'", a="it's") is True
    assert outcome("a = ''", a="") is True
    assert outcome("a = 'x\ny'", a="x\ny") is True


# -- compile cache and the Filter object ------------------------------------------------------

def test_compile_is_cached_and_filter_is_shareable() -> None:
    first = compile("a = 'cached'")
    assert compile("a = 'cached'") is first
    assert isinstance(first, Filter) and first.expression == "a = 'cached'"
    assert hash(first) == hash(compile("a = 'cached'"))


def test_matches_is_false_on_evaluation_error() -> None:
    selector = compile("a > 1 OR b = 'x'")
    assert selector.matches({"a": "oops", "b": "x"}) is False    # RocketMQ: left side throws
    assert selector.matches({"a": "2", "b": "oops"}) is True     # short-circuit: never read b
