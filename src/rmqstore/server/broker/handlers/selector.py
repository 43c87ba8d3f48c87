"""What a subscription selects: tags (TAG type) or a SQL92 property filter (enablePropertyFilter),
as RocketMQ's ExpressionMessageFilter does. A malformed SQL92 expression is refused with
SUBSCRIPTION_PARSE_FAILED and a remark pointing at the problem."""

from __future__ import annotations

from dataclasses import dataclass

from ....filter import Filter, FilterSyntaxError
from ....filter import compile as compile_sql
from .clients import parse_tags

TAG = "TAG"
SQL92 = "SQL92"


class SelectorError(Exception):
    """The expression cannot be used; str() is the remark for the client."""


@dataclass(frozen=True, slots=True)
class Selector:
    tags: frozenset[str]
    sql: Filter | None = None


def make_selector(expression_type: str | None, expression: str | None,
                  property_filter_enabled: bool) -> Selector:
    kind = (expression_type or TAG).upper()
    if kind == TAG:
        return Selector(parse_tags(expression or "*"))
    if kind != SQL92:
        raise SelectorError(f"expression type {expression_type} is not supported")
    if not property_filter_enabled:
        raise SelectorError("The broker does not support consumer to filter message by SQL92")
    try:
        return Selector(frozenset(), compile_sql(expression or ""))
    except FilterSyntaxError as exc:
        raise SelectorError(f"SQL92 expression {expression!r} is invalid: {exc}") from None
