"""The filter's exceptions: one for expressions refused at compile time, one for a message
whose properties make an expression throw while it is evaluated."""

from __future__ import annotations


class FilterError(ValueError):
    """Base of every error the SQL92 filter raises on purpose."""


class FilterSyntaxError(FilterError):
    """An expression RocketMQ's SelectorParser would refuse (MQFilterException at subscription).

    ``position`` is the 0-based character offset in ``expression`` where the problem starts
    (``len(expression)`` when the expression ends too early); ``reason`` says what is wrong.
    """

    def __init__(self, reason: str, expression: str, position: int) -> None:
        self.reason = reason
        self.expression = expression
        self.position = position
        super().__init__(f"{reason} at position {position} in {expression!r}")

    def pointer(self) -> str:
        """The expression on one line and a caret under the offending character."""
        line = self.expression.replace("\n", " ").replace("\r", " ")
        return f"{line}\n{' ' * self.position}^"


class FilterEvaluationError(FilterError):
    """Evaluation threw where RocketMQ's would (a property that is not a number compared with a
    number, TRUE = <property>): the broker logs it and the message does not match."""
