"""Broadcasting: every running copy gets every message; offsets live in a local file.

    python examples/push_broadcasting.py
"""

import asyncio

from rmqstore.client import ConsumeStatus, MessageModel, PushConsumer


def handle(msgs):  # a plain function runs in the consumer's thread pool
    for m in msgs:
        print("broadcast", m.msg_id, m.body[:40])
    return ConsumeStatus.SUCCESS


async def main() -> None:
    consumer = PushConsumer("ExampleBroadcastGroup", namesrv="127.0.0.1:9876",
                            message_model=MessageModel.BROADCASTING,
                            offset_store_dir="/tmp/rmq-example-offsets")
    consumer.subscribe("ExampleTopic")
    consumer.on_message(handle)
    async with consumer:
        await asyncio.sleep(30)


asyncio.run(main())
