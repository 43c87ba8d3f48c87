"""The Broker on 127.0.0.1 with a tmp store, driven by our RemotingClient as a RocketMQ client
would: send (V1, V2, batch), pull with long polling and tag filters, offsets, heartbeats and
consumer lists, locks, sync flush, NameServer registration. Every wait is bounded."""

from __future__ import annotations

import asyncio
import json
import os
import struct
import threading
import time
import zlib
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Self

import pytest

import rmqstore._native
from rmqstore import aio_commit
from rmqstore.net import Dispatcher, RemotingClient, RemotingServer, RequestContext, ServerConfig
from rmqstore.protocol import RemotingCommand, RequestCode, ResponseCode
from rmqstore.protocol.message import encode_batch
from rmqstore.server.broker import Broker, BrokerConfig

SMALL_STORE = {"commitlog_segment_bytes": 1 << 20, "consumequeue_units": 1024,
               "index_slots": 64, "index_entries": 256}
C = RequestCode
R = ResponseCode
ACL = {"AccessKey": "", "OnsChannel": "ALIYUN", "Signature": "x"}  # C++ sends these always


def run(test: Callable[..., Coroutine[Any, Any, None]], *args: Any, timeout_s: float = 20) -> None:
    asyncio.run(asyncio.wait_for(test(*args), timeout_s))


def config(tmp: Path, **changes: Any) -> BrokerConfig:
    base = BrokerConfig(listen_port=0, metrics_port=0, store_root=tmp / "store",
                        store_overrides=SMALL_STORE, broker_name="broker-t")
    return base.replace(**changes)


async def call(client: RemotingClient, broker: Broker, code: int, ext: dict | None = None,
               body: bytes = b"", timeout_s: float = 5) -> RemotingCommand:
    return await client.invoke(broker.address, RemotingCommand.request(code, ext, body), timeout_s)


def send_v1(topic: str, queue_id: int, props: str, **extra: str) -> dict:
    """SEND_MESSAGE as the C++ client in PyPI rocketmq 0.4.4 writes it."""
    return {"batch": "0", "bornTimestamp": "1795609945950", "defaultTopic": "TBW102",
            "defaultTopicQueueNums": "4", "flag": "0", "producerGroup": "PG", "properties": props,
            "queueId": str(queue_id), "reconsumeTimes": "0", "sysFlag": "0", "topic": topic,
            "unitMode": "0", **ACL, **extra}


def send_v2(topic: str, queue_id: int, props: str, batch: bool = False) -> dict:
    return {"a": "PG", "b": topic, "c": "TBW102", "d": "4", "e": str(queue_id), "f": "0",
            "g": str(int(time.time() * 1000)), "h": "7", "i": props, "j": "0", "k": "false",
            "m": "true" if batch else "false"}


def pull_ext(topic: str, queue_id: int, offset: int, sys_flag: int = 4, sub: str = "*",
             suspend_ms: int = 0, group: str = "CG", commit: int = 0) -> dict:
    return {"consumerGroup": group, "topic": topic, "queueId": str(queue_id),
            "queueOffset": str(offset), "maxMsgNums": "32", "sysFlag": str(sys_flag),
            "commitOffset": str(commit), "suspendTimeoutMillis": str(suspend_ms),
            "subscription": sub, "subVersion": "0", **ACL}


def props(**kv: str) -> str:
    return "".join(f"{k}\x01{v}\x02" for k, v in kv.items())  # C++ style: trailing \x02


def parse_records(body: bytes) -> list[dict]:
    """Decode a pull body the way MessageDecoder.decodes does (IPv4 hosts)."""
    out, pos = [], 0
    while pos < len(body):
        (total, magic, _crc, qid, flag, qoff, phys, sysflag, born_ts) = struct.unpack_from(
            ">iIiiiqqiq", body, pos)
        store_host = body[pos + 64:pos + 72]
        body_len = struct.unpack_from(">i", body, pos + 84)[0]
        b = body[pos + 88:pos + 88 + body_len]
        t = pos + 88 + body_len
        topic_len = body[t]
        topic = body[t + 1:t + 1 + topic_len].decode()
        p = t + 1 + topic_len
        props_len = struct.unpack_from(">h", body, p)[0]
        raw_props = body[p + 2:p + 2 + props_len].decode()
        pairs = dict(x.split("\x01", 1) for x in raw_props.split("\x02") if x)
        assert magic == 0xDAA320A7 and p + 2 + props_len - pos == total
        msg_id = (store_host + phys.to_bytes(8, "big")).hex().upper()
        out.append({"queue_id": qid, "flag": flag, "queue_offset": qoff, "sysflag": sysflag,
                    "born_ts": born_ts, "body": b, "topic": topic, "props": pairs,
                    "msg_id": msg_id, "store_host": store_host})
        pos += total
    return out


class Harness:
    """A started broker and a client; closed in reverse order."""

    def __init__(self, cfg: BrokerConfig) -> None:
        self.broker = Broker(cfg)
        self.client = RemotingClient()

    async def __aenter__(self) -> Self:
        await self.broker.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.close()
        await self.broker.stop()

    async def call(self, code: int, ext: dict | None = None, body: bytes = b"",
                   timeout_s: float = 5) -> RemotingCommand:
        return await call(self.client, self.broker, code, ext, body, timeout_s)


