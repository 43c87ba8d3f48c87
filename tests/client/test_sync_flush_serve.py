"""`rmqstore serve --flush sync` (group commit led from the event loop, fdatasync on a native
thread): concurrent producers' acknowledged sends survive kill -9, byte for byte, and the
broker restarts after it and stops cleanly."""

from __future__ import annotations

import asyncio
from pathlib import Path

import rmqstore
from rmqstore.client import Message, Producer
from rmqstore.config import StoreConfig

from .conftest import Server, run


def test_acked_sync_sends_survive_kill9(tmp_path: Path, topic: str) -> None:
    srv = Server(tmp_path, split=False)
    srv.broker_proc.args += ["--flush", "sync"]
    srv.start()
    acked: dict[str, bytes] = {}
    try:
        async def main() -> None:
            async with Producer("PG_syncflush", srv.namesrv) as p:
                await p.create_topic(topic, 4)

                async def lane(k: int) -> None:  # eight producers' worth of sends in flight
                    for i in range(40):
                        body = b"lane %d message %d " % (k, i) + bytes([k, i]) * 20
                        result = await p.send(Message(topic, body, keys=[f"k{k}-{i}"]))
                        assert result.status.name == "SEND_OK"
                        acked[result.offset_msg_id] = body

                await asyncio.gather(*(lane(k) for k in range(8)))

        run(main(), 60)
        assert len(acked) == 320
        srv.broker_proc.kill()  # SIGKILL: no flush, no clean close
        # It recovers, serves sync sends again, and stops cleanly on SIGTERM.
        srv.start()

        async def after() -> None:
            async with Producer("PG_syncflush2", srv.namesrv) as p:
                for i in range(10):
                    body = b"after restart %d" % i
                    acked[(await p.send(Message(topic, body))).offset_msg_id] = body

        run(after(), 60)
        assert srv.broker_proc.terminate() == 0
        assert "Traceback" not in srv.broker_proc.log()
    finally:
        srv.stop()

    # The broker's store, recovered after the crash, has every acknowledged message.
    with rmqstore.open(srv.data, **StoreConfig.sizes_on_disk(srv.data)) as store:
        stored = {}
        for q in range(4):
            for m in store.get(topic, q, 0, 1000).messages:
                stored[m.msg_id] = m.body
        for msg_id, body in acked.items():
            assert stored.get(msg_id) == body, msg_id
