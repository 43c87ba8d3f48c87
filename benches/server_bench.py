"""Server benchmark: `rmqstore serve` driven over loopback by our asyncio client and by the
official C++ client (PyPI `rocketmq`), in async and sync flush, the clients side by side
against the same broker in the same run, with Redis Streams (redis-py against Debian's
redis-server, benches/redis_peer.py) doing the same work beside them as the peer.

    .venv/bin/python benches/server_bench.py [--flush async|sync] [--duration S] [--json FILE]
                                             [--repeat N] [--clients aio,cpp,redis]
                                             [--scenarios sync_x1,sync_x4,async64,...]

Per flush mode it starts one `rmqstore serve` (NameServer + Broker in one process) on free
loopback ports with a temporary data directory (removed at the end), and measures per client:

- sync x1      sync sends/s, one producer awaiting each send (one connection)
- sync x4      sync sends/s, four producer *processes* at once (four connections)
- sync x4c     sync sends/s, four producers (four connections) in one process, each awaiting
               its own sends (asyncio clients; the C++ binding's producers share one client)
- async x64    acknowledged sends/s, one producer with at most --inflight (64) sends unanswered
               (ours: 64 tasks each awaiting Producer.send; C++: send_async with a semaphore of
               64 released by its success/exception callbacks); errors are counted
- batch        messages/s, one producer sending batches of --batch-size messages, one at a time
- batch xN     the same with --batch-inflight (4) batches in flight (our client only: the C++
               binding has no asynchronous batch send)
- consume      messages/s, one push consumer (new group) draining a topic pre-filled with
               --consume-count messages; first to last message received
- e2e p50/p99  ms, producer stamps CLOCK_MONOTONIC (system-wide on Linux) in a property at a
               fixed 1,000 messages/s; a push consumer in another process subtracts

Client `floor` is the minimal asyncio client against benches/server_floor.py instead of the
broker: frames appended to one file, a group fdatasync, SUCCESS answered, nothing else. Its
rates are what these clients, this loopback and this disk allow a server that does no work:
the broker's rate over the floor's says what the broker's own work costs. Client `cfloor` is
the same against benches/server_floor.c (the same work in C, one thread on epoll): its CPU per
send is what the kernel's side of a send (loopback TCP, epoll, a write) costs on this machine,
the least any server can take. A table of CPU per send (server and client processes) puts
every server of the run side by side.

Client `redis` runs each case against a redis-server with the append-only file fsynced
`always` (beside SYNC_FLUSH) or `everysec` (beside ASYNC_FLUSH); a second table gives our
client's rates over Redis's and the CPU per sync send of each side's client and server
(process CPU clocks over the run's fixed work).

Every client runs in its own process (this script with --worker), started with a ready / go
handshake on stdin so that four producers start together. Every loop is bounded by a count and
a deadline and every child process is killed if it overruns. Bodies are 100 bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench_worker import (
    BODY,
    E2E_RATE,
    MAX_SENDS,
    TS_PROP,
    WARM_PROP,
    ConsumeState,
    Control,
    cpu_seconds,
    emit,
    inflight_sends,
    minor_faults,
    paced_e2e_sends,
)
from redis_peer import RedisServer, redis_server_path, redis_worker

from rmqstore.server.testing import (
    ServeProcess,
    create_topic,
    free_broker_port,
    free_port,
    max_offset,
    route,
    wait_until,
)

CPP_PRUNE_EVERY = 65536  # C++ async sends between clean-ups of leftover callbacks (memory)

MINIMUMS = {  # (flush, metric) -> (min, "at least"/"under"): the broker's targets
    ("async", "sync_x4"): 20_000,
    ("async", "sync_x4c"): 20_000,
    ("async", "batch"): 200_000,
    ("sync", "sync_x4"): 10_000,
    ("sync", "sync_x4c"): 10_000,
}
E2E_P99_MAX_MS = 5.0


# ============================================================================ worker side ====
# -- asyncio client -------------------------------------------------------------------------
def aio_worker(spec: dict, ctl: Control) -> None:
    import asyncio

    import rmqstore.net.loop as loops
    from rmqstore.client import (
        ConsumeFromWhere,
        ConsumeStatus,
        Message,
        Producer,
        PushConsumer,
    )

    async def produce() -> None:
        topic, kind = spec["topic"], spec["kind"]
        batch = spec.get("batch_size", 1)
        async with Producer(spec["group"], namesrv=spec["namesrv"]) as p:
            loop = asyncio.get_running_loop()
            if kind == "e2e":
                await e2e_produce(p, loop, topic)
                return
            one = Message(topic, BODY)
            msgs = [Message(topic, BODY) for _ in range(batch)]
            for _ in range(20):  # routes, connection, first topic touch
                await (p.send_batch(msgs) if kind.startswith("batch") else p.send(one))
            emit(ready=True)
            await loop.run_in_executor(None, ctl.go.wait, 60)
            count = spec.get("count", MAX_SENDS)
            if kind == "async":
                await inflight_sends(spec["duration"], lambda: p.send(one), 1, count,
                                     spec["inflight"])
                return
            if kind == "conns":  # more producers (connections) in this process, one lane each
                others = [Producer(f"{spec['group']}_{i}", namesrv=spec["namesrv"])
                          for i in range(1, spec["conns"])]
                for q in others:
                    await q.start()
                    for _ in range(20):
                        await q.send(one)
                try:
                    await lanes_produce([lambda q=q: q.send(one) for q in (p, *others)], count)
                finally:
                    for q in others:
                        await q.close()
                return
            if kind == "batch_async":
                await inflight_sends(spec["duration"], lambda: p.send_batch(msgs), batch, count,
                                     spec["inflight"])
                return
            n = errors = 0
            t0 = time.monotonic()
            deadline = t0 + spec["duration"]
            while n < count and time.monotonic() < deadline:
                try:
                    if kind == "batch":
                        await p.send_batch(msgs)
                        n += batch
                    else:
                        await p.send(one)
                        n += 1
                except Exception:  # noqa: BLE001 - counted
                    errors += 1
                    if errors > 1000:
                        break
            t1 = time.monotonic()
            emit(result={"n": n, "errors": errors, "t0": t0, "t1": t1})

    async def lanes_produce(sends, count: int) -> None:
        """One lane per send function (per connection), each awaiting one send at a time."""
        n = errors = 0
        t0 = time.monotonic()
        deadline = t0 + spec["duration"]

        async def lane(send) -> None:
            nonlocal n, errors
            while n + errors < count and errors <= 1000 and time.monotonic() < deadline:
                try:
                    await send()
                    n += 1
                except Exception:  # noqa: BLE001 - counted
                    errors += 1

        await asyncio.gather(*(lane(send) for send in sends))
        emit(result={"n": n, "errors": errors, "t0": t0, "t1": time.monotonic()})

    async def e2e_produce(p, loop, topic: str) -> None:
        pending: set = set()
        errors = 0

        def fire(props: dict) -> None:
            task = asyncio.ensure_future(p.send(Message(topic, BODY, properties=props)))
            pending.add(task)
            task.add_done_callback(done)

        def done(task) -> None:
            nonlocal errors
            pending.discard(task)
            if task.cancelled() or task.exception() is not None:
                errors += 1

        emit(ready=True)
        # warm-up at the same rate until the parent says go (the consumer has rebalanced)
        deadline = time.monotonic() + 60
        while not ctl.go.is_set() and time.monotonic() < deadline:
            fire({WARM_PROP: "1"})
            await asyncio.sleep(1 / E2E_RATE)
        await asyncio.sleep(0.3)
        total = int(spec["duration"] * E2E_RATE)
        t0 = time.monotonic()
        for k in range(total):
            delay = t0 + k / E2E_RATE - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            fire({TS_PROP: str(time.monotonic_ns())})
        t1 = time.monotonic()
        async with asyncio.timeout(10):
            while pending:
                await asyncio.sleep(0.01)
        emit(result={"n": total, "errors": errors, "t0": t0, "t1": t1})

    async def consume() -> None:
        c = PushConsumer(spec["group"], namesrv=spec["namesrv"],
                         consume_from_where=ConsumeFromWhere.FIRST_OFFSET,
                         consume_batch_size=spec.get("consume_batch", 1),
                         pull_batch_size=32)
        c.subscribe(spec["topic"])
        st = ConsumeState(spec)

        async def handle(msgs) -> ConsumeStatus:
            now = time.monotonic_ns()
            for m in msgs:
                st.on(m.properties, m.queue_id, now)
            return ConsumeStatus.SUCCESS

        c.on_message(handle)
        async with c:
            emit(started=True)
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, st.wait_done, ctl)
        emit(result=st.result())

    loops.run(consume() if spec["kind"] in ("consume", "e2e_consume") else produce())


# -- C++ client (one client per process) ----------------------------------------------------
def cpp_worker(spec: dict, ctl: Control) -> None:
    from rocketmq.client import Message, Producer, PushConsumer

    kind, topic = spec["kind"], spec["topic"]

    def make(props: dict | None = None) -> Message:
        m = Message(topic)
        m.set_body(BODY)
        for k, v in (props or {}).items():
            m.set_property(k, v)
        return m

    if kind in ("consume", "e2e_consume"):
        c = PushConsumer(spec["group"])
        c.set_namesrv_addr(spec["namesrv"])
        st = ConsumeState(spec)

        class Props:
            def __init__(self, msg) -> None:
                self.msg = msg

            def get(self, key):
                v = self.msg.get_property(key)
                return v.decode() if isinstance(v, bytes) else v

        def on_message(msg) -> None:
            st.on(Props(msg), msg.queue_id, time.monotonic_ns())

        c.subscribe(topic, on_message)
        c.start()
        emit(started=True)
        st.wait_done(ctl)
        emit(result=st.result())
        c.shutdown()
        return

    p = Producer(spec["group"])
    p.set_namesrv_addr(spec["namesrv"])
    p.start()
    try:
        if kind == "e2e":
            paced_e2e_sends(spec, ctl, lambda props: p.send_sync(make(props)))
            return
        batch = spec.get("batch_size", 1)
        for _ in range(20):
            if kind == "batch":
                p.send_batch([make() for _ in range(batch)])
            else:
                p.send_sync(make())
        emit(ready=True)
        ctl.go.wait(60)
        count = spec.get("count", MAX_SENDS)
        if kind == "async":
            cpp_async_produce(p, make(), count, spec["inflight"], spec["duration"])
            return
        n = errors = 0
        one = make()
        msgs = [make() for _ in range(batch)]
        t0 = time.monotonic()
        deadline = t0 + spec["duration"]
        while n < count and time.monotonic() < deadline:
            try:
                if kind == "batch":
                    p.send_batch(msgs)
                    n += batch
                else:
                    p.send_sync(one)
                    n += 1
            except Exception:  # noqa: BLE001 - counted
                errors += 1
                if errors > 1000:
                    break
        emit(result={"n": n, "errors": errors, "t0": t0, "t1": time.monotonic()})
    finally:
        p.shutdown()


class CallbackRefs(dict):
    """A stand-in for the binding's callback list: append/remove by identity in O(1)."""

    def append(self, fn) -> None:
        self[id(fn)] = fn  # ctypes function objects are unhashable; id is unique while kept

    def remove(self, fn) -> None:
        self.pop(id(fn), None)


