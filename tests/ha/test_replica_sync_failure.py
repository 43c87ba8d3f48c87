"""A replica whose commit-log sync fails stops taking its master's bytes, as a master stops
taking puts (sync_failure.py): the link closes and is not made again, so the master no longer
counts it, until the store is reopened. Reopened, its log ends where it was last durable and
the master sends the rest again, byte for byte."""

from __future__ import annotations

import asyncio
import errno
import logging

import pytest

import rmqstore
from rmqstore import SyncFailedError, sync_journal
from tests.ha.test_link import CFG, FAST, fill, linked, run, until
from tests.log_digest import log_digest

# sync flush: the sync each append cues fails; async: the housekeeper's periodic one
FLUSHES = {"sync": dict(flush="sync"),
           "async": dict(flush="async", flush_interval_ms=20, flush_least_pages=0)}


@pytest.mark.parametrize("flush", FLUSHES)
def test_a_replica_whose_sync_fails_stops_following_until_it_is_reopened(
        tmp_path, monkeypatch, caplog, flush) -> None:
    master = rmqstore.open(tmp_path / "m", **CFG)
    root = tmp_path / "r"
    replica = rmqstore.open(root, replica=True, **FLUSHES[flush], **CFG)
    failing = False
    real = sync_journal.fdatasync_upto

    def fdatasync_upto(fd, path, length) -> None:  # the replica's disk, once told to fail
        if failing and root / "commitlog" in path.parents:
            raise OSError(errno.EIO, "Input/output error")
        real(fd, path, length)

    monkeypatch.setattr(sync_journal, "fdatasync_upto", fdatasync_upto)
    fill(master, 100)
    try:
        async def fail_then_stay_away() -> tuple[int, int]:
            nonlocal failing
            async with linked(master, replica) as (service, client):
                await until(lambda: replica.commitlog.files.durable()
                            == replica.replica.end == master.commitlog.max_offset)
                durable = replica.replica.end
                failing = True
                fill(master, 20)
                await until(lambda: replica.sync_failed_at is not None and not client.connected)
                stopped = replica.replica.end
                fill(master, 200)
                await asyncio.sleep(10 * FAST.reconnect_interval_ms / 1000)  # would reconnect
                assert not client.connected
                assert replica.replica.end == stopped < master.commitlog.max_offset
                assert service.acked <= stopped
                with pytest.raises(SyncFailedError):  # nor by an embedding application's hand
                    replica.replica.segment_at(stopped)
                return durable, replica.sync_failed_at

        with caplog.at_level(logging.INFO, logger="rmqstore"):
            durable, failed_at = run(fail_then_stay_away())
        assert failed_at >= durable
        assert "follows no master until its store is reopened" in caplog.text
        failing = False
        replica.close()
        replica = rmqstore.open(root, replica=True, **FLUSHES[flush], **CFG)
        assert replica.sync_failed_at is None
        assert replica.replica.end == failed_at  # cut where it was last durable

        async def resume() -> None:
            async with linked(master, replica):
                await until(lambda: replica.replica.dispatched == master.commitlog.max_offset)

        run(resume())
        assert log_digest(replica, 0) == log_digest(master, 0)
        assert replica.max_offset("T", 0) == master.max_offset("T", 0)
    finally:
        master.close()
        replica.close()
