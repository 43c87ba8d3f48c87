"""Sync flush sends that wait (WAIT=true) taken a whole read at a time by SendPath.serve
(send_read.c through send_native.py's on_read): their answers are held until the read's last
record is durable and written together; a failing fdatasync answers every send of the read
FLUSH_DISK_TIMEOUT, as SendProcessor answers it, the records stay stored, and the store takes
no more writes (sync_failure.py). The in-process
broker on loopback with a fake disk (test_broker's SlowSyncer) that can fail; one pipelined
write is one read. Compared, answer for answer, with the per-frame path (RMQSTORE_NATIVE_SEND=0).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import re
import threading
import time
from pathlib import Path

import pytest

from rmqstore import aio_commit
from rmqstore.protocol import FrameDecoder, RemotingCommand, encode
from rmqstore.server.broker.handlers.send_native import ENV_SWITCH
from rmqstore.server.remoting_settings import RemotingSettings

from .test_broker import C, Harness, R, config, props, run, send_v2, slow_syncers

SERVED = re.compile(r"native send path: (\d+) sends answered, (\d+) of them whole reads")
SENDS = 6  # one read's


def _read(n: int, base: int) -> bytes:
    """n sends with WAIT=true, pipelined: one write, one read on the broker's side."""
    return b"".join(encode(RemotingCommand(
        code=C.SEND_MESSAGE_V2, opaque=base + i,
        ext_fields=send_v2("SF", 0, props(KEYS=f"k{base + i}", WAIT="true")),
        body=b"body %d" % (base + i))) for i in range(n))


async def _answers(reader: asyncio.StreamReader, n: int) -> list[RemotingCommand]:
    decoder, got = FrameDecoder(), []
    while len(got) < n:
        data = await reader.read(1 << 16)
        assert data, "closed before every answer arrived"
        got.extend(decoder.feed(data))
    return got


def _shape(r: RemotingCommand) -> tuple:
    """What an answer says of its send; of msgId, the commit-log offset (the store host's
    port differs between the brokers compared)."""
    ext = r.ext_fields or {}
    return (r.opaque, r.code, ext.get("queueId"), ext.get("queueOffset"),
            (ext.get("msgId") or "")[-16:])


def _scenario(tmp: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
              native: str) -> tuple[list[tuple], list[tuple], str, tuple[int, int]]:
    monkeypatch.setenv(ENV_SWITCH, native)
    made = slow_syncers(monkeypatch, 0.01)  # 10 ms: never the loop's own sync, always made[0]
    out: dict = {}

    async def main() -> None:
        cfg = config(tmp, sync_flush=True, sync_flush_timeout_ms=1000)
        async with Harness(cfg) as h:
            for _ in range(2):  # the first opens the queue, the second admits SF
                r = await h.call(C.SEND_MESSAGE_V2, send_v2("SF", 0, props(WAIT="true")),
                                 b"first")
                assert r.code == R.SUCCESS, r
            host, port = h.broker.address.rsplit(":", 1)
            reader, writer = await asyncio.open_connection(host, int(port))
            try:
                made[0].errno = 5  # EIO: every fdatasync fails from now on
                durable = h.broker.store.durable_offset
                t0 = time.monotonic()
                writer.write(_read(SENDS, 100))
                failed = await _answers(reader, SENDS)
                waited = time.monotonic() - t0
                # answered at the failure, not at the timeout
                assert waited < 0.9, (waited, [(a.opaque, a.code) for a in failed])
                made[0].errno = 0  # the disk is back, the store stays stopped
                writer.write(_read(SENDS, 200))
                ok = await _answers(reader, SENDS)
                assert h.broker.store.durable_offset == durable
            finally:
                writer.close()
            r = await h.call(C.GET_MAX_OFFSET, {"topic": "SF", "queueId": "0"})
            out["stored"] = r.ext_fields["offset"]
            out["failed"], out["ok"] = [_shape(a) for a in failed], [_shape(a) for a in ok]

    with caplog.at_level(logging.INFO, logger="rmqstore.server.broker.handlers.send"):
        caplog.clear()
        run(main, timeout_s=30)
    served = SERVED.findall(caplog.text)
    counts = tuple(map(int, served[0])) if served else (0, 0)
    return out["failed"], out["ok"], out["stored"], counts  # type: ignore[return-value]


