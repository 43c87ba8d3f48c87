"""A SYNC_MASTER's waiting sends (WAIT=true) taken a whole read at a time by SendPath.serve:
their answers are held until a slave holds the read's last record, then written together;
with the slave linked but silent every send of the read is answered FLUSH_SLAVE_TIMEOUT,
with no slave SLAVE_NOT_AVAILABLE, as SendProcessor answers them, and every record stays
stored. Answer for answer the per-frame path's (RMQSTORE_NATIVE_SEND=0). Real processes on
loopback; one pipelined write is one read."""

from __future__ import annotations

import re
import socket
import time

import pytest

from rmqstore.protocol import FrameDecoder, RemotingCommand, ResponseCode, encode
from rmqstore.server.broker.handlers.send_native import ENV_SWITCH
from rmqstore.server.testing import wait_until

SERVED = re.compile(r"native send path: (\d+) sends answered, (\d+) of them whole reads")
SENDS = 5  # one read's
TOPIC = "ServeT"


def _send(opaque: int) -> RemotingCommand:
    props = f"KEYS\x01k{opaque}\x02WAIT\x01true\x02"
    ext = {"a": "PG", "b": TOPIC, "c": "TBW102", "d": "4", "e": "0", "f": "0",
           "g": str(int(time.time() * 1000)), "h": "0", "i": props, "j": "0", "k": "false",
           "m": "false"}
    return RemotingCommand(code=310, ext_fields=ext, body=b"body %d" % opaque, opaque=opaque)


def _exchange(sock: socket.socket, opaques: list[int]) -> tuple[list[tuple], float]:
    """The sends of ``opaques`` in one write; their answers (what each says of its send: the
    msgId's commit-log offset, not the port-bearing host) and how long the last took."""
    t0 = time.monotonic()
    sock.sendall(b"".join(encode(_send(o)) for o in opaques))
    decoder, got = FrameDecoder(), []
    while len(got) < len(opaques):
        data = sock.recv(1 << 16)
        assert data, "closed before every answer arrived"
        got.extend(decoder.feed(data))
    took = time.monotonic() - t0
    shapes = [(r.opaque, r.code, (r.ext_fields or {}).get("queueOffset"),
               ((r.ext_fields or {}).get("msgId") or "")[-16:]) for r in got]
    return shapes, took


def _scenario(ha_pair, native: str, monkeypatch: pytest.MonkeyPatch) -> tuple:
    monkeypatch.setenv(ENV_SWITCH, native)
    pair = ha_pair(role="SYNC_MASTER", master_conf="slaveTimeout=1000\n", topics={TOPIC: 1},
                   slave_topics=False)
    host, port = pair.master.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.settimeout(10)
        # the first send opens the queue, the second admits the topic (the per-frame path)
        first, _ = _exchange(sock, [1])
        second, _ = _exchange(sock, [2])
        ok, _ = _exchange(sock, [10 + i for i in range(SENDS)])
        # answered once the slave holds them: its commit log reaches the last one's end
        pair.slave_proc.pause()  # linked, but it acknowledges nothing
        try:
            silent, took = _exchange(sock, [20 + i for i in range(SENDS)])
            assert 0.9 <= took < 5.0, took  # at the slave timeout, not before
        finally:
            pair.slave_proc.resume()
        time.sleep(0.5)
        again, _ = _exchange(sock, [30 + i for i in range(SENDS)])
        pair.slave_proc.stop()
        time.sleep(0.3)  # the link's close reaches the master
        alone, took = _exchange(sock, [40 + i for i in range(SENDS)])
        assert took < 0.5, took  # at once
    stored = pair.max_offset(pair.master, TOPIC, 0)
    pair.start_slave()
    wait_until(lambda: pair.max_offset(pair.slave, TOPIC, 0) == stored, 10,
               what="slave caught up")
    pair.master_proc.terminate()
    served = SERVED.findall(pair.master_proc.log())
    return first + second, ok, silent, again, alone, stored, served


def test_a_served_read_waits_for_the_slave_and_a_failed_wait_answers_each_send(
        ha_pair, monkeypatch: pytest.MonkeyPatch) -> None:
    on = _scenario(ha_pair, "1", monkeypatch)
    off = _scenario(ha_pair, "0", monkeypatch)
    codes = [[a[1] for a in answers] for answers in on[1:5]]
    assert codes == [[ResponseCode.SUCCESS] * SENDS, [ResponseCode.FLUSH_SLAVE_TIMEOUT] * SENDS,
                     [ResponseCode.SUCCESS] * SENDS, [ResponseCode.SLAVE_NOT_AVAILABLE] * SENDS]
    # in request order, each with its own queue offset; every send stored, whatever its status
    assert [a[2] for answers in on[1:5] for a in answers] == [str(2 + i) for i in range(20)]
    assert on[5] == 2 + 4 * SENDS
    assert on[:6] == off[:6]  # the per-frame path's answers, field for field
    assert [tuple(map(int, s)) for s in on[6]] == [(1 + 4 * SENDS, 4 * SENDS)]  # serve's reads
    assert off[6] == []
