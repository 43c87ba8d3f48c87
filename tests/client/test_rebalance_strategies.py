"""The allocation strategies: every member computes its own share from the same inputs, so
the shares must be disjoint and (except by-config and by-machine-room) cover every queue."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rmqstore.client.message import MessageQueue
from rmqstore.client.rebalance import (
    allocate_averagely,
    allocate_averagely_by_circle,
    allocate_by_config,
    allocate_by_machine_room,
    allocate_consistent_hash,
    allocate_machine_room_nearby,
)

ROOMS = ["hz", "sh", "bj"]


@st.composite
def group(draw):
    brokers = draw(st.lists(st.sampled_from([f"{r}@b{i}" for r in ROOMS for i in range(2)]),
                            min_size=1, max_size=4, unique=True))
    mqs = sorted(MessageQueue("T", b, q) for b in brokers for q in range(draw(st.integers(1, 5))))
    cids = sorted(draw(st.lists(st.from_regex(r"10\.0\.0\.[0-9]@[a-z]{1,3}", fullmatch=True),
                                min_size=1, max_size=6, unique=True)))
    return mqs, cids


def shares(strategy, mqs, cids):
    return {c: strategy(c, mqs, cids) for c in cids}


def assert_partition(by_cid, mqs):
    got = [mq for share in by_cid.values() for mq in share]
    assert sorted(got) == sorted(mqs)  # every queue once


@settings(max_examples=60, deadline=None)
@given(group())
def test_covering_strategies_partition_the_queues(g):
    mqs, cids = g

    def room(c):  # consumers in hz or sh
        return ROOMS[int(c.split("@")[0].rsplit(".", 1)[1]) % 2]

    for strategy in (allocate_averagely, allocate_averagely_by_circle, allocate_consistent_hash(),
                     allocate_consistent_hash(3),
                     allocate_machine_room_nearby(allocate_averagely,
                                                  lambda mq: mq.broker_name.split("@")[0], room)):
        assert_partition(shares(strategy, mqs, cids), mqs)
    assert allocate_consistent_hash()("not-a-member", mqs, cids) == []


@settings(max_examples=60, deadline=None)
@given(group(), st.from_regex(r"10\.1\.0\.[0-9]@new", fullmatch=True))
def test_consistent_hash_moves_queues_only_to_a_joining_consumer(g, newcomer):
    mqs, cids = g
    strategy = allocate_consistent_hash()
    before = {mq: c for c, share in shares(strategy, mqs, cids).items() for mq in share}
    after = {mq: c for c, share in shares(strategy, mqs, sorted([*cids, newcomer])).items()
             for mq in share}
    for mq in mqs:
        assert after[mq] in (before[mq], newcomer)


@settings(max_examples=60, deadline=None)
@given(group())
def test_machine_room_nearby_keeps_queues_in_their_room(g):
    mqs, cids = g

    def room(c):
        return ROOMS[int(c.split("@")[0].rsplit(".", 1)[1]) % 2]

    strategy = allocate_machine_room_nearby(allocate_averagely_by_circle,
                                            lambda mq: mq.broker_name.split("@")[0], room)
    rooms_with_consumers = {room(c) for c in cids}
    for c, share in shares(strategy, mqs, cids).items():
        for mq in share:
            broker_room = mq.broker_name.split("@")[0]
            assert broker_room == room(c) or broker_room not in rooms_with_consumers


@settings(max_examples=60, deadline=None)
@given(group(), st.sets(st.sampled_from(ROOMS)))
def test_by_machine_room_shares_only_the_chosen_rooms(g, rooms):
    mqs, cids = g
    by_cid = shares(allocate_by_machine_room(rooms), mqs, cids)
    assert_partition(by_cid, [mq for mq in mqs if mq.broker_name.split("@")[0] in rooms])


def test_by_config_is_fixed():
    mine = [MessageQueue("T", "b", 3)]
    strategy = allocate_by_config(mine)
    assert strategy("c1", [MessageQueue("T", "b", q) for q in range(8)], ["c1", "c2"]) == mine
