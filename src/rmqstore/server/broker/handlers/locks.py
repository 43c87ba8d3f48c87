"""Ordered consumption locks: LOCK_BATCH_MQ (41) and UNLOCK_BATCH_MQ (42)
(RebalanceLockManager of rocketmq-all-4.9.7).

A lock is per (consumer group, message queue) and held by one client id; it lapses after
lock_max_live_ms without renewal (clients re-lock every 20 s). Bodies:

    request  {"clientId":"...","consumerGroup":"G",
              "mqSet":[{"brokerName":"b","queueId":0,"topic":"T"}]}
    response {"lockOKMQSet":[...]}   the queues this client holds now
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

from ....net import RequestContext
from ....net.dispatch import Dispatcher
from ....protocol import RemotingCommand, RequestCode, ResponseCode, fastjson

log = logging.getLogger(__name__)

MessageQueue = tuple[str, str, int]  # (topic, brokerName, queueId): MessageQueue's identity


@dataclass(slots=True)
class _Lock:
    client_id: str
    last_update: float  # time.monotonic()


class RebalanceLockManager:
    def __init__(self, max_live_s: float) -> None:
        self._max_live_s = max_live_s
        self._locks: dict[str, dict[MessageQueue, _Lock]] = {}

    def try_lock(self, group: str, mqs: list[MessageQueue], client_id: str) -> list[MessageQueue]:
        """Lock what is free, expired or already ours; return every queue we hold now."""
        now = time.monotonic()
        table = self._locks.setdefault(group, {})
        held = []
        for mq in mqs:
            lock = table.get(mq)
            expired = lock is not None and now - lock.last_update > self._max_live_s
            if lock is None or lock.client_id == client_id or expired:
                if lock is not None and lock.client_id != client_id:
                    log.info("lock of %s for %s expired; now held by %s", mq, group, client_id)
                table[mq] = _Lock(client_id, now)
                held.append(mq)
        return held

    def unlock(self, group: str, mqs: list[MessageQueue], client_id: str) -> None:
        table = self._locks.get(group, {})
        for mq in mqs:
            lock = table.get(mq)
            if lock is not None and lock.client_id == client_id:
                del table[mq]
        if not table:
            self._locks.pop(group, None)

    def is_locked(self, group: str, mq: MessageQueue, client_id: str) -> bool:
        lock = self._locks.get(group, {}).get(mq)
        return (lock is not None and lock.client_id == client_id
                and time.monotonic() - lock.last_update <= self._max_live_s)


class LockProcessor:
    def __init__(self, locks: RebalanceLockManager) -> None:
        self._locks = locks

    def register_handlers(self, dispatcher: Dispatcher) -> None:
        dispatcher.register(RequestCode.LOCK_BATCH_MQ, self.lock_batch)
        dispatcher.register(RequestCode.UNLOCK_BATCH_MQ, self.unlock_batch)

    async def lock_batch(self, request: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
        try:
            group, client_id, mqs = _parse(request.body)
        except (ValueError, KeyError, TypeError) as exc:
            return RemotingCommand.response(ResponseCode.SYSTEM_ERROR, f"bad lock body: {exc}")
        held = self._locks.try_lock(group, mqs, client_id)
        body = json.dumps({"lockOKMQSet": [_mq_json(mq) for mq in held]},
                          separators=(",", ":")).encode()
        return RemotingCommand.response(ResponseCode.SUCCESS, body=body)

    async def unlock_batch(self, request: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
        try:
            group, client_id, mqs = _parse(request.body)
        except (ValueError, KeyError, TypeError) as exc:
            return RemotingCommand.response(ResponseCode.SYSTEM_ERROR, f"bad unlock body: {exc}")
        self._locks.unlock(group, mqs, client_id)
        return RemotingCommand.response(ResponseCode.SUCCESS)


def _parse(body: bytes) -> tuple[str, str, list[MessageQueue]]:
    data = fastjson.loads(body)
    mqs = [(str(m["topic"]), str(m["brokerName"]), int(m["queueId"]))
           for m in data.get("mqSet") or ()]
    return str(data["consumerGroup"]), str(data["clientId"]), mqs


def _mq_json(mq: MessageQueue) -> dict:
    return {"brokerName": mq[1], "queueId": mq[2], "topic": mq[0]}
