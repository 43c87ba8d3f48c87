"""Records the broker's services cannot process, planted in a store that `rmqstore serve`
then runs on: the delay levels and the timer set them aside and keep delivering every other
message, before and after a restart, and the zlib bomb among them costs no more memory than
maxMessageSize.

The poison is planted with the embedded store before the broker starts (a producer can no
longer send it: the door refuses a body that does not inflate, and system topics): delayed
and timer messages naming a queue their topic does not have, a system topic, or carrying a body
flagged compressed that does not inflate, or a zlib bomb. Each sits at the head of its queue,
where it used to stop delivery for every producer, for good.
"""

from __future__ import annotations

import time
import zlib
from pathlib import Path

from rmqstore import open_store
from rmqstore.options import RecordInput
from rmqstore.protocol import RequestCode, ResponseCode
from rmqstore.protocol.message import decode_messages
from rmqstore.server.testing import (
    SMALL_STORE_ARGS,
    ServeProcess,
    call,
    free_broker_port,
    free_port,
    max_offset,
    wait_until,
)
from tests import corrupt

SET_ASIDE = "rmq_sys_set_aside"
SCHEDULE = "SCHEDULE_TOPIC_XXXX"
TIMER = "rmq_sys_wheel_timer"
SEGMENT = 16 << 20  # commitlog_segment_bytes in SMALL_STORE_ARGS
BOMB = zlib.compress(b"\0" * (256 << 20), 9)  # 255 KB that inflate to 256 MiB


def _store_config() -> dict:
    pairs = [SMALL_STORE_ARGS[i + 1].split("=") for i in range(0, len(SMALL_STORE_ARGS), 2)]
    return {k: int(v) for k, v in pairs}


def _plant(root: Path) -> int:
    """Poisoned delayed and timer messages at the head of their queues; how many."""
    cfg = _store_config()
    flagged = []
    with open_store(root, **cfg) as s:
        s.create_topic(SCHEDULE, 2)
        s.create_topic("Real", 1)

        def delayed(body: bytes, **props: str) -> int:
            return s.put_record(SCHEDULE, body, 0, RecordInput(
                {"DELAY": "1", "REAL_TOPIC": "Real", "REAL_QID": "0", **props},
                tags_code=0)).result.commitlog_offset

        def timer(body: bytes, **props: str) -> int:
            return s.put_record(TIMER, body, 0, RecordInput(
                {"TIMER_OUT_MS": "1", "REAL_TOPIC": "Real", "REAL_QID": "0", **props}
            )).result.commitlog_offset

        delayed(b"no such queue", REAL_QID="7")
        delayed(b"no queue at all", REAL_QID="x")
        delayed(b"to a system topic", REAL_TOPIC=SCHEDULE)
        flagged.append(delayed(b"junk, flagged zlib"))
        flagged.append(delayed(BOMB))
        timer(b"to a system topic", REAL_TOPIC=TIMER)
        timer(b"no such queue", REAL_QID="9")
        flagged.append(timer(BOMB))
    for off in flagged:  # what the door now refuses, written as an old broker stored it
        corrupt.set_sysflag(*corrupt.segment_of(root, off, SEGMENT), 0x1)
    return 8


def _serve(tmp: Path) -> tuple[ServeProcess, str]:
    port = free_broker_port()
    conf = tmp / "broker.conf"
    conf.write_text(f"brokerIP1=127.0.0.1\nlistenPort={port}\nmessageDelayLevel=300ms 1s\n"
                    f"storePathRootDir={tmp / 'data'}\n")
    proc = ServeProcess(["-c", str(conf), "--namesrv-port", str(free_port()),
                         "--http-port", "0"], tmp / "serve.log")
    return proc, f"127.0.0.1:{port}"


def _send(addr: str, body: bytes, props: str):
    return call(addr, RequestCode.SEND_MESSAGE_V2, {
        "a": "PG", "b": "Real", "c": "TBW102", "d": "1", "e": "0", "f": "0",
        "g": str(int(time.time() * 1000)), "h": "0", "i": props, "j": "0", "k": "false"}, body)


def _rss_peak_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def _bodies(addr: str, topic: str) -> list[bytes]:
    """Every stored body of queue 0, as stored, page by page (at most 64 pages)."""
    out: list[bytes] = []
    offset = 0
    for _ in range(64):
        r = call(addr, RequestCode.PULL_MESSAGE, {
            "consumerGroup": "Reader", "topic": topic, "queueId": "0",
            "queueOffset": str(offset), "maxMsgNums": "64", "sysFlag": "4", "commitOffset": "0",
            "suspendTimeoutMillis": "0", "subscription": "*", "subVersion": "0"})
        if r.code != ResponseCode.SUCCESS:
            assert r.code == ResponseCode.PULL_NOT_FOUND, r.remark
            return out
        out += [m.body for m in decode_messages(r.body, decompress=False)]
        offset = int(r.ext_fields["nextBeginOffset"])
    raise AssertionError(f"{topic} holds more than 64 pages")


def _deliver_rounds(addr: str, tag: str, rounds: int = 3) -> list[bytes]:
    """Send delayed and timer messages; wait (bounded) until all reach Real."""
    start = max_offset(addr, "Real", 0)
    for i in range(rounds):
        assert _send(addr, f"{tag}-delay-{i}".encode(), "DELAY\x011\x02").code == 0
        assert _send(addr, f"{tag}-timer-{i}".encode(), "TIMER_DELAY_MS\x01200\x02").code == 0
    wait_until(lambda: max_offset(addr, "Real", 0) >= start + 2 * rounds, 15,
               what=f"{2 * rounds} delayed and timer messages in Real")
    return _bodies(addr, "Real")[start:]


def test_poison_is_set_aside_and_delivery_goes_on_across_a_restart(tmp_path):
    planted = _plant(tmp_path / "data")
    proc, addr = _serve(tmp_path)
    with proc:
        rss_before = _rss_peak_kb(proc.pid)
        got = _deliver_rounds(addr, "first")
        assert sorted(got) == sorted([f"first-{k}-{i}".encode() for k in ("delay", "timer")
                                      for i in range(3)])
        wait_until(lambda: max_offset(addr, SET_ASIDE, 0) == planted, 10,
                   what="every planted record set aside")
        assert (_rss_peak_kb(proc.pid) - rss_before) / 1024 < 48  # the bombs were not inflated
        aside = _bodies(addr, SET_ASIDE)
        assert BOMB in aside and b"junk, flagged zlib" in aside  # the stored bytes, kept
        log = proc.log()
        assert "set aside in rmq_sys_set_aside" in log and "Traceback" not in log
    with proc:  # a restart: the poison is behind the progress, nothing is set aside twice
        got = _deliver_rounds(addr, "second")
        assert sorted(got) == sorted([f"second-{k}-{i}".encode() for k in ("delay", "timer")
                                      for i in range(3)])
        assert max_offset(addr, SET_ASIDE, 0) == planted
