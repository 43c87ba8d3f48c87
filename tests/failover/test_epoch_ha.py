"""Controller-mode replication between two stores on real loopback sockets: the handshake, a
full copy with epoch entries, the in-sync set growing, sends waiting for every member, and an
old master cutting its divergent tail when it follows the new one."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import rmqstore
from rmqstore.epoch_file import EpochFile
from rmqstore.ha.config import HAConfig
from rmqstore.ha.epoch_client import EpochHAClient
from rmqstore.ha.epoch_master import EpochHAService
from rmqstore.ha.in_sync import InSyncConfig, InSyncReplicas
from rmqstore.net.tls import TlsServerConfig
from tests.engine.test_replica import CFG
from tests.log_digest import log_digest

HA = HAConfig(heartbeat_interval_ms=200, slave_timeout_ms=500, reconnect_interval_ms=100)


def run(test: Callable[[], Awaitable[None]], timeout_s: float = 30) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(timeout_s):
            await test()
    asyncio.run(bounded())


async def wait_for(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.02)


class Master:
    """A store as master of ``epoch``: its HA port, in-sync replicas the test commits."""

    def __init__(self, store: rmqstore.MessageStore, me: int, epoch: int,
                 tls: TlsServerConfig | None = None) -> None:
        self.store = store
        self.epochs = EpochFile(store.root)
        self.epochs.append(epoch, store.commitlog.max_offset)
        self.proposals: list[frozenset[int]] = []
        self.isr = InSyncReplicas(asyncio.get_running_loop(), me,
                                  lambda: store.commitlog.max_offset,
                                  lambda: self.epochs.entries[-1][1], InSyncConfig(
                                      slave_timeout_s=0.5), self.proposals.append,
                                  store.set_confirm_offset)
        self.ha = EpochHAService(store, self.epochs, self.isr, "127.0.0.1", 0, HA, tls)

    @property
    def address(self) -> str:
        return "%s:%d" % self.ha.address

    def put(self, n: int, tag: str) -> int:
        for i in range(n):
            self.store.put("T", os.urandom(30 + i % 200), queue_id=0, keys=[f"{tag}{i}"])
        self.isr.appended()
        self.ha.wakeup()
        return self.store.commitlog.max_offset

    async def replicated(self, end: int) -> bool:
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.ha.when_replicated(end, done.set_result)
        return await done


def open_store(root: Path, replica: bool = False) -> rmqstore.MessageStore:
    return rmqstore.open(root, replica=replica, **CFG)


def test_a_new_slave_copies_everything_and_joins_the_in_sync_set(tmp_path: Path) -> None:
    async def main() -> None:
        with open_store(tmp_path / "m") as ms, open_store(tmp_path / "s", True) as ss:
            m = Master(ms, 1, epoch=1)
            m.put(400, "a")  # several 64 KiB segments: a full copy from offset 0
            await m.ha.start()
            s_epochs = EpochFile(ss.root)
            client = EpochHAClient(ss, s_epochs, 2, m.address, HA)
            await client.start()
            try:
                await wait_for(lambda: ss.commitlog.max_offset == ms.commitlog.max_offset)
                await wait_for(lambda: m.proposals == [frozenset({1, 2})])
                assert s_epochs.entries == [(1, 0)]
                assert log_digest(ss, 0) == log_digest(ms, 0)
                m.isr.set_committed(frozenset({1, 2}), 2)  # the controller agreed

                end = m.put(5, "b")
                assert await m.replicated(end)  # slave 2 acked it
                await wait_for(lambda: ss.max_offset("T", 0) == 405)  # confirmed: dispatched
                await client.close()  # slave 2 goes: sends wait for it, then time out
                end = m.put(1, "c")
                assert not await m.replicated(end)
                assert ms.get("T", 0, 405, 8).messages == []  # not confirmed: not readable
            finally:
                await client.close()
                await m.ha.close()
    run(main)


def test_the_old_master_cuts_what_the_new_one_never_had(tmp_path: Path) -> None:
    async def main() -> None:
        with open_store(tmp_path / "a") as a_store, open_store(tmp_path / "b", True) as b_store:
            a = Master(a_store, 1, epoch=1)
            a.put(200, "a")
            await a.ha.start()
            b_epochs = EpochFile(b_store.root)
            follow_a = EpochHAClient(b_store, b_epochs, 2, a.address, HA)
            await follow_a.start()
            await wait_for(lambda: b_store.commitlog.max_offset == a_store.commitlog.max_offset)
            await follow_a.close()
            common = a_store.commitlog.max_offset
            a.put(30, "lost")  # b never gets these: a is cut off, then b is elected
            await a.ha.close()

            b_store.become_master()
            b = Master(b_store, 2, epoch=2)
            assert b.epochs.entries == [(1, 0), (2, common)]
            b.put(10, "new")
            await b.ha.start()
            a_store.become_replica()
            follow_b = EpochHAClient(a_store, a.epochs, 1, b.address, HA)
            await follow_b.start()
            try:
                await wait_for(lambda: a_store.commitlog.max_offset ==
                               b_store.commitlog.max_offset and not a_store.replica.pending())
                assert a.epochs.entries == [(1, 0), (2, common)]
                assert log_digest(a_store, 0) == log_digest(b_store, 0)
                assert a_store.query("T", "lost3") == [] and a_store.query("T", "new3")
                # a new replica copies across the epoch boundary: each frame names its epoch
                with open_store(tmp_path / "c", True) as c_store:
                    c_epochs = EpochFile(c_store.root)
                    follow = EpochHAClient(c_store, c_epochs, 3, b.address, HA)
                    await follow.start()
                    try:
                        await wait_for(lambda: c_store.commitlog.max_offset ==
                                       b_store.commitlog.max_offset)
                        assert c_epochs.entries == [(1, 0), (2, common)]
                    finally:
                        await follow.close()
            finally:
                await follow_b.close()
                await b.ha.close()
    run(main)


def test_a_slave_dispatches_only_what_its_master_confirmed(tmp_path: Path) -> None:
    """Each frame's confirm offset, capped at what this slave holds, is how far it dispatches:
    records past the master's confirm stay unreadable here, and a confirm beyond this slave's
    end (the others acked more) does not run ahead of its log. A scripted master sends the
    frames."""
    from rmqstore.protocol.ha_epoch import MasterHandshake, encode_transfer

    async def main() -> None:
        with open_store(tmp_path / "m") as ms, open_store(tmp_path / "s", True) as ss:
            bounds = []
            for i in range(10):
                ms.put("T", os.urandom(40), queue_id=0, keys=[f"k{i}"])
                bounds.append(ms.commitlog.max_offset)
            data = bytes(ms.read_log(0, bounds[-1]))
            assert len(data) == bounds[-1]
            frames: asyncio.Queue[bytes] = asyncio.Queue()

            async def master(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                await reader.read(64)  # the slave's handshake
                writer.write(MasterHandshake(bounds[-1], 1, ((1, 0),)).encode())
                while True:
                    writer.write(await frames.get())
                    await writer.drain()

            server = await asyncio.start_server(master, "127.0.0.1", 0)
            host, port = server.sockets[0].getsockname()[:2]
            client = EpochHAClient(ss, EpochFile(ss.root), 2, f"{host}:{port}", HA)
            await client.start()
            try:
                # all ten records, five confirmed
                frames.put_nowait(encode_transfer(0, data, 1, 0, bounds[4]))
                await wait_for(lambda: ss.commitlog.max_offset == bounds[-1])
                await wait_for(lambda: ss.max_offset("T", 0) == 5)
                await asyncio.sleep(0.2)
                assert ss.max_offset("T", 0) == 5 and ss.confirm_offset == bounds[4]
                assert ss.query("T", "k4") and not ss.query("T", "k5")
                # a confirm beyond what this slave holds stops at its end
                frames.put_nowait(encode_transfer(bounds[-1], b"", 1, 0, bounds[-1] + 4096))
                await wait_for(lambda: ss.max_offset("T", 0) == 10)
                assert ss.confirm_offset == bounds[-1]
            finally:
                await client.close()
                server.close()
    run(main)


def test_a_master_alone_confirms_each_append(tmp_path: Path) -> None:
    """With no slave linked and itself the only in-sync member, what is put is confirmed:
    every append moves the confirm offset (no link, yet the append still wakes the service)."""
    async def main() -> None:
        with open_store(tmp_path / "m") as ms:
            m = Master(ms, 1, epoch=1)
            await m.ha.start()
            try:
                ms.put("T", b"alone", queue_id=0)  # the store's own append, not Master.put
                end = ms.commitlog.max_offset
                await wait_for(lambda: ms.confirm_offset == end)
                assert m.isr.confirm == end
                assert [x.body for x in ms.get("T", 0, 0, 8).messages] == [b"alone"]
            finally:
                await m.ha.close()
    run(main)
