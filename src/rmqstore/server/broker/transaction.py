"""Transactional messages on the broker: what Broker.start wires (TransactionalMessageService,
EndTransactionProcessor and TransactionalMessageCheckService of rocketmq-all-4.9.7).

* transaction_bridge.py: half / op / final messages in the store, and the send rewrite that
  turns a TRAN_MSG=true send into a half message;
* transaction_ops.py: which half messages are ended, and the persisted scan progress;
* transaction_end.py: END_TRANSACTION (commit, rollback);
* transaction_check.py: the periodic CHECK_TRANSACTION_STATE to producers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ...store import MessageStore
from ..remoting.dispatch import Dispatcher
from .clients import ClientManager
from .config import BrokerConfig
from .longpoll import ArrivalWaiters
from .send import Placement
from .topics import BrokerTopics
from .transaction_bridge import PROP_TRAN_MSG, TransactionalMessageBridge
from .transaction_check import TransactionalMessageCheckService
from .transaction_end import EndTransactionProcessor
from .transaction_ops import OpLedger


class Transactions:
    """Made in Broker.start once the store is open; event-loop thread only."""

    REWRITE_PROPS = (PROP_TRAN_MSG,)  # what rewrite looks at (SendProcessor.add_rewrite)

    def __init__(self, config: BrokerConfig, store: MessageStore, topics: BrokerTopics,
                 clients: ClientManager, arrivals: ArrivalWaiters,
                 spawn: Callable[[Awaitable[None]], None]) -> None:
        self.bridge = TransactionalMessageBridge(store, topics)
        self.bridge.ensure_topics()
        self.ledger = OpLedger(self.bridge)
        self.ledger.load()
        self.end = EndTransactionProcessor(config, self.bridge, self.ledger, arrivals)
        self.check = TransactionalMessageCheckService(config, self.bridge, self.ledger, clients,
                                                      spawn)

    def rewrite(self, place: Placement, props: dict[str, str]) -> Placement | None:
        """For SendProcessor.add_rewrite: half messages go to the half topic."""
        return self.bridge.rewrite(place, props)

    def register_handlers(self, dispatcher: Dispatcher) -> None:
        self.end.register_handlers(dispatcher)

    async def run(self) -> None:
        """The check loop; cancelled at broker stop."""
        await self.check.run()