def cpp_async_produce(p, one, count: int, inflight: int, duration: float) -> None:
    """send_async with a semaphore of `inflight` permits, released by either callback."""
    permits = threading.Semaphore(inflight)
    lock = threading.Lock()
    acked = failed = 0

    def on_success(_result) -> None:  # on a C++ client thread
        nonlocal acked
        with lock:
            acked += 1
        permits.release()

    def on_exception(_exc) -> None:
        nonlocal failed
        with lock:
            failed += 1
        permits.release()

    def drain(timeout_s: float) -> bool:
        """Take every permit (nothing in flight), then give them back."""
        end = time.monotonic() + timeout_s
        got = 0
        while got < inflight and permits.acquire(timeout=max(0.0, end - time.monotonic())):
            got += 1
        for _ in range(got):
            permits.release()
        return got == inflight

    # The binding keeps every send's ctypes callbacks in a list and drops the success one with
    # list.remove (a scan per answer) while the exception one stays for good: quadratic in the
    # sends, which would measure the binding's list and not the client. Same entries, O(1) remove.
    p._callback_refs = CallbackRefs()
    issued = refused = 0
    t0 = time.monotonic()
    deadline = t0 + duration
    while issued < count and failed + refused <= 1000:
        left = deadline - time.monotonic()
        if left <= 0 or not permits.acquire(timeout=left):
            break
        try:
            p.send_async(one, on_success, on_exception)
            issued += 1
        except Exception:  # noqa: BLE001 - counted
            refused += 1
            permits.release()
        if issued % CPP_PRUNE_EVERY == 0 and drain(10):
            p._callback_refs.clear()  # nothing in flight: every entry left is garbage
    drained = drain(10)  # the answers to the last sends
    t1 = time.monotonic()
    with lock:
        emit(result={"n": acked, "errors": failed + refused, "t0": t0, "t1": t1,
                     "lost": 0 if drained else issued - acked - failed})


