"""The disk alarm: which of RocketMQ's disk levels the store's filesystem is past, logged when
it changes (DefaultMessageStore.CleanCommitLogService.isSpaceToDelete of rocketmq 4.9.7).

    level 0  below diskMaxUsedSpaceRatio (75 %)
    level 1  above it: space is being reclaimed (expired segments)
    level 2  above diskSpaceCleanForciblyRatio (85 %): segments go before they expire
    level 3  above diskSpaceWarningLevelRatio (90 %): the disk is full, writes are refused

Exported as rmqstore_disk_alarm_level beside the ratio and the three thresholds (metrics.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)

LEVEL_NAMES = ("ok", "max_used", "clean_forcibly", "warning")


@dataclass(frozen=True, slots=True)
class DiskThresholds:
    max_used: float = 0.75  # diskMaxUsedSpaceRatio / 100
    clean_forcibly: float = 0.85  # diskSpaceCleanForciblyRatio
    warning: float = 0.90  # diskSpaceWarningLevelRatio

    def level(self, ratio: float) -> int:
        return sum(ratio > t for t in (self.max_used, self.clean_forcibly, self.warning))


class DiskAlarm:
    """Remembers the last level seen; ``observe`` logs a crossing, up as a warning (error at
    the full level), down as info."""

    def __init__(self, thresholds: DiskThresholds, where: str) -> None:
        self.thresholds = thresholds
        self.where = where
        self.level = 0
        self.ratio = 0.0

    def observe(self, ratio: float) -> int:
        level = self.thresholds.level(ratio)
        self.ratio = ratio
        if level != self.level:
            if level > self.level:
                log.log(logging.ERROR if level == 3 else logging.WARNING,
                        "disk of %s %.1f%% used: above the %s ratio %.2f", self.where,
                        ratio * 100, LEVEL_NAMES[level], self._threshold(level))
            else:
                log.info("disk of %s %.1f%% used: back below the %s ratio %.2f", self.where,
                         ratio * 100, LEVEL_NAMES[level + 1], self._threshold(level + 1))
            self.level = level
        return level

    def _threshold(self, level: int) -> float:
        t = self.thresholds
        return (t.max_used, t.clean_forcibly, t.warning)[level - 1]
