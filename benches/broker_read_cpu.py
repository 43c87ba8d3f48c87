"""The broker's own CPU per sync send, without the kernel: an in-process Broker (ASYNC_FLUSH,
RocketMQ's default store sizes) fed one SEND_MESSAGE_V2 frame per read, as a producer awaiting
each send makes it, straight into a server connection's data_received, the answers written to
a transport that keeps nothing. What it times (process CPU over a fixed count) is the user-space
half of what server_bench.py's CPU table shows for sync x1: the read hook, SendPath.serve, the
counters, the answer; the loopback, epoll and the socket calls are the other half, which the C
floor (benches/server_floor.c) takes too.

    .venv/bin/python benches/broker_read_cpu.py [--sends N] [--repeat R]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import tempfile
import time
from pathlib import Path

from rmqstore.net import RemotingClient
from rmqstore.protocol import RemotingCommand, RequestCode, encode
from rmqstore.protocol.header_codec import encode_header
from rmqstore.protocol.headers import SendMessageRequestHeaderV2
from rmqstore.server.broker.app import Broker
from rmqstore.server.broker.config import BrokerConfig

BODY = b"x" * 100
TOPIC = "ReadCpu"


class NullTransport:
    """A transport that takes every write and keeps nothing (the answers' bytes are counted)."""

    def __init__(self) -> None:
        self.written = 0
        self.protocol: asyncio.Protocol | None = None

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        if self.protocol is not None:  # what a socket's transport does once closed
            self.protocol, protocol = None, self.protocol
            protocol.connection_lost(None)


def frames(count: int, start: int) -> list[bytes]:
    """Our Producer's sends: a fresh UNIQ_KEY each (indexed), WAIT=true, queues in turn."""
    base = encode_header(SendMessageRequestHeaderV2(
        producer_group="PG", topic=TOPIC, default_topic="TBW102", default_topic_queue_nums=4,
        queue_id=0, sys_flag=0, born_timestamp=int(time.time() * 1000), flag=0, properties="",
        reconsume_times=0, unit_mode=False, batch=False))
    out = []
    for n, queue in zip(range(start, start + count), itertools.cycle(range(4))):
        ext = dict(base, e=str(queue), i=f"UNIQ_KEY\x01{n:032X}\x02WAIT\x01true\x02")
        out.append(encode(RemotingCommand(code=RequestCode.SEND_MESSAGE_V2, ext_fields=ext,
                                          body=BODY, opaque=n + 1)))
    return out


async def measure(root: Path, sends: int, repeat: int) -> list[float]:
    broker = Broker(BrokerConfig(listen_port=0, metrics_port=0, store_root=root / "store",
                                 broker_name="read-cpu"))
    await broker.start()
    client = RemotingClient()
    try:
        await client.invoke(broker.address, RemotingCommand.request(
            RequestCode.UPDATE_AND_CREATE_TOPIC, {
                "topic": TOPIC, "defaultTopic": "TBW102", "readQueueNums": "4",
                "writeQueueNums": "4", "perm": "6", "topicFilterType": "SINGLE_TAG"}), 5)
        conn = broker._server._new_connection()  # noqa: SLF001 - a bench reaches in
        transport = NullTransport()
        conn.connection_made(transport)  # type: ignore[arg-type]
        transport.protocol = conn
        for frame in frames(12, 0):  # each queue opened, the topic admitted to the fast table
            conn.data_received(frame)
        native = broker.dispatcher.read_handler.__self__  # NativeSend.on_read's
        before = native.served
        out = []
        batches = [frames(sends, 12 + turn * sends) for turn in range(repeat)]
        for batch in batches:
            t0 = time.process_time()
            for frame in batch:
                conn.data_received(frame)
            out.append((time.process_time() - t0) / sends * 1e6)
            await asyncio.sleep(0)  # let the loop run its callbacks between turns
        served = native.served - before
        if served < 0.99 * sends * repeat or transport.written == 0:  # a roll goes to Python
            raise RuntimeError(f"{served} of {sends * repeat} sends served by their read")
        return out
    finally:
        await client.close()
        await broker.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sends", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="rmq-read-cpu-") as tmp:
        us = asyncio.run(measure(Path(tmp), args.sends, args.repeat))
    print(f"broker user-space CPU per sync send: min {min(us):.2f} us, "
          f"runs {' '.join(f'{u:.2f}' for u in us)}")


if __name__ == "__main__":
    main()
