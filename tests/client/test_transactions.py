"""Transactional messages against a real `rmqstore serve`: half messages, END_TRANSACTION,
the broker's CHECK_TRANSACTION_STATE, the check limit, and a broker restart.

The `rocketmq` 0.4.4 binding has no transaction producer, so our TransactionProducer is the
client here. What a topic's queue holds is read back from offset 0 with a LitePullConsumer of a
fresh group, so "delivered once" means "stored once in the real topic". The broker checks every
300 ms, after 1 s, at most 2 times (broker.conf below); each wait is bounded and proven by an
event (a marker message read back, a later half message being checked), never by a sleep.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from rmqstore.client import (
    ConsumeFromWhere,
    LitePullConsumer,
    LocalTransactionState,
    Message,
    MessageExt,
    TransactionProducer,
    sync,
)
from rmqstore.client.transaction import PROPERTY_PRODUCER_GROUP
from rmqstore.protocol import RequestCode, ResponseCode
from rmqstore.protocol.header_codec import encode_header
from rmqstore.protocol.headers import EndTransactionRequestHeader
from rmqstore.record import parse_msg_id

from .conftest import Server, run, wait_until

COMMIT, ROLLBACK, UNKNOWN = (LocalTransactionState.COMMIT, LocalTransactionState.ROLLBACK,
                             LocalTransactionState.UNKNOWN)
CHECK_MAX = 2
_groups = itertools.count()


def _conf(tmp: Path, check_max: int) -> Path:
    path = tmp / "broker.conf"
    path.write_text("brokerIP1=127.0.0.1\ntransactionCheckInterval=300\n"
                    f"transactionTimeOut=1000\ntransactionCheckMax={check_max}\n")
    return path


def _server(tmp: Path, split: bool, check_max: int) -> Server:
    srv = Server(tmp, split=split)
    srv.broker_proc.args += ["-c", str(_conf(tmp, check_max))]
    return srv


@pytest.fixture(scope="module")
def tx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = _server(tmp_path_factory.mktemp("tx"), split=False, check_max=CHECK_MAX)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


class Listener:
    """Decides by body: ``execute`` maps body -> state; ``check`` is asked later, per msg id."""

    def __init__(self, execute: dict[bytes, LocalTransactionState],
                 check: dict[bytes, LocalTransactionState]) -> None:
        self.execute = execute
        self.check = check
        self.checked: Counter[str] = Counter()
        self.checked_msgs: list[MessageExt] = []

    def execute_local_transaction(self, msg: Message, arg: object) -> LocalTransactionState:
        if msg.body == b"boom":
            raise RuntimeError("local transaction failed")
        return self.execute[msg.body]

    async def check_local_transaction(self, msg: MessageExt) -> LocalTransactionState:
        self.checked[msg.msg_id] += 1
        self.checked_msgs.append(msg)
        return self.check.get(msg.body, UNKNOWN)


async def read_queue(namesrv: str, topic: str, *until: bytes | str,
                     timeout_s: float = 15.0) -> list[MessageExt]:
    """Every message of topic from offset 0 on, until each of ``until`` (a body or a msg id)
    was among them."""
    c = LitePullConsumer(f"CG_tx_read_{next(_groups)}", namesrv, auto_commit=False,
                         consume_from_where=ConsumeFromWhere.FIRST_OFFSET, broker_suspend_ms=500)
    got: list[MessageExt] = []
    async with c:
        await c.assign(await c.fetch_message_queues(topic))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not all(any(u in (m.body, m.msg_id) for m in got) for u in until):
            assert loop.time() < deadline, f"{until!r} not in {topic}: {[m.body for m in got]}"
            got += await c.poll(0.5)
    return got


async def end_again(p: TransactionProducer, result, state: LocalTransactionState):
    """A two-way END_TRANSACTION repeating one already sent: its answer says what the broker
    did, and it is served after every earlier END of this connection."""
    header = EndTransactionRequestHeader(
        producer_group=p.group, tran_state_table_offset=result.queue_offset,
        commit_log_offset=parse_msg_id(result.offset_msg_id)[1], commit_or_rollback=state.value,
        msg_id=result.msg_id, transaction_id=result.transaction_id)
    request = p._transport.request(RequestCode.END_TRANSACTION, encode_header(header))
    return await p._transport.invoke(p.routes.broker_addr(result.queue.broker_name), request, 3.0)


def _producer(srv: Server, listener: Listener, group: str) -> TransactionProducer:
    return TransactionProducer(group, srv.namesrv, listener=listener, heartbeat_s=0.5,
                               route_refresh_s=1.0, send_timeout_s=3.0)


def test_commit_is_delivered_once(tx_server, topic) -> None:
    listener = Listener({b"pay": COMMIT}, {})

    async def main():
        async with _producer(tx_server, listener, "PG_tx_commit") as p:
            await p.create_topic(topic, 1)
            result = await p.send_in_transaction(Message(topic, b"pay", tags="T", keys="k1"), "arg")
            assert result.local_state is COMMIT and result.transaction_id == result.msg_id
            got = await read_queue(tx_server.namesrv, topic, b"pay")
            again = await end_again(p, result, COMMIT)
            assert again.code == ResponseCode.SYSTEM_ERROR and "already ended" in again.remark
            await p.send(Message(topic, b"marker"))
            got = await read_queue(tx_server.namesrv, topic, b"marker")
        [msg] = [m for m in got if m.body == b"pay"]
        assert msg.msg_id == result.msg_id and msg.tags == "T" and msg.keys == "k1"
        assert msg.sys_flag & 0xC == 0x8  # TRANSACTION_COMMIT_TYPE
        assert msg.properties[PROPERTY_PRODUCER_GROUP] == "PG_tx_commit"
        assert not {"TRAN_MSG", "REAL_TOPIC", "REAL_QID"} & msg.properties.keys()
        assert listener.checked == Counter()  # ended in time: never asked
    run(main())


def test_rollback_is_never_delivered_nor_checked(tx_server, topic) -> None:
    listener = Listener({b"undo": ROLLBACK, b"later": UNKNOWN}, {b"later": COMMIT})

    async def main():
        async with _producer(tx_server, listener, "PG_tx_rollback") as p:
            await p.create_topic(topic, 1)
            result = await p.send_in_transaction(Message(topic, b"undo"))
            assert result.local_state is ROLLBACK
            again = await end_again(p, result, COMMIT)  # a commit after the rollback is refused
            assert again.code == ResponseCode.SYSTEM_ERROR
            # A later half message checked and committed: the scan has passed "undo" by then.
            later = await p.send_in_transaction(Message(topic, b"later"))
            got = await read_queue(tx_server.namesrv, topic, b"later")
        assert [m.body for m in got] == [b"later"]
        assert listener.checked[later.msg_id] >= 1  # > 1 only if an answer took > 300 ms
        assert result.msg_id not in listener.checked
    run(main())


def test_unknown_then_check_commits_once(tx_server, topic) -> None:
    listener = Listener({b"slow": UNKNOWN}, {b"slow": COMMIT, b"boom": COMMIT})

    async def main():
        async with _producer(tx_server, listener, "PG_tx_check") as p:
            await p.create_topic(topic, 1)
            slow = await p.send_in_transaction(Message(topic, b"slow"))
            boom = await p.send_in_transaction(Message(topic, b"boom"))  # execute raises
            assert slow.local_state is UNKNOWN and boom.local_state is UNKNOWN
            await read_queue(tx_server.namesrv, topic, b"boom", b"slow")
            assert (await end_again(p, slow, COMMIT)).code == ResponseCode.SYSTEM_ERROR
            await p.send(Message(topic, b"marker"))
            got = await read_queue(tx_server.namesrv, topic, b"marker")
        assert sorted(m.body for m in got) == [b"boom", b"marker", b"slow"]
        assert listener.checked.keys() == {slow.msg_id, boom.msg_id}
        checked = next(m for m in listener.checked_msgs if m.msg_id == slow.msg_id)
        assert checked.topic == topic and checked.queue_id == slow.queue.queue_id
        assert checked.properties["TRANSACTION_CHECK_TIMES"] == "1"  # the first check
    run(main())


def test_check_stops_after_check_max(tx_server, topic) -> None:
    listener = Listener({b"stuck": UNKNOWN, b"later": UNKNOWN}, {b"later": COMMIT})

    async def main():
        async with _producer(tx_server, listener, "PG_tx_max") as p:
            await p.create_topic(topic, 1)
            stuck = await p.send_in_transaction(Message(topic, b"stuck"))
            await wait_until(lambda: listener.checked[stuck.msg_id] >= CHECK_MAX, 15)
            # Checked after "stuck" was parked: the scan passed it for good.
            later = await p.send_in_transaction(Message(topic, b"later"))
            got = await read_queue(tx_server.namesrv, topic, b"later")
            parked = await read_queue(tx_server.namesrv, "TRANS_CHECK_MAX_TIME_TOPIC", stuck.msg_id)
        assert [m.body for m in got] == [b"later"]
        assert listener.checked[stuck.msg_id] == CHECK_MAX
        assert listener.checked[later.msg_id] >= 1
        [dropped] = [m for m in parked if m.msg_id == stuck.msg_id]
        assert dropped.body == b"stuck" and dropped.properties["REAL_TOPIC"] == topic
    run(main())


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_unresolved_half_is_checked_after_restart(tmp_path, topic, how) -> None:
    """A clean stop persists the scan progress; a SIGKILL may lose the last 5 s of it, so old
    copies of ended transactions lie ahead again: they must not be asked about or delivered."""
    srv = _server(tmp_path, split=True, check_max=50)
    srv.start()
    listener = Listener({b"done": COMMIT, b"undo": ROLLBACK, b"open": UNKNOWN}, {})
    try:
        async def main():
            async with _producer(srv, listener, "PG_tx_restart") as p:
                await p.create_topic(topic, 1)
                done = await p.send_in_transaction(Message(topic, b"done"))
                await p.send_in_transaction(Message(topic, b"undo"))
                opened = await p.send_in_transaction(Message(topic, b"open"))
                await read_queue(srv.namesrv, topic, b"done")
                await wait_until(lambda: listener.checked[opened.msg_id] >= 1, 15)
                await asyncio.to_thread(getattr(srv.broker_proc, how))
                listener.check[b"open"] = COMMIT  # the answer changes while the broker is down
                await asyncio.to_thread(srv.broker_proc.start)
                got = await read_queue(srv.namesrv, topic, b"open", timeout_s=30)
                assert (await end_again(p, done, COMMIT)).code == ResponseCode.SYSTEM_ERROR
                await p.send(Message(topic, b"marker"))
                got = await read_queue(srv.namesrv, topic, b"marker")
            assert sorted(m.body for m in got) == [b"done", b"marker", b"open"]
            assert done.msg_id not in listener.checked
        run(main(), 90)
    finally:
        srv.stop()


def test_blocking_producer_with_plain_listener(tx_server, topic) -> None:
    """sync.TransactionProducer; plain listener methods (run off the loop); a compressed body
    put back by the check and committed as stored."""
    big = b"z" * 10_000  # over compress_over_bytes: zlib on the wire and in the store
    calls: list[str] = []

    class Plain:
        def execute_local_transaction(self, msg: Message, arg: object) -> LocalTransactionState:
            calls.append(f"execute {arg}")
            return UNKNOWN

        def check_local_transaction(self, msg: MessageExt) -> LocalTransactionState:
            calls.append(f"check {len(msg.body)}")
            return COMMIT

    with sync.TransactionProducer("PG_tx_sync", tx_server.namesrv, listener=Plain(),
                                  heartbeat_s=0.5) as p:
        p.create_topic(topic, 1)
        result = p.send_in_transaction(Message(topic, big), "x")
        got = run(read_queue(tx_server.namesrv, topic, result.msg_id))
    assert result.local_state is UNKNOWN
    assert [m.body for m in got] == [big] and got[0].sys_flag & 0x1
    assert calls[0] == "execute x" and set(calls[1:]) == {"check 10000"}
