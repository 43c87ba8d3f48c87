"""The broker's timer rewrite (server/broker/delivery/timers.py): which sends become timer
messages and what they carry, with a fixed clock (the end-to-end path is
tests/client/test_timer_delivery.py)."""

from __future__ import annotations

import pytest

from rmqstore import open_store
from rmqstore.errors import InvalidPropertyError
from rmqstore.record import SYSFLAG_TX_PREPARED
from rmqstore.server.broker.config import BrokerConfig
from rmqstore.server.broker.delivery.timers import BrokerTimers
from rmqstore.server.broker.handlers.send import Placement
from rmqstore.server.broker.longpoll import ArrivalWaiters
from rmqstore.timer import TIMER_TOPIC

NOW = 1_700_000_000_000


class Topics:
    def __init__(self) -> None:
        self.ensured: list[str] = []

    def ensure_system(self, topic: str, queue_nums: int = 1) -> None:
        self.ensured.append(topic)


@pytest.fixture()
def timers(tmp_path):
    store = open_store(tmp_path, background=False, index_enable=False)
    topics = Topics()
    t = BrokerTimers(BrokerConfig(timer_max_delay_sec=3600, timer_wheel_slots=1024), store,
                     topics, ArrivalWaiters(), clock=lambda: NOW)
    assert topics.ensured == [TIMER_TOPIC]
    yield t
    t.close()
    store.close()


def rewrite(timers, props, sysflag=0):
    place = Placement("Orders", 3, sysflag)
    return timers.rewrite(place, props), props


@pytest.mark.parametrize("props,deliver", [
    ({"TIMER_DELIVER_MS": str(NOW + 1234)}, NOW + 1234),
    ({"TIMER_DELAY_SEC": "5"}, NOW + 5000),
    ({"TIMER_DELAY_MS": "250"}, NOW + 250),
    # Java reads DELAY_SEC, then DELAY_MS, then DELIVER_MS
    ({"TIMER_DELAY_SEC": "2", "TIMER_DELAY_MS": "7", "TIMER_DELIVER_MS": "1"}, NOW + 2000),
])
def test_timer_message_goes_to_the_timer_topic(timers, props, deliver):
    moved, props = rewrite(timers, dict(props))
    assert (moved.topic, moved.queue_id) == (TIMER_TOPIC, 0)
    assert props["TIMER_OUT_MS"] == str(deliver)
    assert (props["REAL_TOPIC"], props["REAL_QID"]) == ("Orders", "3")


def test_left_alone(timers):
    assert rewrite(timers, {"TAGS": "a"}) == (None, {"TAGS": "a"})
    past = {"TIMER_DELIVER_MS": str(NOW - 1)}
    assert rewrite(timers, dict(past)) == (None, past)  # due already: stored at once
    half = {"TIMER_DELAY_MS": "100"}
    assert rewrite(timers, dict(half), SYSFLAG_TX_PREPARED) == (None, half)
    rolled = {"TIMER_DELAY_MS": "100", "TIMER_OUT_MS": "5"}
    assert rewrite(timers, dict(rolled)) == (None, rolled)


def test_delay_level_wins_and_drops_the_timer(timers):
    moved, props = rewrite(timers, {"DELAY": "3", "TIMER_DELAY_SEC": "9"})
    assert moved is None and props == {"DELAY": "3"}


@pytest.mark.parametrize("props,text", [
    ({"TIMER_DELIVER_MS": "tomorrow"}, "not an integer"),
    ({"TIMER_DELAY_SEC": "3601"}, "max delay"),
    ({"TIMER_DELIVER_MS": str(NOW + 3_600_001)}, "max delay"),
])
def test_illegal_times_refused(timers, props, text):
    with pytest.raises(InvalidPropertyError, match=text):
        rewrite(timers, dict(props))


def test_at_the_max_accepted(timers):
    moved, _ = rewrite(timers, {"TIMER_DELAY_SEC": "3600"})
    assert moved is not None and moved.topic == TIMER_TOPIC


def test_disabled_broker_refuses(tmp_path):
    store = open_store(tmp_path, background=False, index_enable=False)
    try:
        off = BrokerTimers(BrokerConfig(timer_wheel_enable=False), store, Topics(),
                           ArrivalWaiters(), clock=lambda: NOW)
        with pytest.raises(InvalidPropertyError, match="disabled"):
            off.rewrite(Placement("Orders", 0, 0), {"TIMER_DELAY_MS": "10"})
        assert off.rewrite(Placement("Orders", 0, 0), {}) is None
        off.close()
    finally:
        store.close()


def test_broker_conf_keys():
    c = BrokerConfig.from_properties("timerWheelEnable=false\ntimerMaxDelaySec=60\n"
                                     "timerPrecisionMs=10\ntimerWheelSlots=4096\n"
                                     "timerFlushIntervalMs=200\n")
    assert (c.timer_wheel_enable, c.timer_max_delay_sec, c.timer_precision_ms,
            c.timer_wheel_slots, c.timer_flush_interval_ms) == (False, 60, 10, 4096, 200)
    assert BrokerConfig().timer_max_delay_sec >= 7 * 86_400

