"""Filter: a compiled SQL92 selector, and ``compile`` with a cache for repeated expressions."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from .errors import FilterEvaluationError
from .evaluate import Evaluator, Props, build
from .nodes import Node
from .sql92 import parse

CACHE_SIZE = 1024


@dataclass(frozen=True)
class Filter:
    """One compiled expression. Immutable and safe to share between subscriptions and tasks."""

    expression: str
    tree: Node = field(repr=False)
    _evaluate: Evaluator = field(repr=False, compare=False)

    def evaluate(self, props: Props) -> bool | None:
        """Three-valued result for a message's properties: True, False or None (unknown).

        Raises FilterEvaluationError where RocketMQ's evaluation throws.
        """
        result = self._evaluate(props)
        assert result is None or type(result) is bool
        return result

    def matches(self, props: Props) -> bool:
        """Whether the message is delivered: only a TRUE result matches; unknown and
        evaluation errors do not (ExpressionMessageFilter.isMatchedByCommitLog)."""
        try:
            return self._evaluate(props) is True
        except FilterEvaluationError:
            return False


@lru_cache(maxsize=CACHE_SIZE)
def compile(expression: str) -> Filter:
    """Parse and compile ``expression``; the same string returns the same Filter.

    Raises FilterSyntaxError (not cached) for an expression RocketMQ refuses at subscription.
    """
    tree = parse(expression)
    return Filter(expression, tree, build(tree))