def raw_worker(spec: dict, ctl: Control) -> None:
    """The minimal asyncio client: our remoting layer alone (one
    connection, no Producer: no route refresh, no message object), SEND_MESSAGE_V2 with the
    fields a producer sends, a fresh UNIQ_KEY per message (the broker indexes it), WAIT=true,
    queues in turn. Sends only (sync and async kinds)."""
    import asyncio
    import itertools

    import rmqstore.net.loop as loops
    from rmqstore.net import RemotingClient
    from rmqstore.protocol import RemotingCommand, RequestCode
    from rmqstore.protocol.header_codec import encode_header
    from rmqstore.protocol.headers import SendMessageRequestHeaderV2

    async def produce() -> None:
        broker, topic = spec["broker"], spec["topic"]
        prefix = f"{os.getpid():08X}{id(spec) & 0xFFFF:04X}"
        seq = itertools.count()
        queues = itertools.cycle(range(4))

        def request() -> RemotingCommand:
            ext = dict(base)
            ext["e"] = str(next(queues))
            ext["g"] = str(int(time.time() * 1000))
            ext["i"] = f"UNIQ_KEY\x01{prefix}{next(seq):016X}\x02WAIT\x01true\x02"
            return RemotingCommand(code=RequestCode.SEND_MESSAGE_V2, ext_fields=ext, body=BODY)

        base = encode_header(SendMessageRequestHeaderV2(
            producer_group=spec["group"], topic=topic, default_topic="TBW102",
            default_topic_queue_nums=4, queue_id=0, sys_flag=0, born_timestamp=0, flag=0,
            properties="", reconsume_times=0, unit_mode=False, batch=False))

        kind = spec["kind"]
        clients = [RemotingClient() for _ in range(spec["conns"] if kind == "conns" else 1)]
        try:
            async def send(client: RemotingClient) -> None:
                r = await client.invoke(broker, request(), 3.0)
                if r.code != 0:
                    raise RuntimeError(f"send answered {r.code}: {r.remark}")

            for client in clients:
                for _ in range(20):
                    await send(client)
            emit(ready=True)
            await asyncio.get_running_loop().run_in_executor(None, ctl.go.wait, 60)
            count = spec.get("count", MAX_SENDS)
            lanes = clients if kind == "conns" else clients * (
                spec.get("inflight", 1) if kind == "async" else 1)
            n = errors = 0
            t0 = time.monotonic()
            deadline = t0 + spec["duration"]

            async def lane(client: RemotingClient) -> None:
                nonlocal n, errors
                while n + errors < count and errors <= 1000 and time.monotonic() < deadline:
                    try:
                        await send(client)
                        n += 1
                    except Exception:  # noqa: BLE001 - counted
                        errors += 1

            await asyncio.gather(*(lane(c) for c in lanes))
            emit(result={"n": n, "errors": errors, "t0": t0, "t1": time.monotonic()})
        finally:
            for client in clients:
                await client.close()

    loops.run(produce())


