"""Transactions on the broker without a client library: the half-message rewrite, the
CHECK_TRANSACTION_STATE body, the op ledger (against a list model), and END_TRANSACTION on an
in-process Broker driven with raw remoting requests (bad input gets a clear answer)."""

from __future__ import annotations

import asyncio
import time
import zlib
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from rmqstore import open_store
from rmqstore.client.message import decode_messages
from rmqstore.net import RemotingClient, RequestContext
from rmqstore.options import RecordInput
from rmqstore.protocol import RemotingCommand, RequestCode, ResponseCode
from rmqstore.record import encode_properties
from rmqstore.server.broker import Broker, BrokerConfig
from rmqstore.server.broker.handlers.send import Placement
from rmqstore.server.broker.longpoll import ArrivalWaiters
from rmqstore.server.broker.topics import BrokerTopics
from rmqstore.server.broker.transactions.bridge import (
    HALF_TOPIC,
    OP_TOPIC,
    TransactionalMessageBridge,
    check_body,
)
from rmqstore.server.broker.transactions.check import TransactionalMessageCheckService
from rmqstore.server.broker.transactions.end import EndTransactionProcessor
from rmqstore.server.broker.transactions.ops import OpLedger
from rmqstore.set_aside import SetAside

SMALL_STORE = {"commitlog_segment_bytes": 1 << 20, "consumequeue_units": 1024,
               "index_slots": 64, "index_entries": 256}


def test_rewrite_moves_only_transaction_sends() -> None:
    props = {"TRAN_MSG": "TRUE", "PGROUP": "PG"}
    moved = TransactionalMessageBridge.rewrite(Placement("T", 3, 0x4 | 0x1), props)
    assert moved == Placement(HALF_TOPIC, 0, 0x1)  # type reset to "not", compression kept
    assert props["REAL_TOPIC"] == "T" and props["REAL_QID"] == "3"
    plain = {"TRAN_MSG": "false"}
    assert TransactionalMessageBridge.rewrite(Placement("T", 1, 0), plain) is None
    assert plain == {"TRAN_MSG": "false"}


def test_check_body_is_the_record_with_the_real_topic(tmp_path: Path) -> None:
    body = zlib.compress(b"payload" * 100)
    with open_store(tmp_path / "s", background=False) as store:
        for born in (("10.1.2.3", 4567), ("::1", 9)):
            put = store.put_record(HALF_TOPIC, body, 0, RecordInput(
                {"REAL_TOPIC": "Orders", "REAL_QID": "2", "UNIQ_KEY": "U1", "TAGS": "TG"},
                born_host=born, sysflag=0x1, flag=5, born_timestamp=1234)).result
            msg = store.get_by_commitlog_offset(put.commitlog_offset)
            [ext] = decode_messages(check_body(msg, "Orders", 2))
            assert (ext.topic, ext.queue_id, ext.body) == ("Orders", 2, b"payload" * 100)
            assert ext.queue_offset == put.queue_offset
            assert ext.commitlog_offset == put.commitlog_offset
            assert ext.born_host == born and ext.flag == 5 and ext.born_timestamp == 1234
            assert ext.properties["UNIQ_KEY"] == "U1" and ext.tags == "TG"
            assert ext.offset_msg_id == put.msg_id


class FakeBridge:
    """The part of TransactionalMessageBridge the ledger uses, over plain lists."""

    def __init__(self, ops: list[int], half_size: int, progress: dict[str, int]) -> None:
        self.ops = ops
        self.half_size = half_size
        self.progress_table = dict(progress)

    def progress(self, topic: str) -> int | None:
        return self.progress_table.get(topic)

    def commit_progress(self, topic: str, offset: int) -> None:
        self.progress_table[topic] = offset

    def min_offset(self, topic: str) -> int:
        return 0

    def max_offset(self, topic: str) -> int:
        return self.half_size if topic == HALF_TOPIC else len(self.ops)

    def op_records(self, offset: int) -> list[tuple[int, int]]:
        return [(i, h) for i, h in enumerate(self.ops) if i >= offset]

    def half_key(self, offset: int) -> str | None:
        return None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 30), max_size=30), st.integers(0, 31))
def test_ledger_progress_matches_model(ops: list[int], passed: int) -> None:
    """After a scan passes every half below ``passed``: the op progress is the longest prefix
    of op records naming halves below it; ended halves at or above it are not live."""
    bridge = FakeBridge(ops, 31, {})
    ledger = OpLedger(bridge)  # type: ignore[arg-type]
    ledger.load()
    ledger.advance(passed)
    prefix = next((i for i, h in enumerate(ops) if h >= passed), len(ops))
    assert ledger.op_progress == prefix
    for half in range(32):
        live = ledger.live_copy(half)
        assert (live is None) == (half < passed or half in ops)
    reloaded = OpLedger(bridge)  # type: ignore[arg-type]
    reloaded.load()  # a restart: same answers from the persisted progress
    assert reloaded.op_progress == prefix and reloaded.half_progress == passed
    assert all((reloaded.live_copy(h) is None) == (ledger.live_copy(h) is None) for h in range(32))


