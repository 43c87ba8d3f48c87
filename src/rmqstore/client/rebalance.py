"""Queue allocation strategies (client/.../rebalance/ of rocketmq-all-4.9.7).

Each takes the consumer's own id, every consumer id of the group and every queue of the topic,
both sorted, and returns the consumer's share. All members compute the same split from the same
inputs, so the shares are disjoint and cover every queue.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable, Iterable

from .message import MessageQueue

AllocateStrategy = Callable[[str, list[MessageQueue], list[str]], list[MessageQueue]]


def allocate_averagely(cid: str, mq_all: list[MessageQueue],
                       cid_all: list[str]) -> list[MessageQueue]:
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


def allocate_consistent_hash(virtual_nodes: int = 10) -> AllocateStrategy:
    """AllocateMessageQueueConsistentHash: each consumer id gets ``virtual_nodes`` points on an
    MD5 ring ("<cid>-<i>"), each queue goes to the first point at or after the hash of its Java
    toString(). Few queues move when a consumer joins or leaves, unlike the block strategies."""
    if virtual_nodes < 0:
        raise ValueError(f"illegal virtual_nodes: {virtual_nodes}")

    def allocate(cid: str, mq_all: list[MessageQueue], cid_all: list[str]) -> list[MessageQueue]:
        if cid not in cid_all:
            return []
        ring: dict[int, str] = {}
        for c in cid_all:  # later points win a hash collision, as TreeMap.put does
            for i in range(virtual_nodes):
                ring[_md5_hash(f"{c}-{i}")] = c
        if not ring:
            return []
        points = sorted(ring)
        mine = []
        for mq in mq_all:
            key = (f"MessageQueue [topic={mq.topic}, brokerName={mq.broker_name}, "
                   f"queueId={mq.queue_id}]")
            at = bisect.bisect_left(points, _md5_hash(key))
            if ring[points[at % len(points)]] == cid:
                mine.append(mq)
        return mine

    return allocate


def allocate_by_config(queues: Iterable[MessageQueue]) -> AllocateStrategy:
    """AllocateMessageQueueByConfig: always these queues, whoever else is in the group."""
    fixed = list(queues)
    return lambda cid, mq_all, cid_all: list(fixed)


def allocate_by_machine_room(rooms: Iterable[str]) -> AllocateStrategy:
    """AllocateMessageQueueByMachineRoom: only queues of brokers named "<room>@<name>" with a
    room in ``rooms``, shared as AllocateMessageQueueAveragely's blocks."""
    wanted = frozenset(rooms)

    def allocate(cid: str, mq_all: list[MessageQueue], cid_all: list[str]) -> list[MessageQueue]:
        if cid not in cid_all:
            return []
        mine = [mq for mq in mq_all if _room_of(mq.broker_name) in wanted]
        i, c = cid_all.index(cid), len(cid_all)
        mod, rem = divmod(len(mine), c)
        out = mine[i * mod:i * mod + mod]
        if rem > i:
            out.append(mine[i + mod * c])
        return out

    return allocate


def allocate_machine_room_nearby(inner: AllocateStrategy,
                                 broker_room: Callable[[MessageQueue], str],
                                 consumer_room: Callable[[str], str]) -> AllocateStrategy:
    """AllocateMachineRoomNearby: queues are shared (by ``inner``) among the consumers of their
    own machine room; queues of a room with no consumer are shared among all consumers."""

    def allocate(cid: str, mq_all: list[MessageQueue], cid_all: list[str]) -> list[MessageQueue]:
        if cid not in cid_all:
            return []
        queues_in: dict[str, list[MessageQueue]] = {}
        for mq in mq_all:
            queues_in.setdefault(_required(broker_room(mq), mq), []).append(mq)
        consumers_in: dict[str, list[str]] = {}
        for c in cid_all:
            consumers_in.setdefault(_required(consumer_room(c), c), []).append(c)
        here = consumer_room(cid)
        out = inner(cid, queues_in.pop(here, []), consumers_in[here]) if here in queues_in else []
        for room in sorted(queues_in):  # Java walks a TreeMap
            if room not in consumers_in:
                out.extend(inner(cid, queues_in[room], cid_all))
        return out

    return allocate


def _md5_hash(key: str) -> int:
    """ConsistentHashRouter.MD5Hash: the first 4 bytes of the MD5 digest, big-endian."""
    return int.from_bytes(hashlib.md5(key.encode("utf-8")).digest()[:4], "big")


def _room_of(broker_name: str) -> str | None:
    parts = broker_name.split("@")
    return parts[0] if len(parts) == 2 else None


def _required(room: str, what: object) -> str:
    if not room:
        raise ValueError(f"machine room is empty for {what}")
    return room


STRATEGIES: dict[str, AllocateStrategy] = {
    "AVG": allocate_averagely,
    "AVG_BY_CIRCLE": allocate_averagely_by_circle,
    "CONSISTENT_HASH": allocate_consistent_hash(),
}
