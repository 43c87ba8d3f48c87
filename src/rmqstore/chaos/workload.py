"""What a chaos run does to the cluster while faults come and go: producers with our client,
each pinned to one queue and sending in order (so a queue's acknowledged messages have an order
to keep), each send recorded; and, at the end, a drain of every queue from the master
(the total-queue checker's dequeues).
"""

from __future__ import annotations

import asyncio
import logging
import time

from ..client import Message, MessageQueue, Producer, SendStatus
from ..client.message import decode_messages
from ..protocol import RequestCode
from ..server.testing import ServeError, call
from .history import Dequeue, Enqueue, History

log = logging.getLogger(__name__)

SEND_TIMEOUT_S = 3.0
PULL_BATCH = 32
FLAG_SUBSCRIPTION = 0x4  # PullSysFlag: the subscription travels with the pull


class Producers:
    """``workers`` producers, one queue each, ``rate`` sends per second each at most."""

    def __init__(self, namesrv: str, topic: str, broker_name: str, history: History,
                 workers: int = 4, rate: float = 20.0) -> None:
        self._namesrv = namesrv
        self._topic = topic
        self._broker_name = broker_name
        self._history = history
        self._workers = workers
        self._interval_s = 1 / rate
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._worker(w), name=f"chaos-producer-{w}")
                       for w in range(self._workers)]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _now(self) -> float:
        return time.time() - self._history.t0

    async def _worker(self, w: int) -> None:
        producer = Producer(f"chaos-pg-{w}", namesrv=self._namesrv, send_timeout_s=SEND_TIMEOUT_S,
                            retry_times_when_send_failed=2)
        await producer.start()
        queue = MessageQueue(self._topic, self._broker_name, w)
        n = 0
        try:
            while not self._stop.is_set():
                n += 1
                key = f"w{w}-{n}"
                start = self._now()
                try:
                    r = await producer.send(Message(self._topic, key.encode(), keys=[key]),
                                            queue=queue)
                except Exception as exc:  # noqa: BLE001 - every failure is history
                    self._history.enqueues.append(Enqueue(
                        w, key, "fail", start, self._now(), error=f"{type(exc).__name__}: "
                        f"{str(exc)[:160]}"))
                else:
                    status = "ok" if r.status is SendStatus.SEND_OK else "unknown"
                    self._history.enqueues.append(Enqueue(
                        w, key, status, start, self._now(), r.broker_addr, r.master_epoch,
                        r.queue.queue_id, r.queue_offset,
                        None if status == "ok" else r.status.name))
                try:
                    async with asyncio.timeout(self._interval_s):
                        await self._stop.wait()
                except TimeoutError:
                    pass
        finally:
            await producer.close()


def drain(broker: str, topic: str, queues: int, timeout_s: float = 60.0) -> list[Dequeue]:
    """Every message of the topic's queues on ``broker``, from offset 0 (blocking)."""
    out: list[Dequeue] = []
    deadline = time.monotonic() + timeout_s
    for q in range(queues):
        offset = 0
        while time.monotonic() < deadline:
            try:
                r = call(broker, RequestCode.PULL_MESSAGE, {
                    "consumerGroup": "chaos-drain", "topic": topic, "queueId": str(q),
                    "queueOffset": str(offset), "maxMsgNums": str(PULL_BATCH),
                    "sysFlag": str(FLAG_SUBSCRIPTION), "commitOffset": "0",
                    "suspendTimeoutMillis": "0", "subscription": "*", "subVersion": "0"},
                    timeout_s=5.0)
            except (OSError, ServeError) as exc:
                raise ServeError(f"drain of {topic}/{q} on {broker}: {exc}") from exc
            if r.code != 0:
                break  # no message at this offset: the queue's end
            messages = decode_messages(r.body)
            if not messages:
                break
            for m in messages:
                out.append(Dequeue(m.body.decode(errors="replace"), q, m.queue_offset, broker))
            offset = int(r.ext_fields["nextBeginOffset"])
    return out
