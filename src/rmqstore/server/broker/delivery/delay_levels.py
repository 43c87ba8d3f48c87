"""Delay levels in the broker: sends with a DELAY property go to SCHEDULE_TOPIC_XXXX first
(CommitLog.putMessage of rocketmq-all-4.9.7), and the engine's ScheduleService delivers them on
the broker's loop when due, waking pulls held on the real queue. GET_ALL_DELAY_OFFSET (45)
answers the progress table, as AdminBrokerProcessor does.

Which sends are delayed, as Java: a single message (batches with DELAY are refused in
handlers/send.py) whose transaction type is neither PREPARED nor ROLLBACK, with DELAY > 0; a level
past the ladder is its last level. A DELAY that is not an integer is refused with MESSAGE_ILLEGAL
(Java fails the send on its NumberFormatException).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from ....delay_levels import PROP_DELAY, SCHEDULE_TOPIC, ScheduleService
from ....net import RequestContext
from ....net.dispatch import Dispatcher
from ....protocol import RemotingCommand, RequestCode, ResponseCode, fastjson
from ....record import SYSFLAG_TX_MASK, SYSFLAG_TX_PREPARED, SYSFLAG_TX_ROLLBACK
from ....store import MessageStore
from ..config import MASTER_ID, BrokerConfig
from ..handlers.send import Placement, SendRejected
from ..longpoll import ArrivalWaiters
from ..topics import DLQ_PREFIX, BrokerTopics

log = logging.getLogger(__name__)


class DelayLevels:
    """Owns the broker's ScheduleService: the send rewrite, the delivery task, shutdown."""

    REWRITE_PROPS = (PROP_DELAY,)  # what rewrite looks at (SendProcessor.add_rewrite)

    def __init__(self, config: BrokerConfig, store: MessageStore, topics: BrokerTopics,
                 arrivals: ArrivalWaiters) -> None:
        self.service = ScheduleService(store, config.message_delay_level)
        self._arrivals = arrivals
        self._master = config.broker_id == MASTER_ID
        # TopicConfigManager creates it with one queue per level (SCHEDULE_TOPIC_QUEUE_NUM).
        topics.ensure_system(SCHEDULE_TOPIC, self.service.max_level)

    def register_handlers(self, dispatcher: Dispatcher) -> None:
        dispatcher.register(RequestCode.GET_ALL_DELAY_OFFSET, self.all_offsets)

    def start(self, spawn: Callable[[Awaitable[None]], None]) -> None:
        """Deliver on the loop; a slave only stores (BrokerController starts the service on
        the master only)."""
        if self._master:
            for queue_id in range(self.service.max_level):  # a delayed send wakes it
                self._arrivals.listen(SCHEDULE_TOPIC, queue_id, self.service.wake)
            spawn(self.service.run(self._arrivals.notify))

    def close(self) -> None:
        """Persist the progress; call after the delivery task is cancelled, before the store
        closes (blocking: run it off the loop)."""
        self.service.close()

    def rewrite(self, place: Placement, props: dict[str, str]) -> Placement | None:
        """send.Rewrite: a delayed single message goes to SCHEDULE_TOPIC_XXXX, queue level-1."""
        raw = props.get(PROP_DELAY)
        if raw is not None and place.topic.startswith(DLQ_PREFIX):
            # A %RETRY% send redirected past its reconsume limit: stored now (Java sets level 0).
            props.pop(PROP_DELAY)
            return None
        if raw is None or place.sysflag & SYSFLAG_TX_MASK in (SYSFLAG_TX_PREPARED,
                                                              SYSFLAG_TX_ROLLBACK):
            return None
        try:
            level = int(raw)
        except ValueError:
            raise SendRejected(ResponseCode.MESSAGE_ILLEGAL,
                               f"DELAY property must be an integer level, not {raw!r}") from None
        if level <= 0:
            return None
        topic, queue_id, deliver_ms = self.service.schedule(place.topic, place.queue_id,
                                                            level, props)
        return Placement(topic, queue_id, place.sysflag, tags_code=deliver_ms)

    async def all_offsets(self, request: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
        body = fastjson.dumps_config({"offsetTable": self.service.offsets}).encode()
        return RemotingCommand.response(ResponseCode.SUCCESS, body=body)