# -- send and pull ------------------------------------------------------------------------


def test_send_v1_and_v2_then_pull_byte_identical(tmp_path: Path) -> None:
    async def main() -> None:
        async with Harness(config(tmp_path)) as h:
            await h.call(C.UPDATE_AND_CREATE_TOPIC, {
                "topic": "T1", "defaultTopic": "TBW102", "readQueueNums": "2",
                "writeQueueNums": "2", "perm": "6", "topicFilterType": "SINGLE_TAG"})
            p1 = props(KEYS="k1", TAGS="TagA", UNIQ_KEY="0A" * 16, WAIT="true")
            body1 = bytes(range(256)) * 20  # over 4 KiB: stored uncompressed, as sent
            r1 = await h.call(C.SEND_MESSAGE, send_v1("T1", 1, p1), body1)
            assert r1.code == R.SUCCESS, r1.remark
            assert r1.ext_fields["queueId"] == "1" and r1.ext_fields["queueOffset"] == "0"
            assert len(r1.ext_fields["msgId"]) == 32
            assert r1.ext_fields["MSG_REGION"] == "DefaultRegion"
            p2 = "UNIQ_KEY\x01" + "0B" * 16 + "\x02TAGS\x01TagB"  # Java style: no trailing \x02
            r2 = await h.call(C.SEND_MESSAGE_V2, send_v2("T1", 1, p2), b"second")
            assert r2.code == R.SUCCESS and r2.ext_fields["queueOffset"] == "1"

            pr = await h.call(C.PULL_MESSAGE, pull_ext("T1", 1, 0))
            assert pr.code == R.SUCCESS
            assert pr.ext_fields == {"suggestWhichBrokerId": "0", "nextBeginOffset": "2",
                                     "minOffset": "0", "maxOffset": "2"}
            m1, m2 = parse_records(pr.body)
            assert m1["body"] == body1 and m2["body"] == b"second"
            assert m1["props"] == {"KEYS": "k1", "TAGS": "TagA", "UNIQ_KEY": "0A" * 16,
                                   "CLUSTER": "DefaultCluster"}
            assert m2["props"] == {"TAGS": "TagB", "UNIQ_KEY": "0B" * 16,
                                   "CLUSTER": "DefaultCluster"}
            assert (m1["msg_id"], m2["msg_id"]) == (r1.ext_fields["msgId"], r2.ext_fields["msgId"])
            assert m1["born_ts"] == 1795609945950 and m2["flag"] == 7 and m1["topic"] == "T1"
            port = int(h.broker.address.rsplit(":", 1)[1])
            assert m1["store_host"] == bytes([127, 0, 0, 1]) + port.to_bytes(4, "big")
            # A compressed body (sysFlag bit 0) is stored and served as the producer made it.
            packed = zlib.compress(b"z" * 5000, 5)
            r3 = await h.call(C.SEND_MESSAGE, send_v1("T1", 0, "", sysFlag="1"), packed)
            assert r3.code == R.SUCCESS
            (m3,) = parse_records((await h.call(C.PULL_MESSAGE, pull_ext("T1", 0, 0))).body)
            assert m3["body"] == packed and m3["sysflag"] & 1
            # Queue id out of range, and a topic no producer may write.
            bad = await h.call(C.SEND_MESSAGE, send_v1("T1", 5, ""), b"x")
            assert bad.code == R.SYSTEM_ERROR
            forbidden = await h.call(C.SEND_MESSAGE, send_v1("SCHEDULE_TOPIC_XXXX", 0, ""), b"x")
            assert forbidden.code == R.NO_PERMISSION

    run(main)


def test_batch_send_keeps_each_message_properties(tmp_path: Path) -> None:
    async def main() -> None:
        async with Harness(config(tmp_path)) as h:
            entries = [(f"body-{i}".encode(), i,
                        props(UNIQ_KEY=f"{i:032X}", TAGS=f"Tag{i}").encode())
                       for i in range(3)]
            r = await h.call(C.SEND_BATCH_MESSAGE, send_v2("B1", 2, "", batch=True),
                             encode_batch(entries))
            assert r.code == R.SUCCESS, r.remark
            ids = r.ext_fields["msgId"].split(",")
            assert len(ids) == 3 and r.ext_fields["queueOffset"] == "0"
            pr = await h.call(C.PULL_MESSAGE, pull_ext("B1", 2, 0))
            got = parse_records(pr.body)
            assert [m["body"] for m in got] == [b"body-0", b"body-1", b"body-2"]
            assert [m["props"]["UNIQ_KEY"] for m in got] == [f"{i:032X}" for i in range(3)]
            assert [m["queue_offset"] for m in got] == [0, 1, 2]
            assert [m["flag"] for m in got] == [0, 1, 2]
            assert [m["msg_id"] for m in got] == ids
            # The C++ client marks a batch with batch="1" on code 10.
            r = await h.call(C.SEND_MESSAGE, send_v1("B1", 2, "", batch="1"),
                             encode_batch(entries[:2]))
            assert r.code == R.SUCCESS and len(r.ext_fields["msgId"].split(",")) == 2
            r = await h.call(C.SEND_BATCH_MESSAGE, send_v2("B1", 2, "", batch=True), b"\x00\x01")
            assert r.code == R.MESSAGE_ILLEGAL

    run(main)


