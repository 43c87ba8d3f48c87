"""The blocking façade: no asyncio in sight (the loop runs in a background thread).

    python examples/sync_facade.py
"""

import threading

from rmqstore.client import ConsumeFromWhere, ConsumeStatus, Message
from rmqstore.client.sync import LitePullConsumer, Producer, PushConsumer

with Producer("ExampleSyncProducer", namesrv="127.0.0.1:9876") as producer:
    producer.create_topic("ExampleSyncTopic", 2)
    for i in range(5):
        print(producer.send(Message("ExampleSyncTopic", b"sync %d" % i)).msg_id)

done = threading.Event()
seen = []


def handle(msgs):
    seen.extend(msgs)
    if len(seen) >= 5:
        done.set()
    return ConsumeStatus.SUCCESS


consumer = PushConsumer("ExampleSyncGroup", namesrv="127.0.0.1:9876",
                        consume_from_where=ConsumeFromWhere.FIRST_OFFSET)
consumer.subscribe("ExampleSyncTopic")
consumer.on_message(handle)
with consumer:
    done.wait(10)
print("push consumer got", len(seen))

with LitePullConsumer("ExampleSyncLite", namesrv="127.0.0.1:9876",
                      consume_from_where=ConsumeFromWhere.FIRST_OFFSET) as lite:
    lite.assign(lite.fetch_message_queues("ExampleSyncTopic"))
    print("lite pull got", len(lite.poll(2.0)))
