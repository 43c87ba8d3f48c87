"""messageDelayLevel: RocketMQ 4.x's ladder of delay levels, and where a delayed message waits
(ScheduleMessageService.parseDelayLevel, TopicValidator.RMQ_SYS_SCHEDULE_TOPIC). The service
that delivers is delay_levels.py; this module holds what the store's configuration and a
replica's dispatch need without it.
"""

from __future__ import annotations

from .topic_validator import SCHEDULE_TOPIC  # noqa: F401 - where a delayed message waits

PROP_DELAY = "DELAY"  # MessageConst.PROPERTY_DELAY_TIME_LEVEL
DEFAULT_DELAY_LEVELS = "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h"
# "ms" is our extension (short ladders in tests); s m h d are RocketMQ's units.
_UNITS = (("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000))
def parse_delay_levels(text: str) -> tuple[int, ...]:
    """messageDelayLevel ("1s 5s 10m ...") -> the delay in ms of level 1, 2, ...
    (ScheduleMessageService.parseDelayLevel); raises ValueError naming the bad entry."""
    delays = []
    for item in text.split():
        for unit, scale in _UNITS:
            number = item[:-len(unit)]
            if item.endswith(unit) and number.isdigit():
                delays.append(int(number) * scale)
                break
        else:
            raise ValueError(f"messageDelayLevel entry {item!r} is not <number><ms|s|m|h|d>")
    if not delays:
        raise ValueError("messageDelayLevel names no level")
    return tuple(delays)
