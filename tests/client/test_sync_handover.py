"""The blocking façade's hand-over of a call to its loop thread (client/sync.py's _LoopThread):
what the coroutine returns or raises reaches the caller as it is, a cancelled one as
concurrent.futures' CancelledError, and a call past its time raises TimeoutError and cancels
the coroutine, which would otherwise run on unseen."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading

import pytest

from rmqstore.client import sync


@pytest.fixture
def loop_thread():
    rt = sync._LoopThread("test-handover")
    try:
        yield rt
    finally:
        rt.stop()


def test_a_result_and_an_error_reach_the_caller(loop_thread) -> None:
    async def answer() -> tuple[int, str]:
        await asyncio.sleep(0)
        return 42, threading.current_thread().name

    assert loop_thread.run(answer()) == (42, "test-handover")

    async def fail() -> None:
        raise KeyError("gone")

    with pytest.raises(KeyError, match="gone"):
        loop_thread.run(fail(), 5)


def test_a_cancelled_call_raises_an_exception_the_caller_can_catch(loop_thread) -> None:
    async def cancelled() -> None:
        asyncio.current_task().cancel()
        await asyncio.sleep(1)

    with pytest.raises(concurrent.futures.CancelledError) as info:
        loop_thread.run(cancelled(), 5)
    assert isinstance(info.value, Exception)  # asyncio's CancelledError is not


def test_a_call_past_its_time_is_cancelled(loop_thread, monkeypatch) -> None:
    monkeypatch.setattr(sync, "CALL_MARGIN_S", 0.1)
    ended = threading.Event()
    outcome: list[str] = []

    async def stuck() -> None:
        try:
            await asyncio.sleep(60)
            outcome.append("finished")
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise
        finally:
            ended.set()

    with pytest.raises(TimeoutError):
        loop_thread.run(stuck(), 0.1)
    assert ended.wait(5) and outcome == ["cancelled"]


def test_many_threads_call_at_once(loop_thread) -> None:
    async def echo(i: int) -> int:
        await asyncio.sleep(0.001)
        return i

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda i: loop_thread.run(echo(i), 5), range(400)))
    assert got == list(range(400))


def test_a_call_that_is_no_awaitable_raises_in_the_caller(loop_thread) -> None:
    with pytest.raises(TypeError):
        loop_thread.run(42, 5)  # type: ignore[arg-type]
