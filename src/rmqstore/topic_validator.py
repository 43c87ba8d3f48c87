"""Which names clients may use, as RocketMQ's TopicValidator (common/.../topic/TopicValidator.java
of rocketmq-all-4.9.7) and Validators.checkGroup rule them: the system topics, the ones no
producer may write, and the shape of a group name and of a topic's perm bits.

A topic name's own shape (characters, length) is record.check_topic, the rule the store needs
for its paths; the rules here are the broker's, about what a name means.
"""

from __future__ import annotations

import re

from .errors import InvalidTopicError

AUTO_CREATE_TOPIC = "TBW102"  # AUTO_CREATE_TOPIC_KEY_TOPIC
SCHEDULE_TOPIC = "SCHEDULE_TOPIC_XXXX"  # RMQ_SYS_SCHEDULE_TOPIC: delay levels
BENCHMARK_TOPIC = "BenchmarkTest"
TRANS_HALF_TOPIC = "RMQ_SYS_TRANS_HALF_TOPIC"
TRANS_OP_HALF_TOPIC = "RMQ_SYS_TRANS_OP_HALF_TOPIC"
TRANS_CHECK_MAX_TIME_TOPIC = "TRANS_CHECK_MAX_TIME_TOPIC"
TRACE_TOPIC = "RMQ_SYS_TRACE_TOPIC"
SELF_TEST_TOPIC = "SELF_TEST_TOPIC"
OFFSET_MOVED_EVENT = "OFFSET_MOVED_EVENT"
# RocketMQ 5 reserves this prefix for the broker's own topics (TimerMessageStore's
# rmq_sys_wheel_timer among them); so do we: rmq_sys_set_aside (set_aside.py).
SYSTEM_TOPIC_PREFIX = "rmq_sys_"
TIMER_TOPIC = SYSTEM_TOPIC_PREFIX + "wheel_timer"
SET_ASIDE_TOPIC = SYSTEM_TOPIC_PREFIX + "set_aside"

SYSTEM_TOPICS = frozenset({AUTO_CREATE_TOPIC, SCHEDULE_TOPIC, BENCHMARK_TOPIC, TRANS_HALF_TOPIC,
                           TRACE_TOPIC, TRANS_OP_HALF_TOPIC, TRANS_CHECK_MAX_TIME_TOPIC,
                           SELF_TEST_TOPIC, OFFSET_MOVED_EVENT})
# NOT_ALLOWED_SEND_TOPIC_SET; the trace topic is a system topic clients do write.
NOT_ALLOWED_SEND = frozenset({SCHEDULE_TOPIC, TRANS_HALF_TOPIC, TRANS_OP_HALF_TOPIC,
                              TRANS_CHECK_MAX_TIME_TOPIC, SELF_TEST_TOPIC, OFFSET_MOVED_EVENT})

# PermName: 4 READ, 2 WRITE, 1 INHERIT; PermName.isValid takes 0..7 (8, PRIORITY, is no
# topic's). 0 is a topic neither read nor written, as `mqadmin updateTopicPerm` may set.
PERM_BITS = 0x7
MAX_GROUP_CHARS = 255  # Validators.CHARACTER_MAX_LENGTH of the 4.9.7 client
_NAME_RE = re.compile(r"^[%|a-zA-Z0-9_-]+$")


def is_system_topic(topic: str) -> bool:
    """TopicValidator.isSystemTopic: a topic clients may not create or change."""
    return topic in SYSTEM_TOPICS or topic.startswith(SYSTEM_TOPIC_PREFIX)


def is_not_allowed_send(topic: str) -> bool:
    """TopicValidator.isNotAllowedSendTopic, and beyond 4.9.7's list every rmq_sys_ topic:
    what the broker's services write (the timer's queue, set-aside records) no producer may."""
    return topic in NOT_ALLOWED_SEND or topic.startswith(SYSTEM_TOPIC_PREFIX)


def check_group(group: str) -> None:
    """Validators.checkGroup: [%|a-zA-Z0-9_-]{1,255}; raises InvalidTopicError (a group name
    becomes the %RETRY% and %DLQ% topics' and a key of consumerOffset.json)."""
    if not group or len(group) > MAX_GROUP_CHARS:
        raise InvalidTopicError(f"consumer group must be 1 to {MAX_GROUP_CHARS} characters")
    if not _NAME_RE.match(group):
        raise InvalidTopicError(f"consumer group {group[:60]!r} has characters outside "
                                "[%|a-zA-Z0-9_-]")


def perm_is_valid(perm: int) -> bool:
    """PermName.isValid: READ, WRITE and INHERIT bits only."""
    return 0 <= perm <= PERM_BITS
