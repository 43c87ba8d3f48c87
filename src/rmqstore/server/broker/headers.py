"""Custom headers only the broker reads or writes (the shared ones are in remoting/headers.py).

Field names are the Java field names of rocketmq-all-4.9.7's header classes.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..remoting.headers import wire


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchOffsetRequestHeader:
    """SEARCH_OFFSET_BY_TIMESTAMP (29)."""

    topic: str = wire("topic", required=True)
    queue_id: int = wire("queueId", required=True)
    timestamp: int = wire("timestamp", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class EarliestMsgStoretimeResponseHeader:
    """GET_EARLIEST_MSG_STORETIME (32) reply."""

    timestamp: int = wire("timestamp", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateTopicRequestHeader:
    """UPDATE_AND_CREATE_TOPIC (17)."""

    topic: str = wire("topic", required=True)
    default_topic: str = wire("defaultTopic", required=True)
    read_queue_nums: int = wire("readQueueNums", required=True)
    write_queue_nums: int = wire("writeQueueNums", required=True)
    perm: int = wire("perm", required=True)
    topic_filter_type: str = wire("topicFilterType", default="SINGLE_TAG")
    topic_sys_flag: int | None = wire("topicSysFlag")
    order: bool = wire("order", default=False)
