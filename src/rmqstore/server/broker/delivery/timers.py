"""Timer messages in the broker (RocketMQ 5): a send with TIMER_DELIVER_MS (epoch ms),
TIMER_DELAY_SEC or TIMER_DELAY_MS goes to rmq_sys_wheel_timer first, with REAL_TOPIC,
REAL_QID and TIMER_OUT_MS (HookUtils.transformTimerMessage), and the engine's TimerService
delivers it on time, waking pulls held on the real queue.

Which sends, as Java's HookUtils.checkIfTimerMessage: a single message whose transaction type
is neither PREPARED nor ROLLBACK, without a delay level (DELAY > 0 wins and the timer properties
are dropped), not already a timer message (TIMER_OUT_MS set). A time that is not an integer, or
more than timerMaxDelaySec ahead, is refused with MESSAGE_ILLEGAL; a time already passed is
stored in the real topic at once. Unlike Java, TIMER_OUT_MS keeps the exact millisecond (Java
rounds down to timerPrecisionMs, delivering up to that much early).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from ....errors import InvalidPropertyError
from ....record import SYSFLAG_TX_MASK, SYSFLAG_TX_PREPARED, SYSFLAG_TX_ROLLBACK
from ....store import MessageStore
from ....timer import (
    PROP_REAL_QID,
    PROP_REAL_TOPIC,
    PROP_TIMER_OUT_MS,
    TIMER_TOPIC,
    TimerConfig,
    TimerService,
)
from ..config import BrokerConfig
from ..handlers.send import Placement
from ..longpoll import ArrivalWaiters
from ..topics import BrokerTopics

log = logging.getLogger(__name__)

PROP_TIMER_DELIVER_MS = "TIMER_DELIVER_MS"
PROP_TIMER_DELAY_SEC = "TIMER_DELAY_SEC"
PROP_TIMER_DELAY_MS = "TIMER_DELAY_MS"
PROP_DELAY = "DELAY"
_TIMER_PROPS = (PROP_TIMER_DELIVER_MS, PROP_TIMER_DELAY_SEC, PROP_TIMER_DELAY_MS)


def _wall_ms() -> int:
    return int(time.time() * 1000)


class BrokerTimers:
    """Owns the broker's TimerService: the send rewrite, the delivery task, shutdown."""

    REWRITE_PROPS = _TIMER_PROPS  # what rewrite looks at (SendProcessor.add_rewrite)

    def __init__(self, config: BrokerConfig, store: MessageStore, topics: BrokerTopics,
                 arrivals: ArrivalWaiters, clock: Callable[[], int] = _wall_ms) -> None:
        self._enabled = config.timer_wheel_enable
        self._max_delay_ms = config.timer_max_delay_sec * 1000
        self._arrivals = arrivals
        self._clock = clock
        self.service: TimerService | None = None
        if self._enabled:
            topics.ensure_system(TIMER_TOPIC)  # TopicConfigManager creates it in RocketMQ 5
            self.service = TimerService(store, TimerConfig(
                precision_ms=config.timer_precision_ms, wheel_slots=config.timer_wheel_slots,
                flush_interval_ms=config.timer_flush_interval_ms,
                max_delay_ms=self._max_delay_ms), clock=clock)

    def start(self, spawn: Callable[[Awaitable[None]], None]) -> None:
        if self.service is not None:
            self._arrivals.listen(TIMER_TOPIC, 0, self.service.wake)
            spawn(self.service.run(self._notify))

    def _notify(self, queues: set[tuple[str, int]]) -> None:
        for topic, queue_id in queues:
            self._arrivals.notify(topic, queue_id)

    def close(self) -> None:
        """Persist the progress; call after the delivery task is cancelled, before the store
        closes (blocking: run it off the loop)."""
        if self.service is not None:
            self.service.close()

    def rewrite(self, place: Placement, props: dict[str, str]) -> Placement | None:
        """send.Rewrite: a timer message goes to rmq_sys_wheel_timer, queue 0."""
        if not any(k in props for k in _TIMER_PROPS):
            return None
        if place.sysflag & SYSFLAG_TX_MASK in (SYSFLAG_TX_PREPARED, SYSFLAG_TX_ROLLBACK):
            return None
        if _delay_level(props) > 0:
            for key in _TIMER_PROPS:  # a delay level wins (checkIfTimerMessage)
                props.pop(key, None)
            return None
        if place.topic == TIMER_TOPIC or PROP_TIMER_OUT_MS in props:
            return None
        if not self._enabled:
            raise InvalidPropertyError(
                "timer messages are disabled on this broker (timerWheelEnable)")
        now = self._clock()
        deliver = now + self._ahead_ms(props, now)
        if deliver <= now:
            return None
        if deliver - now > self._max_delay_ms:
            raise InvalidPropertyError(
                f"timer message illegal: deliver time is {deliver - now} ms ahead; the max delay "
                f"is {self._max_delay_ms} ms (timerMaxDelaySec)")
        props[PROP_TIMER_OUT_MS] = str(deliver)
        props[PROP_REAL_TOPIC] = place.topic
        props[PROP_REAL_QID] = str(place.queue_id)
        return Placement(TIMER_TOPIC, 0, place.sysflag)

    @staticmethod
    def _ahead_ms(props: dict[str, str], now: int) -> int:
        """How far ahead the message asks to be delivered; TIMER_DELAY_SEC first, then
        TIMER_DELAY_MS, then TIMER_DELIVER_MS, as Java reads them."""
        for key, to_ms in ((PROP_TIMER_DELAY_SEC, lambda v: v * 1000),
                           (PROP_TIMER_DELAY_MS, lambda v: v),
                           (PROP_TIMER_DELIVER_MS, lambda v: v - now)):
            raw = props.get(key)
            if raw is not None:
                try:
                    return to_ms(int(raw))
                except ValueError:
                    raise InvalidPropertyError(
                        f"timer message illegal: {key}={raw!r} is not an integer") from None
        return 0


def _delay_level(props: dict[str, str]) -> int:
    try:
        return int(props.get(PROP_DELAY, "0"))
    except ValueError:
        return 0  # the delay-level rewrite refuses it
