"""Deferred: a fast handler's late answer reaches the dispatcher at once, in either order."""

from __future__ import annotations

from rmqstore.net.dispatch import Deferred
from rmqstore.protocol import RemotingCommand


def test_value_reaches_a_callback_set_before_or_after_it() -> None:
    seen: list[object] = []
    early = Deferred()
    early.then(seen.append)
    assert seen == []
    early.resolve(b"frame")
    assert seen == [b"frame"]  # synchronously, no loop iteration

    late = Deferred()
    cmd = RemotingCommand.response(0)
    late.resolve(cmd)
    late.then(seen.append)
    assert seen == [b"frame", cmd]
