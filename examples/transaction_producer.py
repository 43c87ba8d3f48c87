"""Transactional messages: a message becomes visible only if the local transaction commits.

Start a server first:  rmqstore serve --data /tmp/rmq   (NameServer on 127.0.0.1:9876)
Then:                  python examples/transaction_producer.py

Each order is sent as a half message; the listener then runs the local transaction (here: a
dict standing in for a database) and answers COMMIT, ROLLBACK or UNKNOWN. An UNKNOWN one is
left to the broker, which asks ``check_local_transaction`` once it is older than
transactionTimeOut (6 s) at its next check (every transactionCheckInterval, 60 s by default;
set ``transactionCheckInterval=5000`` in a broker.conf passed with ``-c`` to see it sooner).
"""

import asyncio

from rmqstore.client import LocalTransactionState, Message, MessageExt, TransactionProducer

orders: dict[str, str] = {}  # order id -> "paid" / "failed"; unknown while still running


class OrderListener:
    async def execute_local_transaction(self, msg: Message, order_id: str) -> LocalTransactionState:
        if order_id == "order-3":
            return LocalTransactionState.UNKNOWN  # still running: the broker will ask later
        orders[order_id] = "failed" if order_id == "order-2" else "paid"
        if orders[order_id] == "paid":
            return LocalTransactionState.COMMIT
        return LocalTransactionState.ROLLBACK

    async def check_local_transaction(self, msg: MessageExt) -> LocalTransactionState:
        order_id = msg.keys or ""
        orders.setdefault(order_id, "paid")  # it finished meanwhile
        print("broker asked about", order_id, "->", orders[order_id])
        if orders[order_id] == "paid":
            return LocalTransactionState.COMMIT
        return LocalTransactionState.ROLLBACK


async def main() -> None:
    async with TransactionProducer("ExampleTxGroup", namesrv="127.0.0.1:9876",
                                   listener=OrderListener()) as producer:
        await producer.create_topic("ExampleTxTopic", 4)
        for order_id in ("order-1", "order-2", "order-3"):
            msg = Message("ExampleTxTopic", f"pay {order_id}".encode(), keys=order_id)
            result = await producer.send_in_transaction(msg, order_id)
            print(order_id, result.local_state.name, "half message", result.msg_id)
        print("waiting up to 70 s for the broker to ask about order-3 ...")
        for _ in range(70):
            if "order-3" in orders:
                break
            await asyncio.sleep(1)


asyncio.run(main())