def test_auto_create_topic_from_tbw102_and_refusal_when_disabled(tmp_path: Path) -> None:
    async def main() -> None:
        async with Harness(config(tmp_path / "a")) as h:
            r = await h.call(C.SEND_MESSAGE, send_v1("Fresh", 3, props(TAGS="x")), b"hi")
            assert r.code == R.SUCCESS, r.remark
            table = json.loads((await h.call(C.GET_ALL_TOPIC_CONFIG)).body)["topicConfigTable"]
            assert table["Fresh"]["writeQueueNums"] == 4 and table["Fresh"]["perm"] == 6
            assert table["TBW102"]["perm"] == 7 and table["TBW102"]["readQueueNums"] == 8
        async with Harness(config(tmp_path / "b", auto_create_topic=False)) as h:
            r = await h.call(C.SEND_MESSAGE, send_v1("Fresh", 0, ""), b"hi")
            assert r.code == R.TOPIC_NOT_EXIST
            table = json.loads((await h.call(C.GET_ALL_TOPIC_CONFIG)).body)["topicConfigTable"]
            assert "TBW102" not in table

    run(main)


def test_long_polling_holds_until_a_send(tmp_path: Path) -> None:
    async def main() -> None:
        async with Harness(config(tmp_path)) as h:
            await h.call(C.SEND_MESSAGE, send_v1("LP", 0, ""), b"first")
            # No suspend bit: an empty read answers at once (the C++ pull consumer's loop).
            t0 = time.monotonic()
            r = await h.call(C.PULL_MESSAGE, pull_ext("LP", 0, 1))
            assert r.code == R.PULL_NOT_FOUND and r.ext_fields["nextBeginOffset"] == "1"
            assert time.monotonic() - t0 < 0.5
            # Suspend bit and nothing arrives: answered PULL_NOT_FOUND after the hold time.
            t0 = time.monotonic()
            r = await h.call(C.PULL_MESSAGE, pull_ext("LP", 0, 1, sys_flag=6, suspend_ms=300))
            held = time.monotonic() - t0
            assert r.code == R.PULL_NOT_FOUND and 0.25 < held < 2.0
            # Held pull released by a send from another connection, long before its timeout.
            other = RemotingClient()
            t0 = time.monotonic()
            pull = asyncio.create_task(
                h.call(C.PULL_MESSAGE, pull_ext("LP", 0, 1, sys_flag=6, suspend_ms=15000),
                       timeout_s=20))
            await asyncio.sleep(0.2)
            assert not pull.done()
            await call(other, h.broker, C.SEND_MESSAGE, send_v1("LP", 0, ""), b"wake")
            r = await asyncio.wait_for(pull, 5)
            elapsed = time.monotonic() - t0
            await other.close()
            assert r.code == R.SUCCESS and elapsed < 1.5
            assert [m["body"] for m in parse_records(r.body)] == [b"wake"]
            # A send to another queue does not release it; stopping the broker answers it.
            await h.call(C.SEND_MESSAGE, send_v1("LP", 1, ""), b"elsewhere")
            pull = asyncio.create_task(
                h.call(C.PULL_MESSAGE, pull_ext("LP", 0, 2, sys_flag=6, suspend_ms=15000),
                       timeout_s=20))
            await asyncio.sleep(0.2)
            await h.call(C.SEND_MESSAGE, send_v1("LP", 1, ""), b"elsewhere")
            await asyncio.sleep(0.1)
            assert not pull.done()
            await h.broker.stop()
            r = await asyncio.wait_for(pull, 5)
            assert r.code == R.PULL_NOT_FOUND

    run(main)


def test_tag_filter_and_pull_status_codes(tmp_path: Path) -> None:
    async def main() -> None:
        async with Harness(config(tmp_path)) as h:
            for tag in ("TagA", "TagB", "TagC"):
                await h.call(C.SEND_MESSAGE, send_v1("TF", 0, props(TAGS=tag)), tag.encode())
            r = await h.call(C.PULL_MESSAGE, pull_ext("TF", 0, 0, sub="TagA || TagC"))
            assert r.code == R.SUCCESS and r.ext_fields["nextBeginOffset"] == "3"
            assert [m["body"] for m in parse_records(r.body)] == [b"TagA", b"TagC"]
            r = await h.call(C.PULL_MESSAGE, pull_ext("TF", 0, 0, sub="TagZ"))
            assert r.code == R.PULL_RETRY_IMMEDIATELY and r.ext_fields["nextBeginOffset"] == "3"
            # Past the end: Java's getMessage sends the client to minOffset while that is 0.
            r = await h.call(C.PULL_MESSAGE, pull_ext("TF", 0, 9))
            assert r.code == R.PULL_OFFSET_MOVED and r.ext_fields["nextBeginOffset"] == "0"
            r = await h.call(C.PULL_MESSAGE, pull_ext("TF", 2, 5))  # empty queue, offset != 0
            assert r.code == R.PULL_OFFSET_MOVED and r.ext_fields["nextBeginOffset"] == "0"
            r = await h.call(C.PULL_MESSAGE, pull_ext("NoSuchTopic", 0, 0))
            assert r.code == R.TOPIC_NOT_EXIST
            r = await h.call(C.PULL_MESSAGE, pull_ext("TF", 0, 0, sys_flag=2))  # no subscription
            assert r.code == R.SUBSCRIPTION_NOT_EXIST

    run(main)


