"""Redis Streams as the server benchmark's peer: a redis-server of Debian's `redis-server`
package with the append-only file on, driven by redis-py as its users drive it.

Flush modes pair as durability does: SYNC_FLUSH with `appendfsync always` (Redis fdatasyncs the
AOF before it answers a batch of writes), ASYNC_FLUSH with `appendfsync everysec`. A topic is
one stream; a send is one XADD; a batch is a pipeline of XADDs (no MULTI); a consumer is
XREADGROUP with XACK of what it read, as a Redis Streams consumer group works.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from bench_worker import (
    BODY,
    MAX_SENDS,
    ConsumeState,
    Control,
    cpu_seconds,
    emit,
    inflight_sends,
    paced_e2e_sends,
    terminate,
)

FSYNC = {"sync": "always", "async": "everysec"}
FIELD = b"b"  # the one field of every entry: the body (and the e2e stamp beside it)


def answers(client, proc: subprocess.Popen, timeout_s: float) -> bool:
    """Ping a starting redis-server until it answers (True), or until it exits or
    ``timeout_s`` pass (False)."""
    import redis

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            client.ping()
            return True
        except redis.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.02)


def redis_server_path() -> str | None:
    return shutil.which("redis-server")


class RedisServer:
    """One redis-server on a free loopback port, AOF in a directory of its own."""

    def __init__(self, flush: str, root: Path, port: int, start_timeout_s: float = 20) -> None:
        import redis

        binary = redis_server_path()
        if binary is None:
            raise RuntimeError("redis-server is not installed (Debian: redis-server)")
        workdir = root / f"redis-{flush}"
        workdir.mkdir()
        self.namesrv, self.broker = "", f"127.0.0.1:{port}"
        self.log = open(workdir / "redis.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
             "--appendonly", "yes", "--appendfsync", FSYNC[flush], "--save", "",
             "--daemonize", "no", "--protected-mode", "yes", "--loglevel", "warning"],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.client = redis.Redis(host="127.0.0.1", port=port)
        if not answers(self.client, self.proc, start_timeout_s):
            self.stop()
            raise RuntimeError("redis-server did not start: "
                               + (workdir / "redis.log").read_text()[-1000:])

    def stop(self) -> None:
        self.client.close()
        terminate(self.proc, 10)
        self.log.close()

    def cpu_s(self) -> float:
        return cpu_seconds(self.proc.pid)

    def create_topic(self, topic: str, queues: int = 4) -> None:
        pass  # a stream is made by its first XADD (or a group's MKSTREAM)

    def max_offsets(self, topic: str, queues: int = 4) -> int:
        return int(self.client.xlen(topic))


def redis_worker(spec: dict, ctl: Control) -> None:
    """The kinds of server_bench's workers, with redis-py: send, async, batch, consume, e2e."""
    kind = spec["kind"]
    host, port = spec["broker"].rsplit(":", 1)
    if kind == "async":
        _async_sends(spec, ctl, host, int(port))
        return
    import redis

    r = redis.Redis(host=host, port=int(port))
    topic = spec["topic"]
    try:
        if kind in ("consume", "e2e_consume"):
            _consume(spec, ctl, r)
        elif kind == "e2e":
            _e2e_produce(spec, ctl, r)
        else:
            _sends(spec, ctl, r, topic, kind)
    finally:
        r.close()


def _sends(spec: dict, ctl: Control, r, topic: str, kind: str) -> None:
    batch = spec.get("batch_size", 1)

    def send_batch() -> None:
        pipe = r.pipeline(transaction=False)
        for _ in range(batch):
            pipe.xadd(topic, {FIELD: BODY})
        pipe.execute()

    send = send_batch if kind == "batch" else lambda: r.xadd(topic, {FIELD: BODY})
    per_send = batch if kind == "batch" else 1
    for _ in range(20):
        send()
    emit(ready=True)
    ctl.go.wait(60)
    count = spec.get("count", MAX_SENDS)
    n = errors = 0
    t0 = time.monotonic()
    deadline = t0 + spec["duration"]
    while n < count and time.monotonic() < deadline:
        try:
            send()
            n += per_send
        except Exception:  # noqa: BLE001 - counted
            errors += 1
            if errors > 1000:
                break
    emit(result={"n": n, "errors": errors, "t0": t0, "t1": time.monotonic()})


def _async_sends(spec: dict, ctl: Control, host: str, port: int) -> None:
    """`inflight` tasks on redis.asyncio, each awaiting one XADD at a time."""
    import asyncio

    import redis.asyncio as aredis

    async def run() -> None:
        r = aredis.Redis(host=host, port=port, max_connections=spec["inflight"])
        topic, count = spec["topic"], spec.get("count", MAX_SENDS)
        try:
            for _ in range(20):
                await r.xadd(topic, {FIELD: BODY})
            emit(ready=True)
            await asyncio.get_running_loop().run_in_executor(None, ctl.go.wait, 60)
            await inflight_sends(spec["duration"], lambda: r.xadd(topic, {FIELD: BODY}), 1,
                                 count, spec["inflight"])
        finally:
            await r.aclose()

    asyncio.run(run())


def _consume(spec: dict, ctl: Control, r) -> None:
    """XREADGROUP of up to consume_batch entries, then one XACK of them, until done."""
    import redis

    topic, group = spec["topic"], spec["group"]
    start = "$" if spec["kind"] == "e2e_consume" else "0"
    try:
        r.xgroup_create(topic, group, id=start, mkstream=True)
    except redis.ResponseError as exc:  # the group exists already
        if "BUSYGROUP" not in str(exc):
            raise
    st = ConsumeState(dict(spec, queues=1))  # one stream: one "queue" to warm up
    emit(started=True)
    batch = spec.get("consume_batch", 32)
    deadline = time.monotonic() + spec["timeout"]
    import threading

    waiter = threading.Thread(target=st.wait_done, args=(ctl,), daemon=True)
    waiter.start()
    while waiter.is_alive() and time.monotonic() < deadline:
        got = r.xreadgroup(group, "c1", {topic: ">"}, count=batch, block=50)
        if not got:
            continue
        entries = got[0][1]
        now = time.monotonic_ns()
        for _id, fields in entries:
            st.on(_Props(fields), 0, now)
        r.xack(topic, group, *(e[0] for e in entries))
    emit(result=st.result())


class _Props:
    """An entry's fields read as the message properties ConsumeState looks at."""

    def __init__(self, fields: dict) -> None:
        self.fields = fields

    def get(self, key: str):
        v = self.fields.get(key.encode())
        return v.decode() if v is not None else None


def _e2e_produce(spec: dict, ctl: Control, r) -> None:
    topic = spec["topic"]
    paced_e2e_sends(spec, ctl, lambda props: r.xadd(topic, {FIELD: BODY, **props}))
