"""A replica's dispatch thread (ha/dispatch_thread.py) runs at a lower priority than the link:
where the cores are short, the link's receive thread, which every acknowledgement waits for,
goes first and the dispatch takes what it leaves (the niceness is the thread's own: Linux
keeps one per thread, /proc/self/task/TID/stat's 19th field)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from rmqstore.ha import dispatch_thread
from tests.ha.test_link import fill, linked, run, until

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="per-thread niceness is Linux's")


def niceness(tid: int) -> int:
    _, tail = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)
    return int(tail.split()[16])  # the fields after the name start at the 3rd (state)


def test_the_dispatch_thread_yields_to_the_link(stores) -> None:
    """Once it dispatched the master's records, the dispatch thread runs at NICE, the link's
    receive thread at the process's niceness."""
    master, replica = stores
    fill(master, 50)
    end = master.commitlog.max_offset

    async def main() -> dict[str, int]:
        async with linked(master, replica):
            await until(lambda: replica.replica.dispatched == end)
            return {t.name: niceness(t.native_id) for t in threading.enumerate()
                    if t.name in ("rmq-replica-dispatch", "rmq-ha-follow")}

    base = niceness(threading.get_native_id())
    if base >= dispatch_thread.NICE:
        pytest.skip("the tests run at the dispatch's priority or below it already")
    nice = run(main())
    assert nice["rmq-ha-follow"] == base
    assert nice["rmq-replica-dispatch"] == dispatch_thread.NICE  # setpriority's is absolute
