"""Client pieces without a server: byte layouts, ids, signing, allocation, queue choice."""

from __future__ import annotations

import struct
import zlib

import pytest

from rmqstore.client.ids import UniqIdGenerator, make_client_id, uniq_id_time_ms
from rmqstore.client.latency import LatencyFaultTolerance, not_available_ms
from rmqstore.client.message import (
    MessageQueue,
    decode_messages,
    decode_properties,
    encode_batch,
    properties_text,
)
from rmqstore.client.process_queue import ProcessQueue
from rmqstore.client.producer import java_string_hash
from rmqstore.client.rebalance import allocate_averagely, allocate_averagely_by_circle
from rmqstore.client.routes import publish_queues, subscribe_queues
from rmqstore.protocol import RemotingCommand
from rmqstore.protocol.acl_signature import Credentials, sign_request, signed_content
from rmqstore.protocol.route import decode_topic_route


def stored_record(*, body: bytes, topic: str, props: str, queue_offset: int, phys: int,
                  sys_flag: int = 0) -> bytes:
    """A CommitLog record as rmqstore.record documents it (IPv4 hosts)."""
    tail = (struct.pack(">i", len(body)) + body + bytes([len(topic)]) + topic.encode()
            + struct.pack(">h", len(props.encode())) + props.encode())
    head_len = 4 + 4 + 4 + 4 + 4 + 8 + 8 + 4 + 8 + 8 + 8 + 8 + 4 + 8
    total = head_len + len(tail)
    return (struct.pack(">iIiiiqqiq", total, 0xDAA320A7, 0, 3, 7, queue_offset, phys, sys_flag, 111)
            + bytes([10, 0, 0, 1]) + struct.pack(">i", 5555) + struct.pack(">q", 222)
            + bytes([127, 0, 0, 1]) + struct.pack(">i", 10911) + struct.pack(">iq", 2, 0) + tail)


def test_decode_pull_body_two_records_and_compressed_body() -> None:
    raw = b"\x00\xffpayload" * 1000
    a = stored_record(body=b"hi", topic="T", props="TAGS\x01A\x02UNIQ_KEY\x01ABC\x02",
                      queue_offset=5, phys=96)
    b = stored_record(body=zlib.compress(raw), topic="T", props="", queue_offset=6, phys=500,
                      sys_flag=0x301)
    bare = stored_record(body=b"hi", topic="T", props="", queue_offset=0, phys=0)
    assert len(bare) == 94  # 91 + 2 + 1
    m1, m2 = decode_messages(a + b, "broker-a")
    assert (m1.body, m1.topic, m1.tags, m1.msg_id, m1.queue_id, m1.queue_offset) == \
        (b"hi", "T", "A", "ABC", 3, 5)
    assert m1.flag == 7 and m1.born_timestamp == 111 and m1.store_timestamp == 222
    assert m1.born_host == ("10.0.0.1", 5555) and m1.store_host == ("127.0.0.1", 10911)
    assert m1.reconsume_times == 2 and m1.commitlog_offset == 96
    assert m1.offset_msg_id == "7F00000100002A9F0000000000000060"
    assert m2.body == raw and m2.msg_id == m2.offset_msg_id \
        and m2.queue == MessageQueue("T", "broker-a", 3)


def test_batch_body_known_bytes() -> None:
    assert encode_batch([(b"hi", 0, "")]).hex() == (
        "00000018" "00000000" "00000000" "00000000" "00000002" "6869" "0000")


def test_properties_round_trip() -> None:
    props = {"TAGS": "A", "KEYS": "k1 k2", "ünï": "çødé"}
    assert decode_properties(properties_text(props)) == props
    assert decode_properties("A\x01B\x02C\x01D\x02") == {"A": "B", "C": "D"}  # C++ trailing \x02


def test_uniq_id_layout() -> None:
    gen = UniqIdGenerator("127.0.0.1")
    a, b = gen.next_id(), gen.next_id()
    assert len(a) == 32 and a == a.upper() and a[:8] == "7F000001"
    assert a[:20] == b[:20]  # ip + pid + random part fixed per generator
    assert (int(b[-4:], 16) - int(a[-4:], 16)) % 65536 == 1
    import time
    assert abs(uniq_id_time_ms(a) - time.time() * 1000) < 5000
    assert make_client_id(None) != make_client_id(None)
    assert make_client_id("inst", "1.2.3.4") == "1.2.3.4@inst"