def worker_main(spec_text: str) -> None:
    spec = json.loads(spec_text)
    ctl = Control()
    try:
        {"cpp": cpp_worker, "raw": raw_worker, "floor": raw_worker, "cfloor": raw_worker,
         "redis": redis_worker}.get(
            spec["client"], aio_worker)(spec, ctl)
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        emit(error=f"{type(exc).__name__}: {exc}")
    sys.stdout.flush()
    os._exit(0)  # the C++ binding's destructors would run shutdown() again


# ============================================================================ parent side ====
class Server:
    """One `rmqstore serve` (NameServer + Broker) with RocketMQ's default store sizes."""

    def __init__(self, flush: str, root: Path, store: list[str] = ()) -> None:
        self.flush = flush
        self.ns_port, self.broker_port = free_port(), free_broker_port()
        self.namesrv = f"127.0.0.1:{self.ns_port}"
        self.broker = f"127.0.0.1:{self.broker_port}"
        self.serve = ServeProcess(
            ["--data", str(root / f"data-{flush}"), "--namesrv-port", str(self.ns_port),
             "--broker-port", str(self.broker_port), "--http-port", "0", "--flush", flush],
            root / f"serve-{flush}.log",
            store_args=tuple(a for kv in store for a in ("--store", kv)),
            drop_env=("NAMESRV_ADDR",),
            start_timeout_s=30, stop_timeout_s=20).start()

    def stop(self) -> None:
        self.serve.stop()

    def cpu_s(self) -> float:
        return cpu_seconds(self.serve.pid)

    def create_topic(self, topic: str, queues: int = 4) -> None:
        create_topic(self.broker, topic, queues)
        wait_until(lambda: route(self.namesrv, topic), 10, what=f"route of {topic}")

    def max_offsets(self, topic: str, queues: int = 4) -> int:
        return sum(max_offset(self.broker, topic, q) for q in range(queues))


class FloorServer:
    """server_floor.py: frames appended to a file, group fdatasync, SUCCESS answers; no broker."""

    def __init__(self, flush: str, root: Path) -> None:
        workdir = root / f"floor-{flush}"
        workdir.mkdir()
        self.namesrv, port = "", free_port()
        self.broker = f"127.0.0.1:{port}"
        self.log = open(workdir / "floor.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("server_floor.py")), "--port", str(port),
             "--dir", str(workdir), "--flush", flush], stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(lambda: self.proc.poll() is not None or b"listening" in
                   (workdir / "floor.log").read_bytes(), 30, what="the floor server")
        if self.proc.poll() is not None:
            raise RuntimeError(f"floor server exited: {(workdir / 'floor.log').read_text()}")

    def stop(self) -> None:
        self.proc.terminate()
        reap(self.proc, 10)
        self.log.close()

    def cpu_s(self) -> float:
        return cpu_seconds(self.proc.pid)

    def create_topic(self, topic: str, queues: int = 4) -> None:
        pass  # no topics: every frame goes to the one file

    def max_offsets(self, topic: str, queues: int = 4) -> int | None:
        return None  # nothing to check acknowledged sends against


class CFloorServer(FloorServer):
    """server_floor.c, built here with gcc: the floor's work with no Python and no event loop
    library (one thread, epoll, one write per read), for CPU per send against the broker's."""

    def __init__(self, flush: str, root: Path) -> None:
        workdir = root / f"cfloor-{flush}"
        workdir.mkdir()
        exe = workdir / "server_floor"
        subprocess.run(["gcc", "-O2", "-std=c11", "-D_GNU_SOURCE", "-o", str(exe),
                        str(Path(__file__).with_name("server_floor.c"))], check=True, timeout=120)
        self.namesrv, port = "", free_port()
        self.broker = f"127.0.0.1:{port}"
        self.log = open(workdir / "cfloor.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen([str(exe), str(port), str(workdir / "floor.log"), flush],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(lambda: self.proc.poll() is not None or b"listening" in
                   (workdir / "cfloor.log").read_bytes(), 30, what="the C floor server")
        if self.proc.poll() is not None:
            raise RuntimeError(f"C floor server exited: {(workdir / 'cfloor.log').read_text()}")


