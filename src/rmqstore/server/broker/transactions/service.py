"""Transactional messages on the broker: what Broker.start wires (TransactionalMessageService,
EndTransactionProcessor and TransactionalMessageCheckService of rocketmq-all-4.9.7).

* bridge.py: half / op / final messages in the store, and the send rewrite that
  turns a TRAN_MSG=true send into a half message;
* ops.py: which half messages are ended, and the persisted scan progress;
* end.py: END_TRANSACTION (commit, rollback);
* check.py: the periodic CHECK_TRANSACTION_STATE to producers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ....net.dispatch import Dispatcher
from ....set_aside import SetAside
from ....store import MessageStore
from ..config import BrokerConfig
from ..handlers.clients import ClientManager
from ..handlers.send import Placement
from ..longpoll import ArrivalWaiters
from ..stats.traffic import Traffic
from ..topics import BrokerTopics
from .bridge import PROP_TRAN_MSG, TransactionalMessageBridge
from .check import TransactionalMessageCheckService
from .end import EndTransactionProcessor
from .ops import OpLedger


class Transactions:
    """Made in Broker.start once the store is open; event-loop thread only."""

    REWRITE_PROPS = (PROP_TRAN_MSG,)  # what rewrite looks at (SendProcessor.add_rewrite)

    def __init__(self, config: BrokerConfig, store: MessageStore, topics: BrokerTopics,
                 clients: ClientManager, arrivals: ArrivalWaiters,
                 spawn: Callable[[Awaitable[None]], None], *,
                 traffic: Traffic | None = None) -> None:
        self.bridge = TransactionalMessageBridge(store, topics)
        self.bridge.ensure_topics()
        self.ledger = OpLedger(self.bridge)
        self.ledger.load()
        self.end = EndTransactionProcessor(config, self.bridge, self.ledger, arrivals, traffic)
        self.check = TransactionalMessageCheckService(config, self.bridge, self.ledger, clients,
                                                      spawn, SetAside(store, "transaction-check"))

    def rewrite(self, place: Placement, props: dict[str, str]) -> Placement | None:
        """For SendProcessor.add_rewrite: half messages go to the half topic."""
        return self.bridge.rewrite(place, props)

    def register_handlers(self, dispatcher: Dispatcher) -> None:
        self.end.register_handlers(dispatcher)

    async def run(self) -> None:
        """The check loop; cancelled at broker stop."""
        await self.check.run()
