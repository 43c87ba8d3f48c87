"""The controller's decisions (a port of RocketMQ 5's ReplicasInfoManager and DefaultElectPolicy),
as pure functions: the rules one by one, then any sequence of requests against invariants."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rmqstore.protocol.codes import ResponseCode as R
from rmqstore.protocol.controller_body import SyncStateSet, decode_elect_master_body
from rmqstore.server.controller.elect import LiveInfo, elect
from rmqstore.server.controller.replicas import (
    alter_sync_state_set,
    apply_broker_id,
    clean_broker_data,
    elect_master,
    needs_reelection,
    next_broker_id,
    register_broker,
    replica_info,
)
from rmqstore.server.controller.state import BrokerSetState, decode_state


def live_all(epoch: int = 1, offset: int = 0):
    return lambda b: LiveInfo(epoch, offset, 2**31 - 1)


def nobody(_b: int) -> None:
    return None


def set_of(*ids: int) -> BrokerSetState:
    s: BrokerSetState | None = None
    for i in ids:
        s = apply_broker_id(s, "c1", "b", i, f"h:{i};1").state
    assert s is not None
    return s


def test_ids_are_handed_out_from_one_and_claimed_once() -> None:
    assert next_broker_id(None, "c1", "b").header.next_broker_id == 1
    assert apply_broker_id(None, "c1", "b", 2, "h:2;1").code == R.CONTROLLER_BROKER_ID_INVALID
    s = set_of(1)
    assert next_broker_id(s, "c1", "b").header.next_broker_id == 2
    again = apply_broker_id(s, "c1", "b", 1, "h:1;1")  # the same broker, after a crash
    assert again.code == R.SUCCESS and again.state is None
    assert apply_broker_id(s, "c1", "b", 1, "h:9;2").code == R.CONTROLLER_BROKER_ID_INVALID


def test_the_first_election_takes_the_caller() -> None:
    s = set_of(1, 2)
    d = elect_master(s, 2, False, nobody)  # no heartbeat needed for the very first
    assert d.code == R.SUCCESS and d.state.master == 2
    assert (d.state.master_epoch, d.state.sync_state_set, d.state.sync_state_set_epoch) == \
        (1, {2}, 1)
    group, members = decode_elect_master_body(d.body)
    assert group.broker_addrs == {1: "h:1", 2: "h:2"} and members == {2}


def test_an_alive_master_stays_and_a_dead_one_is_replaced_from_the_in_sync_set() -> None:
    s = elect_master(set_of(1, 2, 3), 1, False, nobody).state
    s = alter_sync_state_set(s, 1, 1, SyncStateSet(frozenset({1, 2}), 1), lambda b: True).state
    still = elect_master(s, -1, False, live_all())
    assert still.code == R.CONTROLLER_MASTER_STILL_EXIST and still.state is None
    only_2_and_3 = lambda b: LiveInfo(1, 0, 1) if b != 1 else None  # noqa: E731
    d = elect_master(s, -1, False, only_2_and_3)
    assert d.state.master == 2 and d.state.master_epoch == 2  # 3 is not in sync
    assert elect_master(s, 3, True, only_2_and_3).code == R.CONTROLLER_ELECT_MASTER_FAILED


def test_nobody_in_sync_alive_leaves_no_master_and_a_new_epoch() -> None:
    s = elect_master(set_of(1, 2), 1, False, nobody).state
    d = elect_master(s, -1, False, nobody)
    assert d.code == R.CONTROLLER_MASTER_NOT_AVAILABLE
    gone = d.state
    assert gone.master is None and gone.master_epoch == 2
    only_2 = lambda b: LiveInfo(1, 0, 1) if b == 2 else None  # noqa: E731
    assert elect_master(gone, 2, False, only_2).code == R.CONTROLLER_ELECT_MASTER_FAILED
    assert elect_master(gone, 2, False, only_2, unclean=True).state.master == 2
    back = elect_master(gone, 1, False, live_all())  # the old master returns: it is in sync
    assert back.state.master == 1 and back.state.master_epoch == 3


def test_policy_orders_by_epoch_then_offset_then_priority() -> None:
    info = {1: LiveInfo(3, 100, 5), 2: LiveInfo(4, 0, 9), 3: LiveInfo(4, 50, 9),
            4: LiveInfo(4, 50, 1)}
    assert elect({1, 2, 3, 4}, None, None, None, info.get) == 4
    assert elect({1, 2, 3}, None, None, None, info.get) == 3
    assert elect({1, 2}, None, 1, None, info.get) == 1  # the old master, alive, stays
    assert elect({1, 2}, None, 1, 2, info.get) == 2
    assert elect({1, 2}, None, None, 7, info.get) is None


def test_alter_sync_state_set_fences_stale_masters() -> None:
    s = elect_master(set_of(1, 2), 1, False, nobody).state
    yes = lambda b: True  # noqa: E731
    grow = SyncStateSet(frozenset({1, 2}), 1)
    assert alter_sync_state_set(s, 2, 1, grow, yes).code == R.CONTROLLER_INVALID_MASTER
    assert alter_sync_state_set(s, 1, 0, grow, yes).code == R.CONTROLLER_FENCED_MASTER_EPOCH
    assert alter_sync_state_set(s, 1, 1, SyncStateSet(frozenset({1, 2}), 0), yes).code == \
        R.CONTROLLER_FENCED_SYNC_STATE_SET_EPOCH
    assert alter_sync_state_set(s, 1, 1, SyncStateSet(frozenset({1, 5}), 1), yes).code == \
        R.CONTROLLER_INVALID_REPLICAS
    assert alter_sync_state_set(s, 1, 1, grow, lambda b: b == 1).code == \
        R.CONTROLLER_BROKER_NOT_ALIVE
    assert alter_sync_state_set(s, 1, 1, SyncStateSet(frozenset({2}), 1), yes).code == \
        R.CONTROLLER_ALTER_SYNC_STATE_SET_FAILED
    d = alter_sync_state_set(s, 1, 1, grow, yes)
    assert d.header.new_sync_state_set_epoch == 2 and d.state.sync_state_set == {1, 2}


def test_register_names_the_master_only_while_it_lives() -> None:
    s = elect_master(set_of(1, 2), 1, False, nobody).state
    assert register_broker(s, "c1", "b", 2, "h:2", lambda b: True).header.master_address == "h:1"
    assert register_broker(s, "c1", "b", 2, "h:2", lambda b: False).header.master_address \
        is None
    moved = register_broker(s, "c1", "b", 2, "h:22", lambda b: True).state
    assert moved.address_of(2) == "h:22"
    assert register_broker(s, "c1", "b", 3, "h:3", lambda b: True).code == \
        R.CONTROLLER_BROKER_NEED_TO_BE_REGISTERED
    assert replica_info(None).code == R.CONTROLLER_BROKER_METADATA_NOT_EXIST


def test_clean_refuses_a_living_set() -> None:
    s = elect_master(set_of(1, 2), 1, False, nobody).state
    assert clean_broker_data(s, "b", None, False, lambda b: False).code == \
        R.CONTROLLER_INVALID_CLEAN_BROKER_METADATA
    assert clean_broker_data(s, "b", "2", False, lambda b: b == 2).code == \
        R.CONTROLLER_INVALID_CLEAN_BROKER_METADATA
    assert clean_broker_data(s, "b", "2", False, lambda b: False).state.members.keys() == {1}
    assert clean_broker_data(s, "b", None, True, lambda b: True).delete


# -- any sequence of requests ------------------------------------------------------------------

IDS = st.integers(1, 4)
REQUESTS = st.lists(st.one_of(
    st.tuples(st.just("apply"), IDS, st.integers(0, 1)),
    st.tuples(st.just("elect"), st.sampled_from([-1, 1, 2, 3, 4]), st.booleans()),
    st.tuples(st.just("alter"), st.frozensets(IDS, max_size=4), st.integers(0, 3),
              st.integers(0, 3)),
    st.tuples(st.just("live"), IDS, st.booleans()),
    st.tuples(st.just("register"), IDS, st.integers(0, 1)),
), max_size=60)


@settings(max_examples=400)
@given(REQUESTS)
def test_invariants_over_any_sequence(requests: list[tuple]) -> None:
    s: BrokerSetState | None = None
    alive: dict[int, bool] = {}
    for req in requests:
        before = s
        live_fn = lambda b: LiveInfo(1, b, 1) if alive.get(b) else None  # noqa: E731
        kind = req[0]
        if kind == "apply":
            d = apply_broker_id(s, "c1", "b", req[1], f"h:{req[1]};{req[2]}")
        elif kind == "elect":
            d = elect_master(s, req[1], req[2], live_fn)
        elif kind == "alter":
            master = s.master if s is not None and s.master is not None else 1
            epoch = s.master_epoch - req[2] if s is not None else 0
            isr_epoch = s.sync_state_set_epoch - req[3] if s is not None else 0
            d = alter_sync_state_set(s, master, epoch, SyncStateSet(req[1], isr_epoch),
                                     lambda b: alive.get(b, False))
        elif kind == "live":
            alive[req[1]] = req[2]
            continue
        else:
            addr = f"h:{req[1]}{'x' * req[2]}"
            d = register_broker(s, "c1", "b", req[1], addr, lambda b: alive.get(b, False))
        if d.state is None:
            continue
        s = d.state
        assert decode_state(s.encode()) == s  # what goes to etcd comes back the same
        assert s.sync_state_set <= s.members.keys()
        assert s.master is None or s.master in s.sync_state_set
        assert len({m.check_code for m in s.members.values()}) == len(s.members)
        if before is not None:
            assert s.master_epoch >= before.master_epoch
            assert s.sync_state_set_epoch >= before.sync_state_set_epoch
            if s.master_epoch > before.master_epoch and s.master is not None and \
                    before.master_epoch > 0:
                # a clean election: the new master was in sync, and heartbeating
                assert s.master in before.sync_state_set and alive.get(s.master)
            if s.sync_state_set != before.sync_state_set:
                assert s.sync_state_set_epoch > before.sync_state_set_epoch


def test_reelection_is_needed_only_for_a_dead_master_with_a_live_member() -> None:
    s = elect_master(set_of(1, 2), 1, False, nobody).state
    assert needs_reelection(s, lambda b: b == 2)
    assert not needs_reelection(s, lambda b: True)
    assert not needs_reelection(s, lambda b: False)
