"""One scenario of the official RocketMQ C++ client (PyPI `rocketmq` 0.4.4 = rocketmq-client-cpp
1.2.4), run as its own process by test_cpp_client.py so that the client's threads never outlive
a test:  python cpp_client.py SPEC.json

Every event is one JSON line on stdout, flushed at once, so that the test can follow a running
client (consumers run until their stop file appears or max_seconds pass). Bodies travel as hex.
The binding hands bodies over as C strings, so bodies must not contain NUL bytes.

Specs (keys beyond cmd/namesrv/credentials are per command; credentials [access key, secret key]
sign every request, set_session_credentials with the channel "ALIYUN"):
  produce: group, topic, mode (sync|oneway|orderly|batch|steps), messages [{body, tags, keys, props,
           shard, delay (set_delay_time_level)}], batch_size, pause_after + go_file (send the first
           N, print "paused", wait for go_file, send the rest); mode "steps" sends steps [{mode,
           messages, batch_size}] in turn with one producer, the event index i counting across steps
  push:    group, topic, expr, model (clustering|broadcasting), orderly, props (names to
           report), stop_file, max_seconds, instance, reconsume_later (answer every message
           with RECONSUME_LATER), threads and sleep_ms (a slow consumer: that many consuming
           threads, each message taking sleep_ms)
  pull:    group, topic, expr, props
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

from rocketmq.client import Message, MessageModel, Producer, PullConsumer, PushConsumer

_out_lock = threading.Lock()


def emit(**event: object) -> None:
    with _out_lock:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()


def make_message(topic: str, spec: dict) -> Message:
    msg = Message(topic)
    if spec.get("keys"):
        msg.set_keys(spec["keys"])
    if spec.get("tags"):
        msg.set_tags(spec["tags"])
    for key, value in (spec.get("props") or {}).items():
        msg.set_property(key, value)
    if spec.get("delay"):
        msg.set_delay_time_level(spec["delay"])
    msg.set_body(bytes.fromhex(spec["body"]))
    return msg


def describe(msg, props: list[str]) -> dict:
    return {
        "topic": msg.topic,
        "tags": (msg.tags or b"").decode(),
        "keys": (msg.keys or b"").decode(),
        "body": (msg.body or b"").hex(),
        "id": msg.id,
        "queue_id": msg.queue_id,
        "queue_offset": msg.queue_offset,
        "reconsume_times": msg.reconsume_times,
        "props": {p: (msg.get_property(p) or b"").decode() for p in props},
    }


def wait_file(path: str, max_seconds: float) -> None:
    deadline = time.monotonic() + max_seconds
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)


def sign_as(client, spec: dict) -> None:
    if spec.get("credentials"):
        access_key, secret_key = spec["credentials"]
        client.set_session_credentials(access_key, secret_key, "ALIYUN")


def produce(spec: dict) -> None:
    producer = Producer(spec["group"])
    producer.set_namesrv_addr(spec["namesrv"])
    sign_as(producer, spec)
    producer.start()
    try:
        if spec["mode"] == "steps":
            base = 0
            for step in spec["steps"]:
                send_all(producer, spec, step["mode"], step["messages"],
                         step.get("batch_size"), base)
                base += len(step["messages"])
        else:
            send_all(producer, spec, spec["mode"], spec["messages"], spec.get("batch_size"), 0)
    finally:
        producer.shutdown()


def send_all(producer, spec: dict, mode: str, messages: list[dict], batch_size: int | None,
             base: int) -> None:
    topic = spec["topic"]
    pause_after = spec.get("pause_after")
    if mode == "batch":
        size = batch_size or len(messages)
        for start in range(0, len(messages), size):
            chunk = [make_message(topic, m) for m in messages[start:start + size]]
            try:
                r = producer.send_batch(chunk)
                emit(i=base + start, n=len(chunk), status=int(r.status), msg_id=r.msg_id,
                     offset=r.offset)
            except Exception as exc:  # noqa: BLE001 - reported to the test
                emit(i=base + start, n=len(chunk), error=f"{type(exc).__name__}: {exc}")
        return
    for i, m in enumerate(messages):
        if pause_after is not None and i == pause_after:
            emit(paused=i)
            wait_file(spec["go_file"], spec.get("max_seconds", 60))
        msg = make_message(topic, m)
        t0 = time.monotonic()
        try:
            if mode == "sync":
                r = producer.send_sync(msg)
            elif mode == "orderly":
                r = producer.send_orderly(msg, m["shard"])
            elif mode == "oneway":
                producer.send_oneway(msg)
                emit(i=base + i)
                continue
            else:
                raise ValueError(f"unknown mode {mode}")
            emit(i=base + i, status=int(r.status), msg_id=r.msg_id, offset=r.offset,
                 seconds=round(time.monotonic() - t0, 3), at=time.time())
        except Exception as exc:  # noqa: BLE001 - reported to the test
            emit(i=base + i, error=f"{type(exc).__name__}: {exc}",
                 seconds=round(time.monotonic() - t0, 3), at=time.time())
        time.sleep(spec.get("interval_ms", 0) / 1000)  # a paced producer, through a failover


def push(spec: dict) -> None:
    model = (MessageModel.BROADCASTING if spec.get("model") == "broadcasting"
             else MessageModel.CLUSTERING)
    consumer = PushConsumer(spec["group"], orderly=bool(spec.get("orderly")),
                            message_model=model)
    consumer.set_namesrv_addr(spec["namesrv"])
    sign_as(consumer, spec)
    if spec.get("instance"):
        consumer.set_instance_name(spec["instance"])
    if spec.get("threads"):
        consumer.set_thread_count(spec["threads"])
    props = spec.get("props") or []

    sleep_s = spec.get("sleep_ms", 0) / 1000

    def on_message(msg) -> None:
        if sleep_s:
            time.sleep(sleep_s)
        emit(msg=describe(msg, props), thread=threading.get_ident(), at=time.monotonic())

    if spec.get("reconsume_later"):
        subscribe_reconsume_later(consumer, spec, props)
    else:
        consumer.subscribe(spec["topic"], on_message, expression=spec.get("expr") or "*")
    consumer.start()
    emit(started=True)
    wait_file(spec["stop_file"], spec.get("max_seconds", 60))
    consumer.shutdown()
    emit(stopped=True)


def subscribe_reconsume_later(consumer, spec: dict, props: list[str]) -> None:
    """The binding's subscribe() turns a listener's exception into a ctypes error (read as
    CONSUME_SUCCESS), so this registers a raw callback that answers RECONSUME_LATER."""
    from rocketmq.client import RecvMessage, dll, ffi_check
    from rocketmq.ffi import _CConsumeStatus

    def on_message(_consumer, msg) -> int:
        emit(msg=describe(RecvMessage(msg), props), thread=threading.get_ident())
        return _CConsumeStatus.RECONSUME_LATER.value

    ffi_check(dll.Subscribe(consumer._handle, spec["topic"].encode(),
                            (spec.get("expr") or "*").encode()))
    consumer._register_callback(on_message)


def pull(spec: dict) -> None:
    consumer = PullConsumer(spec["group"])
    consumer.set_namesrv_addr(spec["namesrv"])
    sign_as(consumer, spec)
    consumer.start()
    props = spec.get("props") or []
    try:
        for msg in consumer.pull(spec["topic"], expression=spec.get("expr") or "*"):
            emit(msg=describe(msg, props))
        # the binding keys its offsets "<topic>@<queueId>" (topic as bytes repr); keep the id
        emit(queues={key.rsplit("@", 1)[1]: offset
                     for key, offset in consumer.offset_table.items()})
    finally:
        consumer.shutdown()


def main() -> None:
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    {"produce": produce, "push": push, "pull": pull}[spec["cmd"]](spec)
    emit(done=True)
    sys.stdout.flush()
    # The binding's destructors run shutdown() again at interpreter exit; skip them.
    os._exit(0)


if __name__ == "__main__":
    main()