# -- offsets -------------------------------------------------------------------------------


def test_offsets_round_trip_and_survive_restart(tmp_path: Path) -> None:
    q = {"consumerGroup": "OG", "topic": "OT", "queueId": "0"}

    async def main() -> None:
        async with Harness(config(tmp_path)) as h:
            before = int(time.time() * 1000)
            for i in range(5):
                await h.call(C.SEND_MESSAGE, send_v1("OT", 0, ""), b"m%d" % i)
                await asyncio.sleep(0.01)
            r = await h.call(C.QUERY_CONSUMER_OFFSET, q)
            assert r.code == R.SUCCESS and r.ext_fields["offset"] == "0"  # queue still starts at 0
            await h.client.invoke_oneway(h.broker.address, RemotingCommand.request(
                C.UPDATE_CONSUMER_OFFSET, {**q, "commitOffset": "3"}), 2)
            await asyncio.sleep(0.1)
            assert (await h.call(C.QUERY_CONSUMER_OFFSET, q)).ext_fields["offset"] == "3"
            # The commit offset carried by a pull (sysFlag bit 0).
            await h.call(C.PULL_MESSAGE, pull_ext("OT", 0, 4, sys_flag=5, group="OG", commit=4))
            assert (await h.call(C.QUERY_CONSUMER_OFFSET, q)).ext_fields["offset"] == "4"
            other = {**q, "topic": "OT", "queueId": "0", "consumerGroup": "Other"}
            assert (await h.call(C.GET_MAX_OFFSET, other)).ext_fields["offset"] == "5"
            assert (await h.call(C.GET_MIN_OFFSET, other)).ext_fields["offset"] == "0"
            ts = int((await h.call(C.GET_EARLIEST_MSG_STORETIME, other)).ext_fields["timestamp"])
            assert before <= ts <= before + 5000
            r = await h.call(C.SEARCH_OFFSET_BY_TIMESTAMP,
                             {**other, "timestamp": str(before - 10_000)})
            assert r.ext_fields["offset"] == "0"
            r = await h.call(C.SEARCH_OFFSET_BY_TIMESTAMP, {**other, "timestamp": str(ts + 60_000)})
            assert r.ext_fields["offset"] == "4"  # all older: the last message
        async with Harness(config(tmp_path)) as h:
            assert (await h.call(C.QUERY_CONSUMER_OFFSET, q)).ext_fields["offset"] == "4"
            assert (await h.call(C.GET_MAX_OFFSET, q)).ext_fields["offset"] == "5"

    run(main)


# -- clients -------------------------------------------------------------------------------


def heartbeat_body(client_id: str, group: str, topic: str) -> bytes:
    """The C++ client's form: enums as ints, subVersion as a string."""
    return json.dumps({"clientID": client_id, "consumerDataSet": [{
        "consumeFromWhere": 0, "consumeType": 1, "groupName": group, "messageModel": 1,
        "subscriptionDataSet": [{"subString": "TagA || TagB", "subVersion": "1700000000000",
                                 "tagsSet": ["TagA", "TagB"], "codeSet": [0, 0], "topic": topic}]}],
        "producerDataSet": [{"groupName": "PG"}]}).encode()


def test_heartbeat_consumer_list_and_notify(tmp_path: Path) -> None:
    async def main() -> None:
        async with Harness(config(tmp_path)) as h:
            notified: asyncio.Queue[str] = asyncio.Queue()

            async def on_notify(req: RemotingCommand, ctx: RequestContext) -> None:
                notified.put_nowait(req.ext_fields["consumerGroup"])

            listener = Dispatcher()
            listener.register(C.NOTIFY_CONSUMER_IDS_CHANGED, on_notify)
            b = RemotingClient(dispatcher=listener)
            a = RemotingClient()
            r = await call(b, h.broker, C.HEART_BEAT, ACL,
                           heartbeat_body("1-127.0.0.1@B", "G", "HT"))
            assert r.code == R.SUCCESS
            assert await asyncio.wait_for(notified.get(), 2) == "G"  # B's own join
            await call(a, h.broker, C.HEART_BEAT, ACL, heartbeat_body("2-127.0.0.1@A", "G", "HT"))
            assert await asyncio.wait_for(notified.get(), 2) == "G"  # A joined: B hears of it
            r = await call(b, h.broker, C.GET_CONSUMER_LIST_BY_GROUP, {"consumerGroup": "G"})
            assert sorted(json.loads(r.body)["consumerIdList"]) == \
                ["1-127.0.0.1@B", "2-127.0.0.1@A"]
            # The heartbeat's subscription serves pulls without the subscription bit.
            await call(a, h.broker, C.SEND_MESSAGE, send_v1("HT", 0, props(TAGS="TagC")), b"c")
            await call(a, h.broker, C.SEND_MESSAGE, send_v1("HT", 0, props(TAGS="TagB")), b"b")
            r = await call(a, h.broker, C.PULL_MESSAGE, pull_ext("HT", 0, 0, sys_flag=0, group="G"))
            assert [m["body"] for m in parse_records(r.body)] == [b"b"]
            # The retry topic was created for the group.
            table = json.loads((await h.call(C.GET_ALL_TOPIC_CONFIG)).body)["topicConfigTable"]
            assert "%RETRY%G" in table
            # A's connection closes: B is told, and the list shrinks.
            await a.close()
            assert await asyncio.wait_for(notified.get(), 2) == "G"
            r = await call(b, h.broker, C.GET_CONSUMER_LIST_BY_GROUP, {"consumerGroup": "G"})
            assert json.loads(r.body)["consumerIdList"] == ["1-127.0.0.1@B"]
            r = await call(b, h.broker, C.UNREGISTER_CLIENT, {
                "clientID": "1-127.0.0.1@B", "consumerGroup": "G", "producerGroup": "PG", **ACL})
            assert r.code == R.SUCCESS
            r = await call(b, h.broker, C.GET_CONSUMER_LIST_BY_GROUP, {"consumerGroup": "G"})
            assert r.code == R.SYSTEM_ERROR and "no consumer for this group" in (r.remark or "")
            await b.close()

    run(main)


