"""Queue allocation strategies (client/.../rebalance/ of rocketmq-all-4.9.7).

Each takes the consumer's own id, every consumer id of the group and every queue of the topic,
both sorted, and returns the consumer's share. All members compute the same split from the same
inputs, so the shares are disjoint and cover every queue.
"""

from __future__ import annotations

from collections.abc import Callable

from .message import MessageQueue

AllocateStrategy = Callable[[str, list[MessageQueue], list[str]], list[MessageQueue]]


def allocate_averagely(cid: str, mq_all: list[MessageQueue], cid_all: list[str]) -> list[MessageQueue]:
    """AllocateMessageQueueAveragely: contiguous blocks, the first ``n % c`` consumers one more.

    Example: 8 queues, 3 consumers -> [0,1,2], [3,4,5], [6,7].
    """
    if cid not in cid_all or not mq_all:
        return []
    i, n, c = cid_all.index(cid), len(mq_all), len(cid_all)
    mod = n % c
    if n <= c:
        avg = 1
    elif mod > 0 and i < mod:
        avg = n // c + 1
    else:
        avg = n // c
    start = i * avg if mod > 0 and i < mod else i * avg + mod
    return [mq_all[(start + k) % n] for k in range(min(avg, n - start))]


def allocate_averagely_by_circle(cid: str, mq_all: list[MessageQueue],
                                 cid_all: list[str]) -> list[MessageQueue]:
    """AllocateMessageQueueAveragelyByCircle: queue k goes to consumer k % c.

    Example: 8 queues, 3 consumers -> [0,3,6], [1,4,7], [2,5].
    """
    if cid not in cid_all:
        return []
    i, c = cid_all.index(cid), len(cid_all)
    return [mq for k, mq in enumerate(mq_all) if k % c == i]


STRATEGIES: dict[str, AllocateStrategy] = {
    "AVG": allocate_averagely,
    "AVG_BY_CIRCLE": allocate_averagely_by_circle,
}
