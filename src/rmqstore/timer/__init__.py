"""Delivery at any time (RocketMQ 5's timer messages): an on-disk timing wheel over the store.

    timers = TimerService(store); timers.start(); timers.put(topic, body, delay_ms=1500)

Layers: wheel.py (slot file), timerlog.py (entry log), checkpoint.py (progress), slots.py
(the three as one store of entries), service.py (moves messages in and out of the store).
"""

from .service import (
    PROP_REAL_QID,
    PROP_REAL_TOPIC,
    PROP_TIMER_DEQUEUE_MS,
    PROP_TIMER_OUT_MS,
    PROP_TIMER_ROLL_TIMES,
    TIMER_TOPIC,
    TickResult,
    TimerService,
)
from .slots import TimerConfig, TimerSchedule

__all__ = [
    "PROP_REAL_QID",
    "PROP_REAL_TOPIC",
    "PROP_TIMER_DEQUEUE_MS",
    "PROP_TIMER_OUT_MS",
    "PROP_TIMER_ROLL_TIMES",
    "TIMER_TOPIC",
    "TickResult",
    "TimerConfig",
    "TimerSchedule",
    "TimerService",
]