def server_faults(server) -> float:
    """The server process's minor page faults so far (every server class keeps its process
    as .serve or .proc)."""
    serve = getattr(server, "serve", None)
    return minor_faults(serve.pid if serve is not None else server.proc.pid)


def reap(proc: subprocess.Popen, timeout_s: float) -> None:
    """Wait for ``proc`` to end, killing it if it overruns ``timeout_s``."""
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout_s)


_seq = iter(range(1, 1 << 30))


class Worker:
    """This script with --worker SPEC; stdout lines are JSON events, stdin takes go/stop."""

    def __init__(self, spec: dict, workdir: Path) -> None:
        env = dict(os.environ)
        env.pop("NAMESRV_ADDR", None)
        env["HOME"] = str(workdir)  # the C++ client logs under $HOME
        self.err = open(workdir / f"worker-{next(_seq)}.err", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker", json.dumps(spec)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.err, env=env, text=True, bufsize=1)
        self.events: queue.Queue = queue.Queue()
        self.seen: list[dict] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                try:
                    self.events.put(json.loads(line))
                except json.JSONDecodeError:
                    pass
        self.events.put({"eof": True})

    def wait_for(self, key: str, timeout_s: float) -> dict:
        deadline = time.monotonic() + timeout_s
        for e in self.seen:
            if key in e:
                return e
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"worker: no {key!r} in {timeout_s} s; "
                                   f"{Path(self.err.name).read_text(errors='replace')[-2000:]}")
            try:
                e = self.events.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append(e)
            if key in e:
                return e
            if "error" in e or "eof" in e:
                raise RuntimeError(f"worker failed waiting for {key!r}: {e}; "
                                   f"{Path(self.err.name).read_text(errors='replace')[-2000:]}")

    def say(self, word: str) -> None:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(word + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass

    def close(self) -> None:
        reap(self.proc, 5)
        self.err.close()


class Bench:
    def __init__(self, args, server: Server, workdir: Path) -> None:
        self.args = args
        self.server = server
        self.workdir = workdir
        self.seq = 0

    def spec(self, client: str, kind: str, topic: str, **extra) -> dict:
        self.seq += 1
        return {"client": client, "kind": kind, "topic": topic, "namesrv": self.server.namesrv,
                "broker": self.server.broker, "group": f"G{kind}{self.seq}",
                "duration": self.args.duration, **extra}

    def topic(self, name: str) -> str:
        self.seq += 1
        topic = f"{name}{self.seq}"
        self.server.create_topic(topic)
        return topic

    def run_workers(self, specs: list[dict]) -> list[dict]:
        workers = [Worker(s, self.workdir) for s in specs]
        try:
            for w in workers:
                w.wait_for("ready", 60)
            cpu0, t0 = self.server.cpu_s(), time.monotonic()
            faults0 = server_faults(self.server)
            client_cpu0 = [cpu_seconds(w.proc.pid) for w in workers]
            for w in workers:
                w.say("go")
            results = [w.wait_for("result", self.args.duration + 60)["result"] for w in workers]
            client_cpu = sum(cpu_seconds(w.proc.pid) - c0
                             for w, c0 in zip(workers, client_cpu0, strict=True))
            self.last_cpu = (self.server.cpu_s() - cpu0, time.monotonic() - t0, client_cpu)
            self.last_faults = server_faults(self.server) - faults0
            return results
        finally:
            for w in workers:
                w.say("stop")
                w.close()

    def sends(self, client: str, producers: int, kind: str = "send", **extra) -> dict:
        topic = self.topic("BenchSend")
        results = self.run_workers([self.spec(client, kind, topic, **extra)
                                    for _ in range(producers)])
        n = sum(r["n"] for r in results)
        span = max(r["t1"] for r in results) - min(r["t0"] for r in results)
        errors = sum(r["errors"] for r in results)
        cpu, wall, client_cpu = self.last_cpu
        # Every acknowledged message must be in the topic (warm-up sends come on top).
        stored = self.server.max_offsets(topic)
        if stored is not None and stored < n:
            raise RuntimeError(f"{n} sends acknowledged but only {stored} messages stored")
        return {"rate": n / span, "n": n, "seconds": span, "errors": errors, "stored": stored,
                "server_cpu_pct": round(100 * cpu / wall, 1),
                "server_us_per_msg": round(1e6 * cpu / max(n, 1), 1),
                "server_faults_per_msg": round(self.last_faults / max(n, 1), 2),
                "client_us_per_msg": round(1e6 * client_cpu / max(n, 1), 1)}

    def consume(self, client: str) -> dict:
        topic = self.topic("BenchConsume")
        count = self.args.consume_count
        # pre-fill with our client's batches, in count-bounded chunks
        filler = self.spec("redis" if client == "redis" else "aio", "batch", topic,
                           batch_size=128, count=count, duration=120)
        self.run_workers([filler])
        have = self.server.max_offsets(topic)
        w = Worker(self.spec(client, "consume", topic, expect=have, timeout=120,
                             consume_batch=self.args.consume_batch), self.workdir)
        try:
            r = w.wait_for("result", 150)["result"]
        finally:
            w.say("stop")
            w.close()
        span = (r["t1"] - r["t0"]) if r["t0"] is not None else float("nan")
        return {"rate": r["n"] / span if span else 0.0, "n": r["n"], "expected": have,
                "seconds": span}

    def e2e(self, client: str) -> dict:
        topic = self.topic("BenchE2E")
        expect_file = self.workdir / f"expect-{self.seq}"
        consumer = Worker(self.spec(client, "e2e_consume", topic, timeout=self.args.duration + 90,
                                    stop_expect_file=str(expect_file)), self.workdir)
        producer = None
        try:
            consumer.wait_for("started", 60)
            producer = Worker(self.spec(client, "e2e", topic), self.workdir)
            producer.wait_for("ready", 60)
            consumer.wait_for("warm", 60)  # rebalanced: warm-up messages from every queue
            producer.say("go")
            pr = producer.wait_for("result", self.args.duration + 60)["result"]
            expect_file.write_text(str(pr["n"] - pr["errors"]))
            consumer.say("stop")
            cr = consumer.wait_for("result", 30)["result"]
        finally:
            for w in (producer, consumer):
                if w is not None:
                    w.say("stop")
                    w.close()
        lat = cr.get("latency_ms", {"n": 0})
        return {"p50": lat.get("p50"), "p99": lat.get("p99"), "max": lat.get("max"),
                "received": lat["n"], "sent": pr["n"], "errors": pr["errors"],
                "rate": pr["n"] / (pr["t1"] - pr["t0"])}


CLIENT_NAMES = ("aio", "raw", "floor", "cfloor", "cpp", "redis")
SCENARIOS = ["sync_x1", "sync_x4", "sync_x4c", "async64", "batch", "batch_inflight", "consume",
             "e2e"]


def run_mode(args, flush: str, root: Path, clients: list[str], log) -> dict:
    server = Server(flush, root, args.store)
    peers: dict = {}  # servers of the clients that do not talk to the broker
    out: dict = {c: {s: [] for s in SCENARIOS} for c in clients}
    try:
        if "floor" in clients:
            peers["floor"] = FloorServer(flush, root)
        if "cfloor" in clients:
            peers["cfloor"] = CFloorServer(flush, root)
        if "redis" in clients:
            peers["redis"] = RedisServer(flush, root, free_port())
        benches = {c: Bench(args, peers.get(c, server), root) for c in clients}
        for rep in range(args.repeat):
            for client in clients:
                b = benches[client]
                sends_only = client in ("raw", "floor", "cfloor")
                for name, fn in (
                        ("sync_x1", lambda c=client: b.sends(c, 1)),
                        ("sync_x4", lambda c=client: b.sends(c, 4)),
                        ("sync_x4c", lambda c=client: None if c in ("cpp", "redis") else b.sends(
                            c, 1, "conns", conns=4)),
                        ("async64", lambda c=client: b.sends(
                            c, 1, "async", inflight=args.inflight)),
                        ("batch", lambda c=client: None if sends_only else b.sends(
                            c, 1, "batch", batch_size=args.cpp_batch_size if c == "cpp"
                            else args.batch_size)),
                        ("batch_inflight", lambda c=client: None if c != "aio" else b.sends(
                            c, 1, "batch_async", batch_size=args.batch_size,
                            inflight=args.batch_inflight)),
                        ("consume", lambda c=client: None if sends_only else b.consume(c)),
                        ("e2e", lambda c=client: None if sends_only else b.e2e(c))):
                    if name not in args.scenarios:
                        continue
                    t = time.monotonic()
                    try:
                        r = fn()
                    except Exception as exc:  # noqa: BLE001 - shown in the table
                        r = {"error": str(exc)[:500]}
                    if r is not None:  # None: the client has no such mode
                        out[client][name].append(r)
                    log(f"[{flush} flush, {client}, run {rep + 1}] {name}: "
                        f"{json.dumps(r)} ({time.monotonic() - t:.1f} s)")
    finally:
        server.stop()
        for peer in peers.values():
            peer.stop()
    return out


def best(runs: list[dict], key: str, lower: bool = False):
    vals = [r[key] for r in runs if r.get(key) is not None and "error" not in r]
    if not vals:
        return None, None
    return (min(vals) if lower else max(vals)), (min(vals), max(vals))


RATIO_SCENARIOS = (("sync_x1", "sync x1"), ("sync_x4", "sync x4 procs"),
                   ("async64", "async x64"), ("batch", "batch"), ("consume", "consume"))


def redis_ratios(results: dict, flushes: list[str]):
    """Our Producer and PushConsumer over Redis Streams with redis-py, same run: rates as
    ours / Redis (best runs), e2e p99 and CPU per message (client, server) side by side."""
    from rich.table import Table

    table = Table(title="ours (asyncio client) / Redis Streams (redis-py), same run; "
                        "SYNC_FLUSH vs appendfsync always, ASYNC_FLUSH vs everysec")
    table.add_column("flush")
    for _, label in RATIO_SCENARIOS:
        table.add_column(label, justify="right")
    table.add_column("e2e p99 ms ours / Redis", justify="right")
    table.add_column("CPU us/send sync x1, client ours / Redis", justify="right")
    table.add_column("server ours / Redis", justify="right")
    for flush in flushes:
        ours, peer = results[flush]["aio"], results[flush]["redis"]
        cells = []
        for key, _ in RATIO_SCENARIOS:
            a, _r = best(ours[key], "rate")
            b, _r = best(peer[key], "rate")
            cells.append(f"{a / b:.2f}" if a and b else "-")
        p99 = [best(r["e2e"], "p99", lower=True)[0] for r in (ours, peer)]
        cpu = [[best(r["sync_x1"], k, lower=True)[0] for r in (ours, peer)]
               for k in ("client_us_per_msg", "server_us_per_msg")]

        def pair(v) -> str:
            return " / ".join("-" if x is None else f"{x:.1f}" for x in v)

        table.add_row(flush, *cells, pair(p99), pair(cpu[0]), pair(cpu[1]))
    return table


CPU_SCENARIOS = (("sync_x1", "sync x1"), ("sync_x4", "sync x4 procs"), ("async64", "async x64"))
SERVER_NAMES = {"aio": "rmqstore serve (our Producer)", "raw": "rmqstore serve (minimal client)",
                "floor": "Python floor (server_floor.py)", "cfloor": "C floor (server_floor.c)",
                "cpp": "rmqstore serve (C++ client)", "redis": "redis-server (redis-py)"}


def cpu_table(results: dict, flushes: list[str], clients: list[str]):
    """CPU microseconds per acknowledged send of the server process and of the clients'
    processes (user + system, all threads, /proc over the timed work), each server beside the
    others in the same run: what the machine allows a server (the floors, Redis) and what ours
    takes (lowest of the runs)."""
    from rich.table import Table

    table = Table(title="CPU us per send, server / client (process clocks over the timed work, "
                        "lowest of the runs), (server minor page faults per send)")
    table.add_column("flush")
    table.add_column("server (client)")
    for _, label in CPU_SCENARIOS:
        table.add_column(label, justify="right")
    for flush in flushes:
        for client in clients:
            cells = []
            for key, _ in CPU_SCENARIOS:
                runs = results[flush][client][key]
                server = best(runs, "server_us_per_msg", lower=True)[0]
                own = best(runs, "client_us_per_msg", lower=True)[0]
                faults = best(runs, "server_faults_per_msg", lower=True)[0]
                cells.append("-" if server is None else f"{server:.1f} / {own:.1f}"
                             + ("" if faults is None else f" ({faults:.1f}f)"))
            table.add_row(flush, SERVER_NAMES[client], *cells)
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flush", choices=["async", "sync"], action="append",
                    help="flush mode(s) to run; default both")
    ap.add_argument("--duration", type=float, default=3.0, help="seconds per load loop")
    ap.add_argument("--repeat", type=int, default=1, help="runs per case; the best is shown")
    ap.add_argument("--clients", default="aio,raw,floor,cfloor,cpp,redis",
                    help="aio (our Producer and PushConsumer), raw (a minimal asyncio client on "
                         "our remoting layer: sends only), floor (that client against "
                         "server_floor.py: no broker, only append + group fdatasync), cfloor "
                         "(that client against server_floor.c: the same in C, built with gcc), "
                         "cpp "
                         "(PyPI rocketmq), redis (Redis Streams with redis-py against Debian's "
                         "redis-server, AOF fsync always / everysec for sync / async flush)")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--inflight", type=int, default=64,
                    help="most unanswered sends of the async64 scenario")
    ap.add_argument("--batch-size", type=int, default=128, help="messages per batch, asyncio")
    ap.add_argument("--cpp-batch-size", type=int, default=16,
                    help="messages per batch, C++ (it refuses batch bodies over 4 KiB)")
    ap.add_argument("--consume-count", type=int, default=100_000)
    ap.add_argument("--batch-inflight", type=int, default=4,
                    help="batches in flight for the batch_inflight case (our client only: "
                         "the C++ binding has no asynchronous batch send)")
    ap.add_argument("--consume-batch", type=int, default=32,
                    help="consume_batch_size of our push consumer")
    ap.add_argument("--store", action="append", default=[], metavar="KEY=VALUE",
                    help="a StoreConfig setting for the broker's store (serve --store), e.g. "
                         "group_commit_delay_us=100; repeatable")
    ap.add_argument("--json", type=Path, help="write every run's figures here")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker_main(args.worker)
        return
    from rich.console import Console
    from rich.table import Table

    flushes = args.flush or ["async", "sync"]
    clients = [c for c in args.clients.split(",") if c]
    args.scenarios = args.scenarios.split(",")
    unknown = [c for c in clients if c not in CLIENT_NAMES] + \
        [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        ap.error(f"unknown client or scenario: {', '.join(unknown)} (clients: "
                 f"{', '.join(CLIENT_NAMES)}; scenarios: {', '.join(SCENARIOS)})")
    import importlib.util
    if "cpp" in clients:
        if importlib.util.find_spec("rocketmq") is None:
            print("the `rocketmq` package (C++ client) is not installed: skipping it",
                  file=sys.stderr)
            clients.remove("cpp")
    if "cfloor" in clients and shutil.which("gcc") is None:
        print("gcc is not installed: skipping the C floor", file=sys.stderr)
        clients.remove("cfloor")
    if "redis" in clients and (redis_server_path() is None or importlib.util.find_spec(
            "redis") is None):
        print("redis-server or redis-py is not installed: skipping Redis Streams",
              file=sys.stderr)
        clients.remove("redis")
    err = Console(stderr=True)
    root = Path(tempfile.mkdtemp(prefix="rmq-server-bench-"))
    results: dict = {}
    try:
        for flush in flushes:
            results[flush] = run_mode(args, flush, root, clients, lambda s: err.print(s,
                                                                                        markup=False))
    finally:
        shutil.rmtree(root, ignore_errors=True)

    table = Table(title=f"rmqstore serve on loopback, {os.cpu_count()} CPUs, "
                        f"{args.duration:g} s per case, best of {args.repeat}")
    table.add_column("flush")
    table.add_column("client")
    for col in ("sync x1 /s", "sync x4 procs /s", "sync x4 conns /s", f"async x{args.inflight} /s",
                f"batch({args.batch_size}/{args.cpp_batch_size}) msg/s",
                f"batch x{args.batch_inflight} in flight msg/s", "consume msg/s",
                "e2e p50 ms", "e2e p99 ms"):
        table.add_column(col, justify="right")

    def cell(runs: list[dict], key: str = "rate", bound: float | None = None) -> str:
        """Best of the runs (highest rate, lowest ms), its range, green/red against `bound`."""
        ms = key != "rate"
        v, rng = best(runs, key, lower=ms)
        if v is None:
            return "[red]error[/]" if runs else "-"
        text = f"{v:.2f}" if ms else f"{v:,.0f}"
        if len(runs) > 1:
            text += f" ({rng[0]:.2f}-{rng[1]:.2f})" if ms else \
                f" ({rng[0] / 1000:,.1f}-{rng[1] / 1000:,.1f}k)"
        if bound is not None:
            text = f"[green]{text}[/]" if (v < bound if ms else v >= bound) else f"[red]{text}[/]"
        errors = sum(r.get("errors", 0) for r in runs)
        return text + (f" [red]{errors} err[/]" if errors else "")

    for flush in flushes:
        for client in clients:
            r = results[flush][client]
            table.add_row(flush, {"aio": "asyncio", "raw": "minimal asyncio",
                                  "floor": "floor (minimal asyncio, no broker)",
                                  "cfloor": "C floor (minimal asyncio, no broker)",
                                  "cpp": "C++", "redis": "Redis Streams (redis-py)"}[client],
                          cell(r["sync_x1"]),
                          cell(r["sync_x4"], bound=MINIMUMS.get((flush, "sync_x4"))),
                          cell(r["sync_x4c"], bound=MINIMUMS.get((flush, "sync_x4c"))),
                          cell(r["async64"]),
                          cell(r["batch"], bound=MINIMUMS.get((flush, "batch"))),
                          cell(r["batch_inflight"], bound=MINIMUMS.get((flush, "batch"))),
                          cell(r["consume"]),
                          cell(r["e2e"], "p50"),
                          cell(r["e2e"], "p99", E2E_P99_MAX_MS))
    Console(width=max(Console().width, 150)).print(table)
    Console().print("minimums: async flush sync x4 >= 20,000/s, batch >= 200,000 msg/s;"
                    " sync flush sync x4 >= 10,000/s; e2e p99 < 5 ms at 1,000 msg/s. "
                    "Ranges in parentheses: min-max over the runs.")
    Console(width=max(Console().width, 150)).print(cpu_table(results, flushes, clients))
    if "redis" in clients and "aio" in clients:
        Console(width=max(Console().width, 150)).print(redis_ratios(results, flushes))
    if args.json:
        args.json.write_text(json.dumps({
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "platform": platform.platform()},
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                     if k != "worker"},
            "minimums": {f"{f}/{m}": v for (f, m), v in MINIMUMS.items()}
            | {"e2e_p99_ms_max": E2E_P99_MAX_MS},
            "results": results}, indent=2))


if __name__ == "__main__":
    main()
