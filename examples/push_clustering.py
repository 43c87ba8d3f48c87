"""Consume in clustering mode: run this twice and the queues are shared between both processes.

    rmqstore serve --data /tmp/rmq &  python examples/producer.py
    python examples/push_clustering.py
"""

import asyncio

from rmqstore.client import ConsumeFromWhere, ConsumeStatus, MessageExt, PushConsumer


async def handle(msgs: list[MessageExt]) -> ConsumeStatus:
    for m in msgs:
        print(m.queue, m.queue_offset, m.tags, m.body[:40])
    return ConsumeStatus.SUCCESS  # RECONSUME_LATER delivers the messages again later


async def main() -> None:
    consumer = PushConsumer("ExampleConsumerGroup", namesrv="127.0.0.1:9876",
                            consume_from_where=ConsumeFromWhere.FIRST_OFFSET, consume_batch_size=4)
    consumer.subscribe("ExampleTopic", "TagA || TagB")
    consumer.on_message(handle)
    async with consumer:
        await asyncio.sleep(30)


asyncio.run(main())
