"""Lite pull: the application polls, seeks and commits.

    python examples/lite_pull.py
"""

import asyncio
import time

from rmqstore.client import ConsumeFromWhere, LitePullConsumer


async def main() -> None:
    consumer = LitePullConsumer("ExampleLitePullGroup", namesrv="127.0.0.1:9876",
                                consume_from_where=ConsumeFromWhere.FIRST_OFFSET,
                                auto_commit=False)
    async with consumer:
        queues = await consumer.fetch_message_queues("ExampleTopic")
        await consumer.assign(queues)  # or consumer.subscribe("ExampleTopic") before start
        for _ in range(5):
            for m in await consumer.poll(timeout_s=1.0):
                print(m.queue, m.queue_offset, m.body[:40])
        await consumer.commit()
        # read the last minute again
        for mq in queues:
            await consumer.seek_to_timestamp(mq, int(time.time() * 1000) - 60_000)
        print("again:", len(await consumer.poll(timeout_s=1.0)), "messages")


asyncio.run(main())