def test_acl_signed_content_is_the_values_in_key_order_then_the_body() -> None:
    cmd = RemotingCommand.request(10, {"topic": "T", "b": "2", "a": "1"}, b"body")
    sign_request(cmd, Credentials("ak", "sk"))
    content = b"ak" + b"1" + b"2" + b"T" + b"body"  # TreeMap order: AccessKey, a, b, topic
    assert signed_content(cmd.ext_fields, cmd.body) == content


_SEND = {"a": "PG_orders", "b": "Orders", "c": "TBW102", "d": "4", "e": "2", "f": "0",
         "g": "1700000000000", "h": "0",
         "i": "TAGS\x01created\x02KEYS\x01order-1\x02WAIT\x01true\x02", "j": "0",
         "k": "false", "m": "false"}  # SEND_MESSAGE_V2's header
_PULL = {"consumerGroup": "CG_orders", "topic": "Orders", "queueId": "1", "queueOffset": "5",
         "maxMsgNums": "32", "sysFlag": "3", "commitOffset": "0",
         "suspendTimeoutMillis": "15000", "subscription": "*", "subVersion": "1700000000000"}
# (extFields before signing, body, access key, secret key, security token, Signature)
JAVA_ACL_VECTORS = [
    (_SEND, b"order 1 created 16", "rocketmq2", "12345678", None,
     "K+Bpqg9JCjcPCSxLjBJI/XD0qVA="),
    (_SEND, b"order 1 created 9", "rocketmq2", "12345678", "STS.token-0042",
     "/KKZlBtFI8Zv5+3Q0t2ofCC1hh4="),
    ({**_SEND, "b": "订单", "i": "TAGS\x01标签\x02KEYS\x01été\x02"},
     "消息 über 4".encode(), "ak-ü", "sécrèt", None,
     "cafBA0Vsf7uO+Tgtpbxut/GDw+w="),
    (_PULL, b"", "RocketMQ", "1234567", "tok",
     "DhksCpKsWJU2M+3OA/U0Usfl4Zk="),
]


@pytest.mark.parametrize("ext, body, access_key, secret_key, token, signature",
                         JAVA_ACL_VECTORS, ids=["body", "token", "non-ascii", "no-body"])
def test_acl_signature_matches_java_rule(ext, body, access_key, secret_key, token,
                                         signature) -> None:
    """The signatures were computed by Java 17 running a copy of rocketmq-all-4.9.7's rule:
    AclClientRPCHook.doBeforeRequest puts the header fields, AccessKey and SecurityToken (when
    set) in a TreeMap; AclUtils.combineRequestContent concatenates its values but Signature's,
    UTF-8 encoded, then the body (acl/src/main/java/org/apache/rocketmq/acl/common/); and
    AclSigner.calSignature takes HmacSHA1 keyed by the secret's UTF-8 bytes, in base64 with
    commons-codec's Base64.encodeBase64 (standard alphabet, padded; java.util.Base64's
    getEncoder() gives the same). A nonce in the body or a field was searched for until each
    signature held both '+' and '/', which a URL-safe alphabet would turn into '-' and '_'."""
    cmd = RemotingCommand.request(310, dict(ext), body)
    sign_request(cmd, Credentials(access_key, secret_key, token))
    assert cmd.ext_fields["Signature"] == signature
    assert cmd.ext_fields["AccessKey"] == access_key
    assert cmd.ext_fields.get("SecurityToken") == token


def test_allocate_averagely_and_by_circle() -> None:
    mqs = [MessageQueue("T", "b", i) for i in range(8)]
    cids = ["c1", "c2", "c3"]
    avg = [[m.queue_id for m in allocate_averagely(c, mqs, cids)] for c in cids]
    assert avg == [[0, 1, 2], [3, 4, 5], [6, 7]]
    circ = [[m.queue_id for m in allocate_averagely_by_circle(c, mqs, cids)] for c in cids]
    assert circ == [[0, 3, 6], [1, 4, 7], [2, 5]]
    assert allocate_averagely("c9", mqs, cids) == []
    many = [f"c{i}" for i in range(10)]
    assert sum(len(allocate_averagely(c, mqs, many)) for c in many) == 8


def test_java_string_hash() -> None:
    assert java_string_hash("") == 0
    assert java_string_hash("hello") == 99162322
    assert java_string_hash("order-12345678901") == _java_ref("order-12345678901")