def test_a_served_read_waits_for_the_disk_and_a_failed_sync_answers_each_send(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    on = _scenario(tmp_path / "on", monkeypatch, caplog, "1")
    off = _scenario(tmp_path / "off", monkeypatch, caplog, "0")
    failed, ok, stored, (taken, whole) = on
    # every send of the failed read: FLUSH_DISK_TIMEOUT, in request order, with its own
    # queue offset and message id (stored all the same)
    assert [a[:2] for a in failed] == [(100 + i, R.FLUSH_DISK_TIMEOUT) for i in range(SENDS)]
    assert [a[3] for a in failed] == [str(2 + i) for i in range(SENDS)]
    assert len({a[4] for a in failed}) == SENDS and all(a[4] for a in failed)
    assert [a[:2] for a in ok] == [(200 + i, R.SERVICE_NOT_AVAILABLE) for i in range(SENDS)]
    assert stored == str(2 + SENDS)
    assert (failed, ok, stored) == off[:3]  # the per-frame path's answers, field for field
    assert whole == SENDS and taken == whole + 1  # the failed read was serve's (the first
    # send opened the queue, the second admitted SF: the per-frame path's; the refused read
    # went the per-frame path, which raises the store's refusal)
    assert off[3] == (0, 0)


def test_a_lone_producers_send_is_synced_in_its_read_and_a_failed_sync_is_not_acknowledged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One connection, one waiting send at a time, syncs quick: each read is synced on the
    loop in the call that stored it (AsyncGroupCommit.sync_now) and answered once durable; an
    fdatasync that fails there answers FLUSH_DISK_TIMEOUT, never SUCCESS, and stops writes."""
    monkeypatch.setenv(ENV_SWITCH, "1")
    monkeypatch.setattr(aio_commit, "INLINE_BELOW_S", 60.0)  # quick, however loaded the machine
    failing = threading.Event()
    real_fdatasync = os.fdatasync

    def fdatasync(fd: int) -> None:
        if failing.is_set():
            raise OSError(errno.EIO, "planted EIO")
        real_fdatasync(fd)

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    inline: list[bool] = []  # what each sync_now call answered
    real_sync_now = aio_commit.AsyncGroupCommit.sync_now

    def sync_now(self: aio_commit.AsyncGroupCommit, offset: int, source: int,
                 answer=None) -> bool:
        inline.append(real_sync_now(self, offset, source, answer))
        return inline[-1]

    monkeypatch.setattr(aio_commit.AsyncGroupCommit, "sync_now", sync_now)

    async def main() -> None:
        cfg = config(tmp_path, sync_flush=True, sync_flush_timeout_ms=1000)
        async with Harness(cfg) as h:
            store = h.broker.store
            for i in range(30):
                r = await h.call(C.SEND_MESSAGE_V2, send_v2("SF", 0, props(WAIT="true")),
                                 b"lone %d" % i)
                assert r.code == R.SUCCESS, r
                assert store.durable_offset > int(r.ext_fields["msgId"][-16:], 16)
            assert inline.count(True) >= 20, inline  # the first few: per frame, or first
            before = len(inline)
            failing.set()
            t0 = time.monotonic()
            durable = store.durable_offset
            r = await h.call(C.SEND_MESSAGE_V2, send_v2("SF", 0, props(WAIT="true")), b"eio")
            assert r.code == R.FLUSH_DISK_TIMEOUT and time.monotonic() - t0 < 0.9, r
            assert inline[before:] == [False], inline[before:]  # tried inline, and failed
            failing.clear()
            r = await h.call(C.SEND_MESSAGE_V2, send_v2("SF", 0, props(WAIT="true")), b"ok")
            assert r.code == R.SERVICE_NOT_AVAILABLE, r  # stopped (sync_failure.py)
            assert store.durable_offset == durable

    run(main, timeout_s=30)


def test_held_answers_count_against_the_connection_buffer_cap(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A producer pipelining waiting sends while the disk lags: the answers held for it count
    against serverMaxBufferedBytesPerConnection, so once they pass it the broker reads no
    more of its sends until the sync answers them; then the rest are read, stored and
    answered, nothing lost."""
    monkeypatch.setenv(ENV_SWITCH, "1")
    slow_syncers(monkeypatch, 2.0)  # the first read's answers wait 2 s for the disk
    cap = 64 << 10
    first, second = 400, 50  # the first read's answers alone pass the cap

    async def main() -> None:
        cfg = config(tmp_path, sync_flush=True, sync_flush_timeout_ms=20_000,
                     remoting=RemotingSettings(limits={"max_frame_bytes": cap,
                                                       "max_buffered_bytes": cap}))
        async with Harness(cfg) as h:
            for _ in range(2):  # the first opens the queue, the second admits SF
                r = await h.call(C.SEND_MESSAGE_V2, send_v2("SF", 0, props(WAIT="true")),
                                 b"first", timeout_s=20)
                assert r.code == R.SUCCESS, r

            async def stored() -> int:
                r = await h.call(C.GET_MAX_OFFSET, {"topic": "SF", "queueId": "0"})
                return int(r.ext_fields["offset"])

            host, port = h.broker.address.rsplit(":", 1)
            reader, writer = await asyncio.open_connection(host, int(port))
            try:
                writer.write(_read(first, 1000))
                await writer.drain()
                await asyncio.sleep(0.1)
                writer.write(_read(second, 5000))
                await writer.drain()
                await asyncio.sleep(0.4)  # the disk still syncs the first read
                during = await stored()
                answers = await asyncio.wait_for(_answers(reader, first + second), 20)
            finally:
                writer.close()
            assert during <= 2 + first, "sends past the cap were read while answers were held"
            assert [a.code for a in answers] == [R.SUCCESS] * (first + second)
            assert sorted(a.opaque for a in answers) == \
                [*range(1000, 1000 + first), *range(5000, 5000 + second)]
            assert await stored() == 2 + first + second

    run(main, timeout_s=60)
