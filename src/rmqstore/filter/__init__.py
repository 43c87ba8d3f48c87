"""RocketMQ's SQL92 property filter (MessageSelector.bySql), 4.9.x semantics.

    f = compile("TAGS is not null and TAGS in ('TagA', 'TagB') and price > 10")
    f.matches({"TAGS": "TagA", "price": "12"})          # True

Modules: lexer (tokens), sql92 (parser and RocketMQ's build-time checks), nodes (the tree),
values (Java's number/String conversions and ordering), evaluate (tree -> closures),
compiled (Filter and the compile cache), errors.
"""

from .compiled import Filter, compile
from .errors import FilterError, FilterEvaluationError, FilterSyntaxError
from .sql92 import parse

__all__ = ["Filter", "FilterError", "FilterEvaluationError", "FilterSyntaxError", "compile",
           "parse"]