def _java_ref(s: str) -> int:
    h = 0
    for c in s:
        h = (31 * h + ord(c)) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def test_latency_fault_tolerance() -> None:
    assert not_available_ms(40) == 0 and not_available_ms(600) == 30000
    assert not_available_ms(549.9) == 0 and not_available_ms(550) == 30000  # latencyMax[2]
    assert not_available_ms(30000) == 600000
    lft = LatencyFaultTolerance()
    lft.update("a", 0, isolation=True)
    lft.update("b", 10, isolation=False)
    assert not lft.available("a") and lft.available("b")
    assert lft.least_bad(["a", "b"]) == "b"
    lft.update("a", 10, isolation=False)  # a fast answer ends the avoidance at once (Java)
    assert lft.available("a")
    lft.update("b", 600, isolation=False)
    assert not lft.available("b") and lft.least_bad(["a", "b"]) == "a"


def test_route_parsing_and_queues() -> None:
    body = (b'{"brokerDatas":[{"brokerAddrs":{"0":"1.1.1.1:1","1":"1.1.1.2:1"},"brokerName":"b1",'
            b'"cluster":"C"},{"brokerAddrs":{1:"2.2.2.2:1"},"brokerName":"b2","cluster":"C"}],'
            b'"queueDatas":[{"brokerName":"b1","perm":6,"readQueueNums":2,"writeQueueNums":3},'
            b'{"brokerName":"b2","perm":6,"readQueueNums":1,"writeQueueNums":1}]}')
    route = decode_topic_route(body)
    assert [(q.broker_name, q.queue_id) for q in publish_queues(route, "T")] == \
        [("b1", 0), ("b1", 1), ("b1", 2)]
    assert len(subscribe_queues(route, "T")) == 3


def test_process_queue_commit_points() -> None:
    from rmqstore.client.message import MessageExt

    def msg(off: int) -> MessageExt:
        return MessageExt("T", b"x", {}, 0, off, 0, 0, 0, 0, ("", 0), 0, ("", 0), 0, 0, 0, "")

    pq = ProcessQueue(MessageQueue("T", "b", 0), 10)
    pq.add([msg(10), msg(11), msg(12)])
    assert pq.remove([msg(11)]) == 10
    assert pq.remove([msg(10)]) == 12
    assert pq.remove([msg(12)]) == 13
    pq.add([msg(13), msg(14)])
    assert [m.queue_offset for m in pq.take(1)] == [13]
    pq.make_later()
    assert [m.queue_offset for m in pq.take(2)] == [13, 14]
    assert pq.commit() == 15


@pytest.mark.parametrize("props", [{"UNIQ_KEY": "AB01", "WAIT": "true"},
                                   {"KEYS": 'k "1" \\ é %s', "TAGS": "t\u2028"}])
def test_producer_send_frame_is_the_send_request_encoded(props: dict[str, str]) -> None:
    """A single send's pre-made frame carries what the general request would, byte for byte."""
    from rmqstore.client import Message, Producer
    from rmqstore.protocol import RequestCode, encode

    producer = Producer("PG", namesrv="127.0.0.1:1")
    mq = MessageQueue("T1", "broker-a", 3)
    msg = Message("T1", b"body", flag=7)
    request = producer._send_request(RequestCode.SEND_MESSAGE_V2, mq, msg, b"body", 1, props,
                                     born_ms=1765000000123)
    request.opaque = 42
    frame_of = producer._send_frame_of(mq, msg, b"body", 1, props, 1765000000123)
    assert frame_of(42) == encode(request)
    assert producer._send_frame_of(mq, msg, b"body", 1, props, 1765000000123)(43) != \
        frame_of(42)


def test_route_cache_makes_publish_queues_once_per_route_and_selectors_get_copies() -> None:
    """A send reads the queues and the broker's address made once per fetched route; a
    selector may modify what it is given without touching the cache."""
    import asyncio

    from rmqstore.client import Message, Producer
    from rmqstore.client.routes import _Entry
    from rmqstore.protocol.route import BrokerData, QueueData, TopicRouteData

    def route(addr: str) -> TopicRouteData:
        return TopicRouteData((QueueData("broker-b", 2, 2, 6), QueueData("broker-a", 2, 2, 6)),
                              (BrokerData("C", "broker-a", {0: addr}),
                               BrokerData("C", "broker-b", {0: "127.0.0.1:2"})))

    async def main() -> None:
        producer = Producer("PG", namesrv="127.0.0.1:1")
        cache = producer.routes
        cache.routes["T"] = _Entry(route("127.0.0.1:1"), 1e18)
        _, queues = await cache.publish_route("T")
        assert queues == publish_queues(route("127.0.0.1:1"), "T")
        assert (await cache.publish_route("T"))[1] is queues  # made once
        assert cache.broker_addr("broker-a") == "127.0.0.1:1"
        cache.routes["T"] = _Entry(route("127.0.0.1:3"), 1e18 + 1)  # a new route replaces it
        assert cache.broker_addr("broker-a") == "127.0.0.1:3"
        kept = list((await cache.publish_route("T"))[1])

        def emptying(mqs: list[MessageQueue], msg: Message, arg: object) -> MessageQueue:
            mqs.clear()
            raise RuntimeError("picked")  # no broker to send to: stop here

        producer._started = True
        with pytest.raises(RuntimeError, match="picked"):
            await producer.send(Message("T", b"x"), selector=emptying)
        assert (await cache.publish_route("T"))[1] == kept
        await producer._transport.close()

    asyncio.run(main())


