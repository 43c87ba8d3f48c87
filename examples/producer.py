"""Send messages: one by one, oneway, a batch, and ordered by a sharding key.

Start a server first:  rmqstore serve --data /tmp/rmq   (NameServer on 127.0.0.1:9876)
Then:                  python examples/producer.py
"""

import asyncio

from rmqstore.client import Message, Producer


async def main() -> None:
    async with Producer("ExampleProducerGroup", namesrv="127.0.0.1:9876") as producer:
        await producer.create_topic("ExampleTopic", 4)
        result = await producer.send(Message("ExampleTopic", b"hello", tags="TagA", keys="order-1"))
        print("sent", result.msg_id, "at", result.queue, result.queue_offset, result.status.name)
        await producer.send_oneway(Message("ExampleTopic", b"fire and forget"))
        batch = await producer.send_batch([Message("ExampleTopic", b"b%d" % i) for i in range(10)])
        print("batch ids", batch.msg_id.split(",")[:3], "...")
        for step in ("created", "paid", "shipped"):
            r = await producer.send(Message("ExampleTopic", step.encode(), tags="TagB"),
                                    sharding_key="order-42")  # one queue per order: kept in order
            print(step, "->", r.queue)
        # 64 sends in flight at once
        results = await asyncio.gather(*(producer.send(Message("ExampleTopic", b"x%d" % i))
                                         for i in range(64)))
        print(len(results), "concurrent sends OK")


asyncio.run(main())
