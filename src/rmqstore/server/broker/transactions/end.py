"""END_TRANSACTION (37): a producer commits or rolls back a half message
(EndTransactionProcessor of rocketmq-all-4.9.7).

Commit (8) stores the half message in its real topic and queue (transaction type COMMIT), wakes
held pulls there, then writes the op record; rollback (12) writes only the op record; unknown (0)
changes nothing and leaves the message to the check. The half message named by commitLogOffset
must be in the half queue at tranStateTableOffset and belong to producerGroup (Java's
checkPrepareMessage remarks). Unlike Java, an END for a half message already ended or passed by
the check, or for any copy of a transaction (UNIQ_KEY) already ended, is refused (SYSTEM_ERROR
"the transaction has already ended"), so a commit is never delivered twice.
"""

from __future__ import annotations

import logging

from ....errors import StoreClosedError, WritesStoppedError
from ....message import Message
from ....net import RequestContext
from ....net.dispatch import Dispatcher
from ....protocol import RemotingCommand, RequestCode, ResponseCode
from ....protocol.header_codec import decode_header
from ....protocol.headers import EndTransactionRequestHeader
from ..config import MASTER_ID, BrokerConfig
from ..longpoll import ArrivalWaiters
from ..stats.traffic import Traffic
from .bridge import (
    HALF_TOPIC,
    PROP_PGROUP,
    PROP_REAL_TOPIC,
    PROP_UNIQ_KEY,
    TransactionalMessageBridge,
)
from .ops import OpLedger

log = logging.getLogger(__name__)

TRANSACTION_NOT_TYPE = 0  # MessageSysFlag: what commitOrRollback carries
TRANSACTION_COMMIT_TYPE = 0x8
TRANSACTION_ROLLBACK_TYPE = 0xC
_NAMES = {TRANSACTION_COMMIT_TYPE: "commit", TRANSACTION_ROLLBACK_TYPE: "rollback"}


class EndTransactionProcessor:
    def __init__(self, config: BrokerConfig, bridge: TransactionalMessageBridge, ledger: OpLedger,
                 arrivals: ArrivalWaiters, traffic: Traffic | None = None) -> None:
        self._config = config
        self._traffic = traffic or Traffic()
        self._bridge = bridge
        self._ledger = ledger
        self._arrivals = arrivals

    def register_handlers(self, dispatcher: Dispatcher) -> None:
        dispatcher.register(RequestCode.END_TRANSACTION, self.end_transaction)

    async def end_transaction(self, request: RemotingCommand,
                              ctx: RequestContext) -> RemotingCommand:
        h = decode_header(EndTransactionRequestHeader, request.ext_fields)
        if self._config.broker_id != MASTER_ID:
            return RemotingCommand.response(ResponseCode.SLAVE_NOT_AVAILABLE,
                                            "end transaction is forbidden on a slave")
        kind = h.commit_or_rollback
        if kind not in _NAMES:
            # Java answers nothing: the state is pending, the check will ask again.
            log.info("%s: transaction %s of %s still unknown (%s)%s", ctx.peer, h.transaction_id,
                     h.producer_group, "check" if h.from_transaction_check else "send",
                     f": {request.remark}" if request.remark else "")
            return RemotingCommand.response(ResponseCode.SUCCESS, "transaction state unknown")
        half = self._bridge.message_at(h.commit_log_offset)
        refused = _check_prepare(half, h)
        if refused is not None:
            log.warning("%s: END_TRANSACTION %s refused: %s", ctx.peer, h, refused)
            return RemotingCommand.response(ResponseCode.SYSTEM_ERROR, refused)
        assert half is not None
        key = half.properties.get(PROP_UNIQ_KEY)
        live = self._ledger.live_copy(h.tran_state_table_offset)
        if live is None or self._ledger.key_ended(key):
            log.info("%s: %s of transaction %s ignored: already ended", ctx.peer, _NAMES[kind],
                     h.transaction_id)
            return RemotingCommand.response(ResponseCode.SYSTEM_ERROR,
                                            "the transaction has already ended")
        queue_offset, commitlog_offset = live
        if commitlog_offset is not None:  # the check put a newer copy back: end that one
            half = self._bridge.message_at(commitlog_offset) or half
        try:
            if kind == TRANSACTION_COMMIT_TYPE:
                topic, queue_id, result = self._bridge.put_final(half)
                self._arrivals.notify(topic, queue_id)
                log.debug("transaction %s committed to %s/%d at %d", h.transaction_id, topic,
                          queue_id, result.queue_offset)
            op = self._bridge.put_op(queue_offset)
        except (WritesStoppedError, StoreClosedError) as exc:
            return RemotingCommand.response(ResponseCode.SERVICE_NOT_AVAILABLE, str(exc))
        except (KeyError, ValueError) as exc:  # no REAL_TOPIC/REAL_QID, bad topic, too large
            log.error("transaction %s: half message cannot be ended: %r", h.transaction_id, exc)
            return RemotingCommand.response(ResponseCode.SYSTEM_ERROR, f"bad half message: {exc!r}")
        self._ledger.record_op(op.queue_offset, queue_offset, key)
        self._traffic.transaction_ended(half.properties.get(PROP_REAL_TOPIC, half.topic),
                                        kind == TRANSACTION_COMMIT_TYPE)
        return RemotingCommand.response(ResponseCode.SUCCESS)


def _check_prepare(half: Message | None, h: EndTransactionRequestHeader) -> str | None:
    """checkPrepareMessage: None if half is the message the header names, else Java's remark."""
    if half is None or half.topic != HALF_TOPIC:
        return "Find prepared transaction message failed"
    if half.properties.get(PROP_PGROUP) != h.producer_group:
        return "The producer group wrong"
    if half.queue_offset != h.tran_state_table_offset:
        return "The transaction state table offset wrong"
    if half.commitlog_offset != h.commit_log_offset:
        return "The commit log offset wrong"
    return None
