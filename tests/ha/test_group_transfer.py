"""GroupTransfer, SYNC_MASTER's waits for the slaves, against a model: a wait for ``end`` ends
with its ok value (True unless given) once a report reaches it, never before, exactly once;
with its failed value (False) at its timeout or at close. when_replicated says whether the wait
is the first now (the links are armed for it). Ends come mostly growing (a broker's sends) and
sometimes earlier (an embedded caller's)."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from rmqstore.ha.group_transfer import GroupTransfer

# ("wait", end) | ("ack", offset) | ("expire", seconds forward)
OPS = st.lists(st.one_of(st.tuples(st.just("wait"), st.integers(0, 400)),
                         st.tuples(st.just("ack"), st.integers(0, 400)),
                         st.tuples(st.just("expire"), st.sampled_from([0.4, 0.7]))),
               max_size=60)
TIMEOUT_S = 1.0


class Clock(asyncio.AbstractEventLoop):
    """Just what GroupTransfer asks of a loop: time() and call_later(), by hand."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[asyncio.TimerHandle] = []

    def time(self) -> float:
        return self.now

    def call_later(self, delay, callback, *args, context=None):  # type: ignore[override]
        handle = asyncio.TimerHandle(self.now + delay, callback, args, self)
        self.timers.append(handle)
        return handle

    def forward(self, seconds: float) -> None:
        self.now += seconds
        while due := [h for h in self.timers if h.when() <= self.now and not h.cancelled()]:
            for h in due:
                self.timers.remove(h)
                h._run()
        self.timers = [h for h in self.timers if not h.cancelled()]

    def _timer_handle_cancelled(self, handle) -> None:  # type: ignore[override]
        pass

    def get_debug(self) -> bool:
        return False


@settings(max_examples=300, deadline=None)
@given(OPS)
def test_waits_end_as_the_model_says(ops) -> None:
    clock = Clock()
    transfer = GroupTransfer(clock, TIMEOUT_S)
    results: dict[int, list[object]] = {}
    model: dict[int, tuple[int, float]] = {}  # pending: wait id -> (end, deadline)
    values: dict[int, tuple[object, object]] = {}  # wait id -> (ok, failed) it is answered with
    acked = 0
    for n, (op, arg) in enumerate(ops):
        if op == "wait":
            results[n] = []
            if n % 2:  # a broker's statuses
                values[n] = (f"ok {n}", f"failed {n}")
                first = transfer.when_replicated(arg, results[n].append, *values[n])
            else:
                values[n] = (True, False)
                first = transfer.when_replicated(arg, results[n].append)
            if acked >= arg:
                assert results[n] == [values[n][0]]
                assert not first
            else:
                assert results[n] == []
                assert first == all(arg < end for end, _ in model.values())
                model[n] = (arg, clock.now + TIMEOUT_S)
        elif op == "ack":
            transfer.on_ack(arg)
            acked = max(acked, arg)
            for k, (end, _) in list(model.items()):
                if acked >= end:
                    assert results[k] == [values[k][0]], \
                        f"a wait for {end} missed the report {acked}"
                    del model[k]
        else:
            clock.forward(arg)
            for k, (_, deadline) in list(model.items()):
                if deadline <= clock.now:
                    assert results[k] == [values[k][1]]
                    del model[k]
        for k in model:
            assert results[k] == [], "a wait ended before its report or its timeout"
        assert transfer.waiting == len(model)
        assert transfer.first_waiting == min((e for e, _ in model.values()), default=None)
    transfer.close()
    for k in model:
        assert results[k] == [values[k][1]]
    assert all(len(r) == 1 for r in results.values()), "a wait ended twice"