def test_ledger_follows_copies_put_back() -> None:
    ledger = OpLedger(FakeBridge([], 10, {}))  # type: ignore[arg-type]
    ledger.load()
    ledger.supersede(0, 5, 500)
    ledger.supersede(5, 7, 700)
    ledger.advance(6)  # the scan passed 0 and 5 after putting them back
    assert ledger.live_copy(0) == (7, 700) and ledger.live_copy(5) == (7, 700)
    ledger.record_op(0, 7, None)
    assert ledger.live_copy(0) is None and ledger.live_copy(7) is None
    assert ledger.live_copy(8) == (8, None)
    assert ledger.live_copy(3) is None  # passed, never put back: ended or parked


# -- END_TRANSACTION on an in-process broker ------------------------------------------------


def _send_half(topic: str, body: bytes, group: str = "PG") -> RemotingCommand:
    props = f"TRAN_MSG\x01true\x02PGROUP\x01{group}\x02UNIQ_KEY\x01U-{body.decode()}"
    ext = {"a": group, "b": topic, "c": "TBW102", "d": "4", "e": "0", "f": "4",
           "g": str(int(time.time() * 1000)), "h": "0", "i": props, "j": "0", "k": "false"}
    return RemotingCommand.request(RequestCode.SEND_MESSAGE_V2, ext, body)


def _end(sent: RemotingCommand, kind: int, **changes: str) -> RemotingCommand:
    offset = int(sent.ext_fields["msgId"][-16:], 16)
    ext = {"producerGroup": "PG", "tranStateTableOffset": sent.ext_fields["queueOffset"],
           "commitLogOffset": str(offset), "commitOrRollback": str(kind),
           "msgId": sent.ext_fields["msgId"], **changes}
    return RemotingCommand.request(RequestCode.END_TRANSACTION, ext)


def test_end_transaction_answers(tmp_path: Path) -> None:
    async def main() -> None:
        cfg = BrokerConfig(listen_port=0, metrics_port=0, store_root=tmp_path / "store",
                           store_overrides=SMALL_STORE, broker_name="broker-t")
        client = RemotingClient()
        async with Broker(cfg) as broker:
            assert broker.store is not None

            def call(req):
                return client.invoke(broker.address, req, 5)

            sent = await call(_send_half("TxT", b"a"))
            assert sent.code == ResponseCode.SUCCESS
            assert broker.store.max_offset(HALF_TOPIC, 0) == 1
            assert broker.store.max_offset("TxT", 0) == 0  # invisible until committed
            for changes, remark in (({"producerGroup": "other"}, "The producer group wrong"),
                                    ({"tranStateTableOffset": "9"},
                                     "The transaction state table offset wrong"),
                                    ({"commitLogOffset": "1"},
                                     "Find prepared transaction message failed")):
                bad = await call(_end(sent, 8, **changes))
                assert (bad.code, bad.remark) == (ResponseCode.SYSTEM_ERROR, remark)
            missing = _end(sent, 8)
            del missing.ext_fields["msgId"]
            assert (await call(missing)).code == ResponseCode.SYSTEM_ERROR
            assert (await call(_end(sent, 0))).code == ResponseCode.SUCCESS  # unknown: no-op
            assert broker.store.max_offset(OP_TOPIC, 0) == 0
            assert (await call(_end(sent, 8))).code == ResponseCode.SUCCESS
            [msg] = broker.store.get("TxT", 0, 0, 8).messages
            assert msg.body == b"a" and msg.sysflag & 0xC == 0x8
            assert "REAL_TOPIC" not in msg.properties and msg.properties["PGROUP"] == "PG"
            for kind in (8, 12):  # ended: neither a second commit nor a rollback applies
                assert (await call(_end(sent, kind))).code == ResponseCode.SYSTEM_ERROR
            assert broker.store.max_offset("TxT", 0) == 1
            [op] = broker.store.get(OP_TOPIC, 0, 0, 8).messages
            assert (op.body, op.tags) == (b"0", "d")  # the half's queue offset, Java's op tag
            rolled = await call(_send_half("TxT", b"b"))
            assert (await call(_end(rolled, 12))).code == ResponseCode.SUCCESS
            assert broker.store.max_offset("TxT", 0) == 1
            assert broker.store.max_offset(OP_TOPIC, 0) == 2
        await client.close()
    asyncio.run(asyncio.wait_for(main(), 20))


# -- a restart whose persisted progress lags (crash): no second commit ----------------------


class FakeChannel:
    peer = "127.0.0.1:1"

    def __init__(self) -> None:
        self.sent: list[RemotingCommand] = []

    async def invoke_oneway(self, request: RemotingCommand, timeout_s: float) -> None:
        self.sent.append(request)


class FakeClients:
    def __init__(self, channel: FakeChannel) -> None:
        self.channel = channel

    def producer_channel(self, group: str) -> FakeChannel | None:
        return self.channel if group == "PG" else None