def test_silent_client_expires(tmp_path: Path) -> None:
    async def main() -> None:
        async with Harness(config(tmp_path, channel_expired_ms=300)) as h:
            await h.call(C.HEART_BEAT, ACL, heartbeat_body("9-127.0.0.1@X", "EG", "ET"))
            r = await h.call(C.GET_CONSUMER_LIST_BY_GROUP, {"consumerGroup": "EG"})
            assert r.code == R.SUCCESS
            await asyncio.sleep(0.8)
            fresh = RemotingClient()
            r = await call(fresh, h.broker, C.GET_CONSUMER_LIST_BY_GROUP, {"consumerGroup": "EG"})
            await fresh.close()
            assert r.code == R.SYSTEM_ERROR

    run(main)


# -- locks ---------------------------------------------------------------------------------


def lock_body(client: str, *queues: int) -> bytes:
    return json.dumps({"clientId": client, "consumerGroup": "LG", "mqSet": [
        {"brokerName": "broker-t", "queueId": q, "topic": "LT"} for q in queues]}).encode()


def test_lock_unlock_with_expiry(tmp_path: Path) -> None:
    async def main() -> None:
        async with Harness(config(tmp_path, lock_max_live_ms=300)) as h:
            def held(r: RemotingCommand) -> list[int]:
                return sorted(m["queueId"] for m in json.loads(r.body)["lockOKMQSet"])

            assert held(await h.call(C.LOCK_BATCH_MQ, ACL, lock_body("c1", 0, 1))) == [0, 1]
            assert held(await h.call(C.LOCK_BATCH_MQ, ACL, lock_body("c2", 1, 2))) == [2]
            assert held(await h.call(C.LOCK_BATCH_MQ, ACL, lock_body("c1", 0, 1))) == [0, 1]
            r = await h.call(C.UNLOCK_BATCH_MQ, ACL, lock_body("c1", 0))
            assert r.code == R.SUCCESS
            assert held(await h.call(C.LOCK_BATCH_MQ, ACL, lock_body("c2", 0, 1))) == [0]
            await asyncio.sleep(0.4)  # c1's lease on queue 1 lapses
            assert held(await h.call(C.LOCK_BATCH_MQ, ACL, lock_body("c2", 1))) == [1]

    run(main)


# -- sync flush, unknown codes, registration ------------------------------------------------


class SlowSyncer:
    """rmqstore._native.Syncer on a slow disk: each fdatasync takes `delay_s` (or fails with
    `errno` while that is set), on a thread, and is announced on the eventfd as the native one
    does."""

    def __init__(self, efd: int, delay_s: float = 0.3) -> None:
        self.efd, self.delay_s, self.errno = efd, delay_s, 0
        self.synced: list[float] = []
        self._busy, self._done = False, (-1, 0)

    def submit(self, fd: int, cell, delay_us: int = 0, want: int = 0, waiting: int = 0) -> bool:
        if self._busy:
            return False
        self._busy = True
        threading.Thread(target=self._run, args=(fd, cell), daemon=True).start()
        return True

    def _run(self, fd: int, cell) -> None:
        time.sleep(self.delay_s)
        upto = cell[0]  # read after the wait, as the native syncer does
        if self.errno:
            self._done = (upto, self.errno)
        else:
            os.fdatasync(fd)
            self.synced.append(time.monotonic())
            self._done = (upto, 0)
        self._busy = False
        os.eventfd_write(self.efd, 1)

    def waiting_one_more(self) -> None:
        pass  # this slow disk always waits its full delay

    def done(self) -> tuple[int, int]:
        return self._done

    def close(self) -> None:
        pass


def slow_syncers(monkeypatch: pytest.MonkeyPatch, delay_s: float) -> list[SlowSyncer]:
    made: list[SlowSyncer] = []

    def make(efd: int) -> SlowSyncer:
        made.append(SlowSyncer(efd, delay_s))
        return made[-1]

    monkeypatch.setattr(rmqstore._native, "Syncer", make)
    return made


