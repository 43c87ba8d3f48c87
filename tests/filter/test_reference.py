"""Hypothesis: random expression trees rendered to SQL text, parsed and evaluated by
rmqstore.filter, agree with the independent model in reference.py on random properties;
random text either compiles or raises FilterSyntaxError, nothing else."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rmqstore.filter import FilterEvaluationError, FilterSyntaxError, compile

from .reference import RefError, render, truth

SETTINGS = settings(max_examples=1000, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

NAMES = ["a", "b", "c", "TAGS"]
TRICKY_VALUES = [
    "", "0", "3", "-2", "+4", " 4", "4 ", "3.5", "1e3", "1E3", ".5", "5.", "abc", "true", "TRUE",
    "false", "NaN", "-NaN", "Infinity", "-Infinity", "inf", "-0.0", "0.0", "2147483647",
    "2147483648", "-2147483649", "9223372036854775807", "9223372036854775808", "1d", "2.5f",
    "0x10", "0x1p4", "0x1.8P1d", "\u0661\u0662", "TagA", "TagB", "it's", "1_000", "\t7\n", "00012",
    "\x017", "\u00a07", "True", "yes",
]


def weighted(*choices: tuple[int, st.SearchStrategy]) -> st.SearchStrategy:
    """One of the strategies, picked in proportion to its weight (``|`` flattens nested
    one_of branches, which would dilute a single branch among many)."""
    pool = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.integers(0, len(pool) - 1).flatmap(lambda i: pool[i])


names = st.sampled_from(NAMES)
prop = names.map(lambda n: ("prop", n))
integer_literal = st.tuples(st.just("int"), st.integers(0, 12) | st.integers(0, 2**31 - 1),
                            st.booleans()).map(lambda t: t if t[1] else ("int", 0, False))
long_literal = st.tuples(st.just("long"), st.integers(2**31, 2**63 - 1), st.booleans())
double_literal = st.tuples(
    st.just("double"),
    st.sampled_from([0.5, 1.0, 2.5, 3.0, 10.0, 1e10, 1e-3])
    | st.floats(min_value=5e-324, max_value=1e308),
    st.just(False))
number_literal = integer_literal | long_literal | double_literal
number = number_literal | number_literal.map(lambda n: ("neg", n))
string_literal = (st.sampled_from(TRICKY_VALUES) | st.text(max_size=4)).map(lambda s: ("str", s))
bool_literal = st.booleans().map(lambda b: ("bool", b))
orderable = weighted((4, prop), (5, number), (1, prop.map(lambda p: ("neg", p))))
comparable = weighted((4, prop), (3, number), (2, string_literal), (2, bool_literal))
# Numbers near the literals the trees use, so bounds and equalities are hit exactly.
NEAR_LITERALS = [str(i) for i in range(-2, 14)] + ["0.5", "1.0", "2.5", "3.0", "10.0", "NaN",
                                                   "-0.0", "Infinity"]
prop_values = weighted((4, st.sampled_from(TRICKY_VALUES)), (4, st.sampled_from(NEAR_LITERALS)),
                       (1, st.integers().map(str)), (1, st.floats().map(repr)),
                       (1, st.text(max_size=5)))
props = st.dictionaries(names, prop_values, max_size=4)


def parens(strategy: st.SearchStrategy) -> st.SearchStrategy:
    """The strategy, sometimes wrapped in meaningless parentheses."""
    return strategy | strategy.map(lambda n: ("paren", n))


def unwrap(node: tuple) -> tuple:
    while node[0] == "paren":
        node = node[1]
    return node


def is_literal(node: tuple) -> bool:
    return unwrap(node)[0] in ("int", "long", "double", "str", "bool")


def order_bounds(node: tuple) -> tuple:
    """RocketMQ refuses BETWEEN with constant bounds out of order: put them in order."""
    tag, value, low, high, negated = node
    if not negated and is_literal(low) and is_literal(high) and unwrap(high)[1] < unwrap(low)[1]:
        low, high = high, low
    return (tag, value, low, high, negated)


def allowed_equality(node: tuple) -> tuple:
    """RocketMQ refuses TRUE/FALSE = <number or string literal> at parse time; the other way
    round is allowed, so swap such operands."""
    tag, op, left, right = node
    if unwrap(left)[0] == "bool" and unwrap(right)[0] in ("int", "long", "double", "str"):
        left, right = right, left
    return (tag, op, left, right)




def bounds(kind: str, values: st.SearchStrategy) -> st.SearchStrategy:
    """Two sorted literals of one number type."""
    return st.lists(values, min_size=2, max_size=2).map(
        lambda pair: tuple((kind, v, False) for v in sorted(pair)))


# prop BETWEEN <literal> AND <literal>: the common shape, with bounds near the property values.
simple_between = st.tuples(
    names.map(lambda n: ("prop", n)),
    bounds("int", st.integers(0, 12)) | bounds("double", st.sampled_from([0.5, 1.0, 2.5, 3.0])),
    st.booleans(),
).map(lambda t: ("between", t[0], t[1][0], t[1][1], t[2]))

leaf_conditions = st.one_of(
    simple_between,
    prop,
    bool_literal,
    st.tuples(st.just("rel"), st.sampled_from(["<", "<=", ">", ">="]),
              parens(orderable), parens(orderable)),
    st.tuples(st.just("eq"), st.sampled_from(["=", "<>"]),
              parens(comparable), parens(comparable)).map(allowed_equality),
    st.tuples(st.just("isnull"), parens(prop | number | string_literal), st.booleans()),
    st.tuples(st.just("between"), parens(orderable), parens(orderable), parens(orderable),
              st.booleans()).map(order_bounds),
    st.tuples(st.just("in"), names,
              st.lists(st.sampled_from(TRICKY_VALUES) | st.text(max_size=3), min_size=1,
                       max_size=4),
              st.booleans()),
)


def compose(children: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(
        children.map(lambda c: ("not", c)),
        st.tuples(st.just("and"), children, children),
        st.tuples(st.just("or"), children, children),
        children.map(lambda c: ("paren", c)),
        st.tuples(st.just("eq"), st.sampled_from(["=", "<>"]), children,
                  prop | number | bool_literal | children).map(allowed_equality),
        st.tuples(st.just("isnull"), children, st.booleans()),
    )


conditions = st.recursive(leaf_conditions, compose, max_leaves=10)
keyword_case = st.sampled_from(["upper", "lower", "title"])


def literal_texts(node: object) -> list[str]:
    """Every literal of the tree as a property value could spell it (and its negation)."""
    if not isinstance(node, tuple) or not node:
        return []
    if node[0] in ("int", "long"):
        return [str(node[1]), str(-node[1])]
    if node[0] == "double":  # and the values Double.compareTo orders unlike Python's <
        return [repr(node[1]), repr(-node[1]), "NaN", "-0.0", "0.0"]
    if node[0] == "str":
        return [node[1]]
    if node[0] == "in":
        return list(node[2])
    return [text for child in node[1:] for text in literal_texts(child)]


def props_for(tree: tuple) -> st.SearchStrategy:
    """Properties that often equal the tree's own literals, so that bounds, equalities and IN
    lists are hit exactly rather than by luck."""
    texts = sorted(set(literal_texts(tree)))
    if not texts:
        return props
    values = weighted((3, st.sampled_from(texts)), (3, prop_values))
    return st.dictionaries(names, values, max_size=4)


@SETTINGS
@given(tree=conditions, data=st.data(), case=keyword_case)
def test_agrees_with_reference(tree: tuple, data: st.DataObject, case: str) -> None:
    check_agreement(tree, data.draw(props_for(tree), label="message"), case)


def check_agreement(tree: tuple, message: dict[str, str], case: str) -> None:
    """rmqstore.filter, given the rendered text, answers as reference.truth does."""
    text = render(tree, case)
    selector = compile(text)
    try:
        expected: object = truth(tree, message)
    except RefError:
        expected = "error"
    try:
        got: object = selector.evaluate(message)
    except FilterEvaluationError:
        got = "error"
    assert got == expected, (text, message)
    assert selector.matches(message) is (expected is True)


@SETTINGS
@given(leaf=leaf_conditions, data=st.data())
def test_single_conditions_agree(leaf: tuple, data: st.DataObject) -> None:
    """One comparison at a time, so no AND/OR can mask a wrong answer; each property holds one
    of the leaf's own literals (or a Double.compareTo edge) most of the time."""
    texts = sorted(set(literal_texts(leaf))) or TRICKY_VALUES
    values = weighted((4, st.sampled_from(texts)), (1, prop_values))
    message = data.draw(st.fixed_dictionaries({}, optional=dict.fromkeys(NAMES, values)),
                        label="message")
    check_agreement(leaf, message, "upper")


SOUP = ["a", "b", "TAGS", "1", "0", "2.5", ".5", "'x'", "'it''s'", "AND", "OR", "NOT", "BETWEEN",
        "IN", "IS", "NULL", "TRUE", "FALSE", "(", ")", ",", "=", "<>", "<", "<=", ">", ">=", "+",
        "-", "0.0", "1L", "9223372036854775808", "--c\n", "/*x*/", "'", "!", "."]


@SETTINGS
@given(text=st.lists(st.sampled_from(SOUP), max_size=12).map(" ".join) | st.text(max_size=20),
       message=props)
def test_any_text_compiles_or_is_refused_cleanly(text: str, message: dict[str, str]) -> None:
    try:
        selector = compile(text)
    except FilterSyntaxError as exc:
        assert 0 <= exc.position <= len(text)
        return
    try:
        assert selector.evaluate(message) in (True, False, None)
    except FilterEvaluationError:
        pass