def test_a_bad_send_raises_where_it_is_awaited_not_where_it_is_made() -> None:
    """Producer.send hands back its coroutine; the checks run inside it, so a send made
    into a task or gathered fails there, as an async def's would."""
    import asyncio

    from rmqstore.client import ClientClosed, Message, Producer

    async def main() -> None:
        producer = Producer("PG", namesrv="127.0.0.1:1")
        unstarted = producer.send(Message("T", b"x"))  # no exception yet
        with pytest.raises(ClientClosed):
            await unstarted
        await producer.start()
        try:
            empty = producer.send(Message("T", b""))
            with pytest.raises(ValueError, match="empty"):
                await asyncio.create_task(empty)
        finally:
            await producer.close()

    asyncio.run(main())


def test_a_sends_result_is_the_dataclass_its_init_would_make() -> None:
    """The send path's SendResult, its slots set without the frozen __init__: every field in
    its place (all distinct here), equal, hashed and frozen as SendResult(...) is."""
    import dataclasses

    from rmqstore.client.producer import SendResult, SendStatus, _send_result

    values = (SendStatus.FLUSH_SLAVE_TIMEOUT, "UNIQ", "OFFSET-ID", MessageQueue("T", "b", 2),
              41, "TX", "REGION", "127.0.0.1:10911", 7)
    made, expected = _send_result(*values), SendResult(*values)
    assert type(made) is SendResult
    assert [getattr(made, f.name) for f in dataclasses.fields(SendResult)] == list(values)
    assert made == expected and hash(made) == hash(expected) and repr(made) == repr(expected)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.queue_offset = 42  # type: ignore[misc]


def test_a_brokers_address_is_the_newest_routes_however_the_routes_changed() -> None:
    """A send's broker address comes from a table made once per change of the routes: the
    most recently fetched route naming the broker wins, and every way of changing the
    routes (a store, a pop, a del, update, setdefault, popitem, clear, |=) is seen."""
    from rmqstore.client.routes import RouteCache, _Entry
    from rmqstore.client.transport import Transport
    from rmqstore.protocol.route import BrokerData, QueueData, TopicRouteData

    def entry(master: int, fetched: float) -> _Entry:
        return _Entry(TopicRouteData((QueueData("broker-a", 2, 2, 6),),
                                     (BrokerData("C", "broker-a", {0: f"10.0.0.{master}:1"}),)),
                      fetched)

    cache = RouteCache(Transport("127.0.0.1:1", None))
    routes = cache.routes
    routes["NEW"] = entry(2, 200.0)
    routes["OLD"] = entry(1, 100.0)  # stored later, fetched earlier
    assert cache.broker_addr("broker-a") == "10.0.0.2:1"
    routes.pop("NEW")
    assert cache.broker_addr("broker-a") == "10.0.0.1:1"
    routes["X"] = entry(3, 300.0)
    assert cache.broker_addr("broker-a") == "10.0.0.3:1"
    del routes["X"]
    assert cache.broker_addr("broker-a") == "10.0.0.1:1"
    routes.update(Y=entry(4, 400.0))
    assert cache.broker_addr("broker-a") == "10.0.0.4:1"
    routes.setdefault("Z", entry(5, 500.0))
    assert cache.broker_addr("broker-a") == "10.0.0.5:1"
    routes.popitem()  # Z
    assert cache.broker_addr("broker-a") == "10.0.0.4:1"
    routes.clear()
    assert cache.broker_addr("broker-a") is None
    routes |= {"W": entry(6, 600.0)}
    assert cache.broker_addr("broker-a") == "10.0.0.6:1"
    assert cache.broker_addr("broker-b") is None
