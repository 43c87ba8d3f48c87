"""benches/resp.py, the bare-socket Redis client of ha_sync_cost's producers: a reply is
handed out only once it is whole in the buffer, however the bytes arrived, and an error
reply is never read as an answer."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

RESP_PY = Path(__file__).resolve().parents[2] / "benches" / "resp.py"
_spec = importlib.util.spec_from_file_location("bench_resp", RESP_PY)
assert _spec is not None and _spec.loader is not None
resp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(resp)

# what a pipelined XADD + WAIT 1 answers: the entry's id, then how many replicas acked
XADD_WAIT = b"$15\r\n1733570000000-0\r\n:1\r\n"


def replies(buf: bytes) -> list:
    out, pos = [], 0
    while (got := resp.parse(buf, pos)) is not None:
        reply, pos = got
        out.append(reply)
    return out


def test_a_reply_counts_only_once_whole_at_every_split_point():
    for cut in range(len(XADD_WAIT) + 1):
        got = replies(XADD_WAIT[:cut])
        whole = [b"1733570000000-0", 1][:len(got)]
        assert got == whole, cut
    assert replies(XADD_WAIT) == [b"1733570000000-0", 1]


def test_a_wait_answering_no_replica_and_the_other_kinds():
    assert replies(b":0\r\n+OK\r\n$-1\r\n$0\r\n\r\n") == [0, b"OK", None, b""]


def test_a_wait_answering_no_replica_is_a_failed_send():
    assert resp.wait_failures(replies(XADD_WAIT * 3)) == 0
    assert resp.wait_failures(replies(XADD_WAIT + b"$3\r\n1-1\r\n:0\r\n" + XADD_WAIT)) == 1


def test_an_error_reply_raises_rather_than_answering():
    with pytest.raises(resp.RespError, match="NOREPLICAS"):
        resp.parse(b"-NOREPLICAS Not enough good replicas\r\n")
    with pytest.raises(resp.RespError, match="does not read"):
        resp.parse(b"*2\r\n:1\r\n:2\r\n")  # an array: not an answer XADD or WAIT gives


def test_a_command_is_a_resp_array_of_bulk_strings():
    assert resp.command("WAIT", 1, 1000) == b"*3\r\n$4\r\nWAIT\r\n$1\r\n1\r\n$4\r\n1000\r\n"
    assert resp.command(b"\r\n") == b"*1\r\n$2\r\n\r\n\r\n"  # binary-safe: sized, not split
