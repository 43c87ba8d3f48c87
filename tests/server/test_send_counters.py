"""The counters of the sends SendPath.serve takes (kept in C, send_counts.c, and folded into
Traffic and RpcLatency when read) show on /metrics what the per-frame path shows for the same
sends (RMQSTORE_NATIVE_SEND=0): messages, bytes, size buckets, SUCCESS answers per code; and
they keep showing it scrape after scrape (each fold adds only what came since the last)."""

from __future__ import annotations

import pytest

from rmqstore.protocol import encode
from rmqstore.server.broker.handlers.send_native import ENV_SWITCH
from rmqstore.server.testing import create_topic

from ..obs.conftest import scrape
from .conftest import ServeFactory, connect, request
from .test_send_native import _answer, _cpp_frame
from .test_send_read import SERVED, _log, _read_answers, _send

# bodies across the message_size buckets below the compression threshold (4 KiB)
SIZES = (30, 700, 1024, 1025, 3000)


def _figures(url: str) -> dict[str, float]:
    """The send figures of topic T and of SEND_MESSAGE(_V2) SUCCESS on one scrape."""
    out = {}
    for family in scrape(url).values():
        for s in family.samples:
            labels = s.labels
            if labels.get("topic") == "T" and s.name.startswith(
                    ("rocketmq_messages_in", "rocketmq_throughput_in", "rocketmq_message_size")):
                out[f"{s.name}{{{labels.get('le', '')}}}"] = s.value
            elif s.name == "rocketmq_rpc_latency_milliseconds_count" and labels["request_code"] in (
                    "send_message", "send_message_v2"):
                out[f"{labels['request_code']}/{labels['response_code']}"] = s.value
    return out


def _pipelined(round_: int) -> tuple[bytes, set[int]]:
    """One write of V2 sends of every size and the C++ client's (SEND_MESSAGE) between."""
    frames, opaques = [], set()
    for n, size in enumerate(SIZES * 3):
        opaque = 10_000 * round_ + n
        frames.append(encode(_send(opaque - 1000, queue_id=n % 2, body=b"b" * size)))
        frames.append(_cpp_frame(n % 2, opaque + 5000))
        opaques |= {opaque, opaque + 5000}
    return b"".join(frames), opaques


@pytest.mark.parametrize("flush", ["async", "sync"])
def test_served_sends_count_as_the_per_frame_path_counts_them(
        serve: ServeFactory, monkeypatch: pytest.MonkeyPatch, flush: str) -> None:
    results = {}
    for native in ("1", "0"):
        monkeypatch.setenv(ENV_SWITCH, native)
        served = serve("", "--flush", flush)
        create_topic(served.broker, "T", 2)
        url = served.proc.http_url
        assert url
        scrapes = []
        with connect(served.broker_address) as sock:
            for n in range(4):  # each queue's first send, then the topic's admission
                assert _answer(request(sock, _send(900 + n, queue_id=n % 2)))[0] == 0
            for round_ in (1, 2):  # a fold between the two: the second adds only its own
                data, opaques = _pipelined(round_)
                sock.sendall(data)
                answers = _read_answers(sock, opaques)
                assert {r.opaque for r in answers} == opaques
                assert all(r.code == 0 for r in answers)
                scrapes.append(_figures(url))
        results[native] = (scrapes, SERVED.findall(_log(served)))
    on, off = results["1"], results["0"]
    assert off[1] == [] and int(on[1][0][1]) >= 20  # serve took most of them
    sends = 4 + 2 * len(SIZES) * 3
    for scrape_on, scrape_off in zip(on[0], off[0], strict=True):
        assert scrape_on == scrape_off
    last = on[0][-1]
    assert last["rocketmq_messages_in_total{}"] == 2 * sends - 4  # V2 and the C++ client's
    assert last["send_message_v2/success"] == sends and last["send_message/success"] == sends - 4
    assert last["rocketmq_message_size_bucket{4096.0}"] == 2 * sends - 4
