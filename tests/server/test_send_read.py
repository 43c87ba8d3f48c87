"""A whole read of sends answered in one native call (SendPath.serve, _native/send_read.c,
through send_native.py's on_read): pipelined requests, fast sends mixed with every kind the
Python path must take, give the answers (in request order), the records, the consume-queue
units and the index keys a broker with the native path off gives; a topic whose config changes
leaves the fast table at once; a malformed frame closes its connection only."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import pytest

from rmqstore.protocol import FrameDecoder, RemotingCommand, encode
from rmqstore.server.broker.handlers.send_native import ENV_SWITCH
from rmqstore.server.testing import create_topic

from .conftest import ServeFactory, closed_within, connect, request
from .test_send_native import _answer, _cpp_frame, _ext, _found, _records, _units

COMMON = "UNIQ_KEY\x01U{n}\x02KEYS\x01k{n} shared\x02TAGS\x01t\x02WAIT\x01true\x02"
SERVED = re.compile(r"native send path: (\d+) sends answered, (\d+) of them whole reads")


def _send(n: int, topic: str = "T", queue_id: int = 0, props: str | None = None,
          body: bytes | None = None, **fields: object) -> RemotingCommand:
    text = COMMON.format(n=n) if props is None else props
    return RemotingCommand(code=310, ext_fields=_ext(topic, queue_id, text, **fields),
                           body=body if body is not None else f"body-{n}".encode() * 3,
                           opaque=1000 + n)


def _pipelined() -> list[RemotingCommand]:
    """Fast sends with, between them, each request the native read must leave to Python."""
    out = [_send(n, queue_id=n % 2) for n in range(6)]
    out += [
        _send(10, "U"),  # a topic that is not in the fast table yet (its first send)
        _send(11, queue_id=1),
        _send(12, props="DELAY\x012\x02"),  # a delay level: SCHEDULE_TOPIC_XXXX
        _send(13),
        _send(14, "%RETRY%g"),  # a retry topic
        _send(15, queue_id=7),  # past the topic's queues
        _send(16, props="TAGS\x01\u00e9\x02"),  # not ASCII
        _send(17, props="TRAN_MSG\x01true\x02"),  # a transaction's half message
        _send(18, body=b"x" * 5000),  # past maxMessageSize (below)
        _send(19, j=2),  # reconsume times
        _send(20, "U"),
        _send(21, queue_id=1),
        RemotingCommand(code=310, ext_fields=_ext("T", 0, COMMON.format(n=22)),
                        body=b"oneway", opaque=1022, flag=2),
        _send(23),
        RemotingCommand(code=26, opaque=1024),  # GET_BROKER_CONFIG, not a send
        _send(25, queue_id=1),
    ]
    return out


def _read_answers(sock: socket.socket, opaques: set[int]) -> list[RemotingCommand]:
    """Every answer until one for each of ``opaques`` arrived, in arrival order."""
    decoder, got = FrameDecoder(), []
    while opaques - {r.opaque for r in got}:
        data = sock.recv(1 << 20)
        assert data, "closed before every answer arrived"
        got.extend(decoder.feed(data))
    return got


def _log(served) -> str:
    served.proc.terminate()
    return served.proc.log_path.read_text()


@pytest.mark.parametrize("flush", ["async", "sync"])
def test_a_pipelined_read_is_answered_as_the_python_path_answers_it(
        serve: ServeFactory, monkeypatch: pytest.MonkeyPatch, flush: str) -> None:
    results = {}
    for native in ("1", "0"):
        monkeypatch.setenv(ENV_SWITCH, native)
        served = serve("maxMessageSize=4096\n", "--flush", flush)
        create_topic(served.broker, "T", 2)
        create_topic(served.broker, "U", 1)
        with connect(served.broker_address) as sock:
            # the first send of a queue opens it, the second admits the topic (per frame)
            first = [_answer(request(sock, _send(900 + n, queue_id=n % 2))) for n in range(4)]
            batch = _pipelined()
            sock.sendall(b"".join(encode(r) for r in batch))
            wanted = {r.opaque for r in batch if not r.flag & 2}
            got = _read_answers(sock, wanted)
            # the same again, the C++ client's frames among them, all in one write
            cpp = [_cpp_frame(n % 2, 2000 + n) for n in range(4)]
            sock.sendall(b"".join(cpp[:2] + [encode(_send(30))] + cpp[2:]))
            got += _read_answers(sock, {2000, 2001, 1030, 2002, 2003})
            found = [_found(sock, key) for key in ("k0", "k5", "shared", "U0", "k30", "U25")]
        answers = [(r.opaque, r.code) if r.code == 26 else (r.opaque, *_answer(r))
                   for r in got if r.opaque != 1024]
        data = Path(served.proc.args[served.proc.args.index("--data") + 1])
        results[native] = (first, answers, _records(data), _units(data), found,
                           SERVED.findall(_log(served)))
    on, off = results["1"], results["0"]
    assert on[0] == off[0]
    assert on[1] == off[1]  # answers, in the same order
    assert 1014 in {a[0] for a in on[1]}
    if flush == "async":  # request order, but the retry topic's (a task answers it)
        sent = [r.opaque for r in _pipelined() if not r.flag & 2] + [2000, 2001, 1030, 2002,
                                                                      2003]
        assert [a[0] for a in on[1] if a[0] != 1014] == [
            o for o in sent if o not in (1014, 1024)]
    assert len(on[2]) >= 25 and on[2] == off[2]  # records, byte for byte but hosts and time
    assert on[3] == off[3]  # consume-queue units
    assert on[4] == off[4] and on[4][2][1] >= 10  # index keys
    assert off[5] == [] and len(on[5]) == 1
    taken, whole = map(int, on[5][0])
    # the fast sends after each queue's first, at least the leading 6 (with sync flush too:
    # serve holds their answers until the disk has them)
    assert whole >= 6 and taken >= whole


def test_a_topic_made_read_only_leaves_the_fast_table_at_once(serve: ServeFactory) -> None:
    served = serve("")
    create_topic(served.broker, "T", 1)
    with connect(served.broker_address) as sock:
        for n in range(3):  # the first admits T, the others are whole reads
            r = request(sock, _send(n))
            assert r is not None and r.code == 0, r
        create_topic(served.broker, "T", 1, perm=4)  # read-only now
        r = request(sock, _send(3))
        assert r is not None and r.code == 16 and "forbidden" in (r.remark or ""), r
        create_topic(served.broker, "T", 1, perm=6)  # writable again: admitted again
        for n in range(4, 7):
            r = request(sock, _send(n))
            assert r is not None and r.code == 0, r
    taken, whole = map(int, SERVED.findall(_log(served))[0])
    assert (taken, whole) == (5, 3)  # 0 opens the queue; 1 and 4 admit T; 2, 5, 6 whole


def test_a_deleted_topic_leaves_the_fast_table(serve: ServeFactory) -> None:
    served = serve("autoCreateTopicEnable=false\n")
    create_topic(served.broker, "T", 1)
    with connect(served.broker_address) as sock:
        for n in range(3):
            r = request(sock, _send(n))
            assert r is not None and r.code == 0, r
        r = request(sock, RemotingCommand(code=215, ext_fields={"topic": "T"}, opaque=50))
        assert r is not None and r.code == 0, r  # DELETE_TOPIC_IN_BROKER
        r = request(sock, _send(3))
        assert r is not None and r.code == 17, r  # TOPIC_NOT_EXIST


def test_a_malformed_frame_closes_its_connection_only(serve: ServeFactory) -> None:
    served = serve("")
    create_topic(served.broker, "T", 1)
    with connect(served.broker_address) as other, connect(served.broker_address) as sock:
        for n in range(2):  # the first opens the queue, the second admits T
            r = request(sock, _send(n))
            assert r is not None and r.code == 0, r
        bad = b"\x00\x00\x00\x02xx"  # a frame length below the header word
        sock.sendall(encode(_send(2)) + encode(_send(3)) + bad)
        got = _read_answers(sock, {1002, 1003})  # answered before the connection closes
        assert [(a.opaque, a.code) for a in got] == [(1002, 0), (1003, 0)]
        assert closed_within(sock, 3.0) is not None
        r = request(other, _send(4))
        assert r is not None and r.code == 0, r
    taken, whole = map(int, SERVED.findall(_log(served))[0])
    assert whole >= 3  # the two before the malformed frame were a whole read's (and 4)


def test_keys_that_fill_an_index_file_roll_it_as_the_python_path_does(
        serve: ServeFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Index files of 8 entries: the keys of a whole read run past several; what the file
    cannot take goes to add_keys, which rolls, and every key is found as without the path."""
    small_index = ("--store", "index_slots=4", "--store", "index_entries=8")
    results = {}
    for native in ("1", "0"):
        monkeypatch.setenv(ENV_SWITCH, native)
        served = serve("", store_args=small_index)
        create_topic(served.broker, "T", 1)
        with connect(served.broker_address) as sock:
            for n in range(2):
                r = request(sock, _send(n))
                assert r is not None and r.code == 0, r
            batch = [_send(n) for n in range(2, 14)]
            sock.sendall(b"".join(encode(r) for r in batch))
            got = _read_answers(sock, {r.opaque for r in batch})
            assert {a.code for a in got} == {0}
            found = [_found(sock, key) for key in
                     [f"k{n}" for n in range(14)] + [f"U{n}" for n in range(14)] + ["shared"]]
        data = Path(served.proc.args[served.proc.args.index("--data") + 1])
        files = len(list((data / "index").iterdir()))
        results[native] = (found, files, SERVED.findall(_log(served)))
    on, off = results["1"], results["0"]
    assert on[0] == off[0] and on[0][:28] == [(0, 1)] * 28
    assert on[1] == off[1] and on[1] >= 5  # 3 keys a message, 8 a file
    assert int(on[2][0][1]) >= 12


def test_a_send_answered_by_its_read_wakes_a_pull_held_on_its_queue(
        serve: ServeFactory) -> None:
    served = serve()
    create_topic(served.broker, "T", 1)
    with connect(served.broker_address) as sender, \
            connect(served.broker_address, timeout_s=15) as puller:
        for n in range(2):  # the first opens the queue, the second admits the topic
            assert _answer(request(sender, _send(n, props="")))[0] == 0
        pull = RemotingCommand(code=11, opaque=77, ext_fields={  # PULL_MESSAGE, held 10 s
            "consumerGroup": "CG", "topic": "T", "queueId": "0", "queueOffset": "2",
            "maxMsgNums": "32", "sysFlag": "6", "commitOffset": "0",
            "suspendTimeoutMillis": "10000", "subscription": "*", "subVersion": "0"})
        puller.sendall(encode(pull))
        time.sleep(0.3)  # held by now
        start = time.monotonic()
        assert _answer(request(sender, _send(2, props="")))[0] == 0
        woken = _read_answers(puller, {77})
        assert woken[0].code == 0 and time.monotonic() - start < 3  # not the hold's 10 s
    taken, whole = map(int, SERVED.findall(_log(served))[0])
    assert whole >= 1  # the waking send was answered by its read
