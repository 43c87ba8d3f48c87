"""Delayed and timed messages: one by delay level, two by delivery time, consumed back on time.

Start a server first:  rmqstore serve --data /tmp/rmq   (NameServer on 127.0.0.1:9876)
Then:                  python examples/delayed_and_timed.py [namesrv]

A delay level picks a step of the broker's ladder (messageDelayLevel; level 1 is 1 s by default).
``deliver_time_ms`` (an epoch-ms time) and ``delay_ms`` (from the broker's receipt) ask for any
time up to timerMaxDelaySec ahead; each message is invisible to consumers until then.
"""

import asyncio
import sys
import time

from rmqstore.client import ConsumeFromWhere, Message, Producer, PushConsumer

NAMESRV = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9876"
TOPIC = "ExampleDelayTopic"


def now_ms() -> int:
    return int(time.time() * 1000)


async def main() -> None:
    consumer = PushConsumer("ExampleDelayGroup", namesrv=NAMESRV,
                            consume_from_where=ConsumeFromWhere.FIRST_OFFSET)
    consumer.subscribe(TOPIC)
    async with Producer("ExampleDelayProducer", namesrv=NAMESRV) as producer:
        await producer.create_topic(TOPIC, 4)
        sent = now_ms()
        # "due" is ours, only to print how late each one arrived
        await producer.send(Message(TOPIC, b"level 1", delay_level=1,
                                    properties={"due": str(sent + 1000)}))
        await producer.send(Message(TOPIC, b"at a time", deliver_time_ms=sent + 2000,
                                    properties={"due": str(sent + 2000)}))
        await producer.send(Message(TOPIC, b"after 1.5 s", delay_ms=1500,
                                    properties={"due": str(sent + 1500)}))
        print("sent 3 messages; none is visible yet")

    async with consumer:
        got = 0
        async with asyncio.timeout(30):  # bounded: a broker without timers never delivers them
            async for m in consumer:
                if "due" not in m.properties:
                    continue  # left from an earlier run of another example
                late = now_ms() - int(m.properties["due"])
                print(f"{m.body.decode():12} arrived {late:+5d} ms after its time")
                got += 1
                if got == 3:
                    break


asyncio.run(main())
