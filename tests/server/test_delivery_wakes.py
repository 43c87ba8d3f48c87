"""The send path's notify of a stored message wakes the delivery runner sleeping on its system
topic (timers: rmq_sys_wheel_timer queue 0; delay levels: each level's queue), and no other
queue's does: the runners sleep until their next due time instead of polling."""

from __future__ import annotations

from rmqstore import open_store
from rmqstore.delay_levels import SCHEDULE_TOPIC
from rmqstore.server.broker.config import BrokerConfig
from rmqstore.server.broker.delivery.delay_levels import DelayLevels
from rmqstore.server.broker.delivery.timers import BrokerTimers
from rmqstore.server.broker.longpoll import ArrivalWaiters
from rmqstore.timer import TIMER_TOPIC


class Topics:
    def ensure_system(self, topic: str, queue_nums: int = 1) -> None:
        pass


def _not_run(coro) -> None:
    coro.close()  # the runner itself is tested in tests/engine/test_idle_runners.py


def test_a_stored_timer_message_wakes_the_timer(tmp_path) -> None:
    arrivals = ArrivalWaiters()
    with open_store(tmp_path / "store") as store:
        timers = BrokerTimers(BrokerConfig(timer_wheel_slots=1024), store, Topics(), arrivals)
        wakes: list[int] = []
        timers.service.wake = lambda: wakes.append(1)
        timers.start(_not_run)
        arrivals.notify("orders", 0)
        assert wakes == []
        arrivals.notify(TIMER_TOPIC, 0)
        assert wakes == [1]
        timers.close()


def test_a_stored_delayed_message_wakes_the_delay_levels(tmp_path) -> None:
    arrivals = ArrivalWaiters()
    with open_store(tmp_path / "store") as store:
        delays = DelayLevels(BrokerConfig(message_delay_level="1s 5s 10s"), store, Topics(),
                             arrivals)
        wakes: list[int] = []
        delays.service.wake = lambda: wakes.append(1)
        delays.start(_not_run)
        arrivals.notify("orders", 0)
        assert wakes == []
        for level in (1, 2, 3):
            arrivals.notify(SCHEDULE_TOPIC, level - 1)
        assert wakes == [1, 1, 1]
        delays.close()