def _parts(store, channel: FakeChannel):
    cfg = BrokerConfig(transaction_timeout_ms=1000, transaction_check_max=5)
    bridge = TransactionalMessageBridge(store, BrokerTopics(store, lambda: None))
    ledger = OpLedger(bridge)
    ledger.load()
    spawned = []
    check = TransactionalMessageCheckService(cfg, bridge, ledger, FakeClients(channel),  # type: ignore[arg-type]
                                             spawned.append, SetAside(store, "transaction-check"))
    end = EndTransactionProcessor(cfg, bridge, ledger, ArrivalWaiters())
    return bridge, ledger, check, end, spawned


def test_lagging_progress_after_crash_commits_once(tmp_path: Path) -> None:
    async def main() -> None:
        channel = FakeChannel()
        ctx = RequestContext(channel.peer, channel)  # type: ignore[arg-type]
        with open_store(tmp_path / "s", background=False) as store:
            bridge, ledger, check, end, spawned = _parts(store, channel)
            props = {"TRAN_MSG": "true", "PGROUP": "PG", "UNIQ_KEY": "K1"}
            place = bridge.rewrite(Placement("Orders", 0, 0x4), props)
            assert place is not None
            store.put(place.topic, b"o", queue_id=0, properties=props,
                      born_timestamp=int(time.time() * 1000) - 10_000)
            assert not check.check_once()  # asks about a copy put back at half offset 1
            await asyncio.gather(*spawned)
            [asked] = channel.sent
            head = asked.ext_fields
            assert head["tranStateTableOffset"] == "1" and head["transactionId"] == "K1"
            [msg] = decode_messages(asked.body)
            assert (msg.topic, msg.queue_offset) == ("Orders", 1)
            assert msg.properties["TRANSACTION_CHECK_TIMES"] == "1"
            # The crash: the progress past the original (half offset 0) is lost.
            for topic in (HALF_TOPIC, OP_TOPIC):
                store.offsets.commit("CID_RMQ_SYS_TRANS", topic, 0, 0)
            bridge, ledger, check, end, spawned = _parts(store, channel)
            commit = RemotingCommand.request(RequestCode.END_TRANSACTION, {
                "producerGroup": "PG", "tranStateTableOffset": head["tranStateTableOffset"],
                "commitLogOffset": head["commitLogOffset"], "commitOrRollback": "8",
                "fromTransactionCheck": "true", "msgId": "K1", "transactionId": "K1"})
            assert (await end.end_transaction(commit, ctx)).code == ResponseCode.SUCCESS
            assert store.max_offset("Orders", 0) == 1
            for topic in (HALF_TOPIC, OP_TOPIC):  # and again, after the commit
                store.offsets.commit("CID_RMQ_SYS_TRANS", topic, 0, 0)
            bridge, ledger, check, end, spawned = _parts(store, channel)
            assert not check.check_once()
            assert spawned == [] and ledger.half_progress == 2  # the original is passed, unasked
            original = dict(commit.ext_fields, tranStateTableOffset="0",
                            commitLogOffset=str(store.get(HALF_TOPIC, 0, 0, 1).messages[0]
                                                .commitlog_offset))
            again = RemotingCommand.request(RequestCode.END_TRANSACTION, original)
            assert (await end.end_transaction(again, ctx)).code == ResponseCode.SYSTEM_ERROR
            assert store.max_offset("Orders", 0) == 1
    asyncio.run(asyncio.wait_for(main(), 20))


def test_a_half_message_that_cannot_be_put_back_is_set_aside(tmp_path: Path) -> None:
    """Properties that no longer fit once TRANSACTION_CHECK_TIMES is added used to fail the
    scan at the same half message every round, for every producer; it is set aside now and
    the next one is asked about."""
    async def main() -> None:
        channel = FakeChannel()
        with open_store(tmp_path / "s", background=False) as store:
            bridge, ledger, check, _, spawned = _parts(store, channel)
            old = int(time.time() * 1000) - 10_000
            full = {"TRAN_MSG": "true", "PGROUP": "PG", "UNIQ_KEY": "K0", "pad": ""}
            for key, props in (("K0", full), ("K1", {"TRAN_MSG": "true", "PGROUP": "PG",
                                                     "UNIQ_KEY": "K1"})):
                place = bridge.rewrite(Placement("Orders", 0, 0), props)
                assert place is not None
                if key == "K0":  # 5 bytes short of the limit: TRANSACTION_CHECK_TIMES won't fit
                    props["pad"] = "x" * (32767 - 5 - len(encode_properties(props)))
                store.put(place.topic, key.encode(), queue_id=0, properties=props,
                          born_timestamp=old)
            assert not check.check_once(int(time.time() * 1000) + 1000)
            await asyncio.gather(*spawned)
            assert [r.ext_fields["transactionId"] for r in channel.sent] == ["K1"]
            [aside] = store.get("rmq_sys_set_aside", 0, 0).messages
            assert aside.body == b"K0"
            assert aside.properties["SET_ASIDE_FROM"] == f"{HALF_TOPIC}:0:0"
            assert aside.properties["SET_ASIDE_BY"] == "transaction-check"
            assert "InvalidPropertyError" in aside.properties["SET_ASIDE_REASON"]
            assert ledger.half_progress == 2  # past both; the next round starts after them
    asyncio.run(asyncio.wait_for(main(), 20))
