"""Orderly consumption: each queue is consumed by one member at a time, in offset order, under
a lock held on the broker. Messages sent with the same sharding key stay in order.

    python examples/push_orderly.py
"""

import asyncio

from rmqstore.client import ConsumeFromWhere, OrderlyStatus, PushConsumer


async def handle(msgs) -> OrderlyStatus:
    for m in msgs:
        print(m.queue, m.queue_offset, m.body)
    return OrderlyStatus.SUCCESS  # SUSPEND_CURRENT_QUEUE_A_MOMENT retries the same batch


async def main() -> None:
    consumer = PushConsumer("ExampleOrderlyGroup", namesrv="127.0.0.1:9876",
                            consume_from_where=ConsumeFromWhere.FIRST_OFFSET)
    consumer.subscribe("ExampleTopic", "TagB")
    consumer.on_message_orderly(handle)
    async with consumer:
        await asyncio.sleep(30)


asyncio.run(main())