def test_sync_flush_answers_after_durability(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    made = slow_syncers(monkeypatch, 0.3)  # a slow disk: the loop must keep serving meanwhile

    async def main() -> None:
        async with Harness(config(tmp_path, sync_flush=True)) as h:
            t0 = time.monotonic()
            send = asyncio.create_task(h.call(C.SEND_MESSAGE, send_v1("SF", 0, ""), b"durable"))
            await asyncio.sleep(0.05)
            r = await h.call(C.GET_MAX_OFFSET, {"topic": "SF", "queueId": "0"})
            assert time.monotonic() - t0 < 0.25 and r.ext_fields["offset"] == "1"
            assert not send.done()
            r = await send
            answered = time.monotonic()
            assert r.code == R.SUCCESS and answered - t0 >= 0.3
            synced = made[0].synced
            assert synced and synced[0] <= answered  # answered only after an fdatasync ended
            assert h.broker.store.durable_offset > 0
            # Sends during a sync share the next one (group commit): 8 sends, at most 2 syncs.
            before = len(synced)
            rs = await asyncio.gather(*(h.call(C.SEND_MESSAGE, send_v1("SF", 0, ""), b"g%d" % i)
                                        for i in range(8)))
            assert all(r.code == R.SUCCESS for r in rs) and 1 <= len(synced) - before <= 2
            # WAIT=false: the producer does not wait for the disk (isWaitStoreMsgOK), and the
            # message is made durable soon all the same (the put cues the group commit).
            t0 = time.monotonic()
            r = await h.call(C.SEND_MESSAGE, send_v1("SF", 0, props(WAIT="false")), b"fast")
            assert r.code == R.SUCCESS and time.monotonic() - t0 < 0.25
            end = h.broker.store.commitlog.max_offset
            deadline = time.monotonic() + 5
            while h.broker.store.durable_offset < end and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert h.broker.store.durable_offset >= end

    run(main)


def test_a_sync_send_that_wakes_a_held_pull_leaves_the_loop_free(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SYNC_FLUSH, one producer: its sends are synced by the loop's own fdatasync, except one
    that wakes a held pull, synced on the native thread so that the pull is answered meanwhile
    (aio_commit.keep_loop_free, wired through ArrivalWaiters.on_wake)."""
    monkeypatch.setattr(aio_commit, "INLINE_BELOW_S", 60.0)  # quick, however loaded the machine
    on_loop: list[int] = []
    real = os.fdatasync
    loop_thread = threading.get_ident()

    def recorded(fd: int) -> None:
        real(fd)
        if threading.get_ident() == loop_thread:
            on_loop.append(fd)

    monkeypatch.setattr(os, "fdatasync", recorded)

    async def main() -> None:
        async with Harness(config(tmp_path, sync_flush=True)) as h:
            for i in range(3):  # the topic made, the syncs timed
                assert (await h.call(C.SEND_MESSAGE, send_v1("LW", 0, ""), b"m%d" % i)).code \
                    == R.SUCCESS
            before = len(on_loop)
            assert (await h.call(C.SEND_MESSAGE, send_v1("LW", 0, ""), b"lone")).code \
                == R.SUCCESS
            assert len(on_loop) > before  # the loop's own sync
            pull = asyncio.create_task(
                h.call(C.PULL_MESSAGE, pull_ext("LW", 0, 4, sys_flag=6, suspend_ms=15000),
                       timeout_s=20))
            await asyncio.sleep(0.2)
            assert not pull.done()
            before = len(on_loop)
            r = await h.call(C.SEND_MESSAGE, send_v1("LW", 0, ""), b"wake")
            assert r.code == R.SUCCESS
            r = await asyncio.wait_for(pull, 5)
            assert r.code == R.SUCCESS
            assert [m["body"] for m in parse_records(r.body)] == [b"wake"]
            assert on_loop[before:] == [], "the loop blocked on the sync of a send that woke a pull"

    run(main)


def test_a_failed_sync_answers_flush_disk_timeout_and_stops_writes_until_reopened(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failing fdatasync answers FLUSH_DISK_TIMEOUT at once (stored, never durable), and
    the store takes no more writes, even with the disk back: a later sync could report pages
    the failed one lost as written (sync_failure.py). Reopened, the log ends where it was
    durable and takes sends again."""
    made = slow_syncers(monkeypatch, 0.01)
    root: list[Path] = []

    async def main() -> None:
        # 1.5 s: the first send (which creates the topic) must not time out on a loaded machine
        async with Harness(config(tmp_path, sync_flush=True, sync_flush_timeout_ms=1500)) as h:
            root.append(h.broker.store.root)
            r = await h.call(C.SEND_MESSAGE, send_v1("SF", 0, ""), b"first")
            assert r.code == R.SUCCESS
            durable = h.broker.store.durable_offset
            made[0].errno = 5  # EIO from now on
            t0 = time.monotonic()
            r = await h.call(C.SEND_MESSAGE, send_v1("SF", 0, ""), b"second")
            assert r.code == R.FLUSH_DISK_TIMEOUT and time.monotonic() - t0 < 1.45
            r = await h.call(C.GET_MAX_OFFSET, {"topic": "SF", "queueId": "0"})
            assert r.ext_fields["offset"] == "2"  # stored all the same
            made[0].errno = 0
            r = await h.call(C.SEND_MESSAGE, send_v1("SF", 0, ""), b"third")
            assert r.code == R.SERVICE_NOT_AVAILABLE, r
            assert "sync of the commit log failed" in r.remark
            assert h.broker.store.durable_offset == durable

    run(main)
    with rmqstore.open(root[0], flush="sync", **SMALL_STORE) as store:
        assert [m.body for m in store.get("SF", 0, 0, 10).messages] == [b"first"]
        assert store.put("SF", b"again", queue_id=0).status is rmqstore.PutStatus.PUT_OK


def test_unknown_code_is_not_supported(tmp_path: Path) -> None:
    async def main() -> None:
        async with Harness(config(tmp_path)) as h:
            r = await h.call(C.QUERY_DATA_VERSION)
            assert r.code == R.REQUEST_CODE_NOT_SUPPORTED
            r = await h.call(4242)
            assert r.code == R.REQUEST_CODE_NOT_SUPPORTED and "4242" in (r.remark or "")

    run(main)


def test_registers_with_name_servers_and_unregisters_at_stop(tmp_path: Path) -> None:
    async def main() -> None:
        seen: list[RemotingCommand] = []
        registered = asyncio.Event()

        async def record(req: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
            seen.append(req)
            if req.code == C.REGISTER_BROKER:
                registered.set()
            return RemotingCommand.response(R.SUCCESS)

        stubs = []
        for _ in range(2):
            d = Dispatcher()
            d.register(C.REGISTER_BROKER, record)
            d.register(C.UNREGISTER_BROKER, record)
            srv = RemotingServer(d, ServerConfig(port=0))
            await srv.start()
            stubs.append(srv)
        addrs = tuple(f"127.0.0.1:{s.address[1]}" for s in stubs)
        async with Harness(config(tmp_path, namesrv_addrs=addrs, register_period_ms=60_000)) as h:
            await asyncio.wait_for(registered.wait(), 5)
            await asyncio.sleep(0.1)
            first = [r for r in seen if r.code == C.REGISTER_BROKER]
            assert len(first) == 2
            ext = first[0].ext_fields
            assert ext["brokerName"] == "broker-t" and ext["brokerId"] == "0"
            assert ext["clusterName"] == "DefaultCluster" and ext["brokerAddr"] == h.broker.address
            # a broker on any free port serves HA on one too (listenPort + 1 may be taken), and
            # registers where it listens
            assert h.broker.master is not None
            assert ext["haServerAddr"] == "127.0.0.1:%d" % h.broker.master.service.address[1]
            assert int(ext["bodyCrc32"]) == zlib.crc32(first[0].body) & 0x7FFFFFFF
            table = json.loads(first[0].body)["topicConfigSerializeWrapper"]["topicConfigTable"]
            assert table["TBW102"]["perm"] == 7
            # An auto-created topic is registered at once, not 30 s later.
            await h.call(C.SEND_MESSAGE, send_v1("Announced", 0, ""), b"x")
            await asyncio.sleep(0.5)
            last = [r for r in seen if r.code == C.REGISTER_BROKER][-1]
            table = json.loads(last.body)["topicConfigSerializeWrapper"]["topicConfigTable"]
            assert "Announced" in table
        unregs = [r for r in seen if r.code == C.UNREGISTER_BROKER]
        assert len(unregs) == 2 and unregs[0].ext_fields["brokerName"] == "broker-t"
        for srv in stubs:
            await srv.close()

    run(main)


def test_created_topics_are_routed_before_the_answer(tmp_path: Path) -> None:
    """As Java's createTopicInSendMessageMethod / registerIncrementBrokerData: a send that
    auto-creates a topic, UPDATE_AND_CREATE_TOPIC and a heartbeat that creates %RETRY%<group>
    answer only once the NameServer routes the new topic, so a client that asks right after
    finds it (a C++ consumer that misses it waits for its 30 s route refresh)."""
    from rmqstore.server.namesrv import NameServer, NamesrvConfig

    async def main() -> None:
        async with NameServer(NamesrvConfig(port=0, http_port=None)) as ns:
            ns_addr = f"127.0.0.1:{ns.address[1]}"
            cfg = config(tmp_path, namesrv_addrs=(ns_addr,), register_period_ms=60_000)
            async with Harness(cfg) as h:

                async def routed(topic: str) -> bool:
                    r = await h.client.invoke(ns_addr, RemotingCommand.request(
                        C.GET_ROUTEINFO_BY_TOPIC, {"topic": topic}), 5)
                    return r.code == R.SUCCESS

                for i in range(3):  # also while an earlier registration may be in flight
                    r = await h.call(C.SEND_MESSAGE, send_v1(f"AutoRouted{i}", 0, ""), b"x")
                    assert r.code == R.SUCCESS
                    assert await routed(f"AutoRouted{i}")
                r = await h.call(C.UPDATE_AND_CREATE_TOPIC, {
                    "topic": "AdminRouted", "defaultTopic": "TBW102", "readQueueNums": "4",
                    "writeQueueNums": "4", "perm": "6"})
                assert r.code == R.SUCCESS and await routed("AdminRouted")
                beat = {"clientID": "1-127.0.0.1@DEFAULT", "consumerDataSet": [{
                    "consumeFromWhere": 0, "consumeType": 1, "groupName": "CG-routed",
                    "messageModel": 1, "subscriptionDataSet": [
                        {"subString": "*", "subVersion": "1", "topic": "AdminRouted"}]}]}
                r = await h.call(C.HEART_BEAT, ACL, json.dumps(beat).encode())
                assert r.code == R.SUCCESS and await routed("%RETRY%CG-routed")

    run(main)


def test_broker_conf_keys() -> None:
    cfg = BrokerConfig.from_properties("""
# a RocketMQ broker.conf
brokerClusterName = C1
brokerName=broker-b
brokerId=0
namesrvAddr=10.0.0.1:9876;10.0.0.2:9876
listenPort=10921
brokerIP1=10.0.0.5
storePathRootDir=/tmp/rmq-store
flushDiskType=SYNC_FLUSH
autoCreateTopicEnable=false
defaultTopicQueueNums=4
deleteWhen=04
brokerRole=ASYNC_MASTER
""")
    assert (cfg.cluster_name, cfg.broker_name, cfg.broker_id) == ("C1", "broker-b", 0)
    assert cfg.namesrv_addrs == ("10.0.0.1:9876", "10.0.0.2:9876")
    assert cfg.addr == "10.0.0.5:10921" and cfg.ha_addr == "10.0.0.5:10922"
    assert cfg.store_root == Path("/tmp/rmq-store") and cfg.sync_flush
    assert not cfg.auto_create_topic and cfg.default_topic_queue_nums == 4
    assert cfg.extra == {"deleteWhen": "04"} and cfg.broker_role == "ASYNC_MASTER"
    assert not cfg.warm_mapped_file  # RocketMQ's default
    assert BrokerConfig.from_properties("warmMapedFileEnable=true\n").warm_mapped_file


def test_store_warmer_follows_warm_mapped_file_enable(tmp_path: Path) -> None:
    async def main() -> None:
        for warm in (False, True):
            async with Harness(config(tmp_path / str(warm), warm_mapped_file=warm)) as h:
                assert (h.broker.store._warmer is not None) == warm

    run(main)


def test_sql92_subscription_filters_on_properties(tmp_path: Path) -> None:
    async def main() -> None:
        async with Harness(config(tmp_path, enable_property_filter=True)) as h:
            for i in range(6):
                await h.call(C.SEND_MESSAGE, send_v1("SQ", 0, props(TAGS="T", price=str(i))),
                             b"p%d" % i)
            sql = {"expressionType": "SQL92", "subscription": "price > 2 AND TAGS = 'T'"}
            r = await h.call(C.PULL_MESSAGE, {**pull_ext("SQ", 0, 0), **sql})
            assert r.code == R.SUCCESS and r.ext_fields["nextBeginOffset"] == "6"
            assert [m["body"] for m in parse_records(r.body)] == [b"p3", b"p4", b"p5"]
            none = {"expressionType": "SQL92", "subscription": "price > 100"}
            r = await h.call(C.PULL_MESSAGE, {**pull_ext("SQ", 0, 0), **none})
            assert r.code == R.PULL_RETRY_IMMEDIATELY and r.ext_fields["nextBeginOffset"] == "6"
            bad = {"expressionType": "SQL92", "subscription": "price >"}
            r = await h.call(C.PULL_MESSAGE, {**pull_ext("SQ", 0, 0), **bad})
            assert r.code == R.SUBSCRIPTION_PARSE_FAILED and "invalid" in (r.remark or "")

    run(main)


def test_sql92_is_refused_unless_enabled(tmp_path: Path) -> None:
    async def main() -> None:
        async with Harness(config(tmp_path)) as h:
            await h.call(C.SEND_MESSAGE, send_v1("SQ", 0, props(a="1")), b"x")
            sql = {"expressionType": "SQL92", "subscription": "a = 1"}
            r = await h.call(C.PULL_MESSAGE, {**pull_ext("SQ", 0, 0), **sql})
            assert r.code == R.SUBSCRIPTION_PARSE_FAILED and "SQL92" in (r.remark or "")

    run(main)


def test_check_client_config_refuses_malformed_sql92(tmp_path: Path) -> None:
    def body(expr: str, kind: str = "SQL92") -> bytes:
        return json.dumps({"clientId": "c", "group": "G", "subscriptionData": {
            "topic": "SQ", "subString": expr, "expressionType": kind}}).encode()

    async def main() -> None:
        async with Harness(config(tmp_path, enable_property_filter=True)) as h:
            ok = await h.call(C.CHECK_CLIENT_CONFIG, {}, body("a between 1 and 3"))
            assert ok.code == R.SUCCESS
            bad = await h.call(C.CHECK_CLIENT_CONFIG, {}, body("a between 3 and"))
            assert bad.code == R.SUBSCRIPTION_PARSE_FAILED and "a between 3 and" in bad.remark
            tag = await h.call(C.CHECK_CLIENT_CONFIG, {}, body("TagA || TagB", "TAG"))
            assert tag.code == R.SUCCESS

    run(main)
