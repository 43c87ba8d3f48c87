"""A store that stopped taking writes says so and why, where an operator looks: /metrics
(rmqstore_store_writes_stopped by reason, rmqstore_commitlog_sync_failed_offset_bytes), the
runtime info (rmqstoreWritesStopped, rmqstoreSyncFailedOffset) and the dashboard's overview.
A failed sync on the fake disk of tests/server/test_broker.py (a broker in this process, on
real loopback sockets); a full disk as tests/server/test_limits.py makes one (`rmqstore serve`
with a tiny diskSpaceWarningLevelRatio)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from rmqstore.protocol import RequestCode, ResponseCode
from rmqstore.protocol.admin_bodies import decode_kv_table
from rmqstore.server.testing import call
from tests.server.test_broker import Harness, config, send_v1, slow_syncers

from .conftest import get, sample, scrape, start_server, wait_until

STOPPED = "rmqstore_store_writes_stopped"
OFFSET = "rmqstore_commitlog_sync_failed_offset_bytes"


def _reasons(families: dict) -> dict[str, float | None]:
    return {r: sample(families, STOPPED, reason=r) for r in ("sync_failed", "disk_full")}


def test_a_failed_sync_shows_as_writes_stopped_with_its_offset(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made = slow_syncers(monkeypatch, 0.01)

    async def main() -> None:
        async with Harness(config(tmp_path, sync_flush=True, sync_flush_timeout_ms=1500)) as h:
            host, port = h.broker.web.address
            url = f"http://{host}:{port}"

            async def runtime() -> dict[str, str]:
                r = await h.call(RequestCode.GET_BROKER_RUNTIME_INFO)
                assert r.code == ResponseCode.SUCCESS
                return decode_kv_table(r.body)

            r = await h.call(RequestCode.SEND_MESSAGE, send_v1("SF", 0, ""), b"first")
            assert r.code == ResponseCode.SUCCESS
            families = await asyncio.to_thread(scrape, url)
            assert _reasons(families) == {"sync_failed": 0, "disk_full": 0}
            assert sample(families, OFFSET) is None
            kv = await runtime()
            assert (kv["rmqstoreWritesStopped"], kv["rmqstoreSyncFailedOffset"]) == ("none", "-1")

            durable = h.broker.store.durable_offset
            made[0].errno = 5  # EIO: the store stops at its first failed sync
            r = await h.call(RequestCode.SEND_MESSAGE, send_v1("SF", 0, ""), b"second")
            assert r.code == ResponseCode.FLUSH_DISK_TIMEOUT
            assert durable < h.broker.store.commitlog.max_offset  # the offset is not the end

            families = await asyncio.to_thread(scrape, url)
            assert _reasons(families) == {"sync_failed": 1, "disk_full": 0}
            assert sample(families, OFFSET) == durable
            kv = await runtime()
            assert (kv["rmqstoreWritesStopped"], kv["rmqstoreSyncFailedOffset"]) == \
                ("sync_failed", str(durable))
            await asyncio.sleep(1.1)  # past the dashboard's snapshot
            status, _, body = await asyncio.to_thread(get, url + "/api/overview")
            store = json.loads(body)["store"]
            assert status == 200 and (store["writesStopped"], store["syncFailedOffset"]) == \
                (["sync_failed"], durable)

    asyncio.run(asyncio.wait_for(main(), 30))


def test_a_full_disk_shows_as_writes_stopped_for_disk_full(tmp_path: Path) -> None:
    conf = tmp_path / "broker.conf"
    # every disk is "full" above this ratio; the store notices at its first disk check (10 s)
    conf.write_text("diskSpaceWarningLevelRatio=0.000001\n")
    srv = start_server(tmp_path, "-c", str(conf))
    try:
        families = wait_until(lambda: (f := scrape(srv.url)) and
                              sample(f, STOPPED, reason="disk_full") == 1 and f,
                              30, interval_s=0.5, what="disk_full in the scrape")
        assert _reasons(families) == {"sync_failed": 0, "disk_full": 1}
        assert sample(families, OFFSET) is None
        kv = decode_kv_table(call(srv.broker, RequestCode.GET_BROKER_RUNTIME_INFO).body)
        assert (kv["rmqstoreWritesStopped"], kv["rmqstoreSyncFailedOffset"]) == \
            ("disk_full", "-1")
    finally:
        srv.proc.stop()
