"""TransactionProducer: transactional messages (TransactionMQProducer and
DefaultMQProducerImpl.sendMessageInTransaction / checkTransactionState of rocketmq-all-4.9.7).

``send_in_transaction(msg, arg)``:

1. sends msg as a *half* message (properties TRAN_MSG=true and PGROUP=<group>, sysFlag 0x4):
   the broker stores it but no consumer sees it yet;
2. runs the listener's ``execute_local_transaction(msg, arg)`` (plain or async function; a plain
   one runs in a worker thread) which returns a LocalTransactionState (None or an exception
   counts as UNKNOWN);
3. sends END_TRANSACTION (37, oneway) with that state: COMMIT delivers the message, ROLLBACK
   drops it, UNKNOWN leaves it to the broker's check.

The broker asks about half messages left unresolved past its transactionTimeOut with
CHECK_TRANSACTION_STATE (39) on this producer's connection; ``check_local_transaction(msg)``
answers, and its state is sent back as END_TRANSACTION with fromTransactionCheck=true.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from ..net import RequestContext
from ..protocol import RemotingCommand, RequestCode
from ..protocol.header_codec import decode_header, encode_header
from ..protocol.headers import CheckTransactionStateRequestHeader, EndTransactionRequestHeader
from ..protocol.message import parse_msg_id
from .message import PROP_UNIQ_KEY, Message, MessageExt, decode_messages
from .producer import Producer, SendResult, SendStatus

log = logging.getLogger(__name__)

PROPERTY_TRANSACTION_PREPARED = "TRAN_MSG"
PROPERTY_PRODUCER_GROUP = "PGROUP"
PROPERTY_CHECK_IMMUNITY_TIME_IN_SECONDS = "CHECK_IMMUNITY_TIME_IN_SECONDS"
END_TRANSACTION_TIMEOUT_S = 3.0


class LocalTransactionState(Enum):
    """What the local transaction decided; the values are END_TRANSACTION's commitOrRollback."""

    COMMIT = 0x8  # Java COMMIT_MESSAGE
    ROLLBACK = 0xC  # ROLLBACK_MESSAGE
    UNKNOWN = 0x0  # UNKNOW


class TransactionListener(Protocol):
    """Both methods may be plain or ``async``; plain ones run in a worker thread."""

    def execute_local_transaction(self, msg: Message, arg: Any) -> Any:
        """Run the local transaction for the half message just stored; return its state."""

    def check_local_transaction(self, msg: MessageExt) -> Any:
        """The broker asks: how did the local transaction of msg end?"""


@dataclass(frozen=True, slots=True)
class TransactionSendResult(SendResult):
    """The half message's SendResult plus what the local transaction decided."""

    local_state: LocalTransactionState = LocalTransactionState.UNKNOWN


class TransactionProducer(Producer):
    """A Producer that also sends transactional messages. ``listener`` is required for
    ``send_in_transaction`` and answers the broker's checks."""

    def __init__(self, group: str, namesrv: str | None = None, *,
                 listener: TransactionListener | None = None, **kwargs: Any) -> None:
        super().__init__(group, namesrv, **kwargs)
        self.listener = listener
        self._greeted: set[str] = set()
        self._transport.serve(RequestCode.CHECK_TRANSACTION_STATE, self._on_check)

    async def send_in_transaction(self, msg: Message, arg: Any = None, *,
                                  timeout_s: float | None = None) -> TransactionSendResult:
        """Send msg as a half message, run the local transaction, end it (see module doc).
        Raises what ``send`` raises if the half message was not stored."""
        if self.listener is None:
            raise ValueError("TransactionListener is null: pass listener= to TransactionProducer")
        half = dataclasses.replace(msg, delay_level=0, properties={
            **msg.properties, PROPERTY_TRANSACTION_PREPARED: "true",
            PROPERTY_PRODUCER_GROUP: self.group})
        half.properties.pop("DELAY", None)  # Java ignores a delay level on transactions
        result = await self.send(half, timeout_s=timeout_s)
        await self._greet(result)
        uniq = result.msg_id
        state, error = LocalTransactionState.ROLLBACK, None
        if result.status is SendStatus.SEND_OK:
            state, error = await _run_listener(self.listener.execute_local_transaction, half, arg)
        try:
            await self._end(result, state, error)
        except Exception as exc:  # noqa: BLE001 - the broker's check will ask instead (Java)
            log.warning("END_TRANSACTION of %s (%s) not sent: %s", uniq, state.name, exc)
        fields = {f.name: getattr(result, f.name) for f in dataclasses.fields(SendResult)}
        fields["transaction_id"] = uniq
        return TransactionSendResult(**fields, local_state=state)

    async def _greet(self, result: SendResult) -> None:
        """A heartbeat right after the first send to a broker, so that it can ask us about
        the transaction before the heartbeat timer would have introduced us."""
        addr = self.routes.broker_addr(result.queue.broker_name)
        if addr is not None and addr not in self._greeted:
            self._greeted.add(addr)
            await self.heartbeat()

    async def _end(self, result: SendResult, state: LocalTransactionState,
                   error: BaseException | None) -> None:
        """endTransaction: END_TRANSACTION oneway to the broker that stored the half message."""
        _, commitlog_offset = parse_msg_id(result.offset_msg_id)
        header = EndTransactionRequestHeader(
            producer_group=self.group, tran_state_table_offset=result.queue_offset,
            commit_log_offset=commitlog_offset, commit_or_rollback=state.value,
            from_transaction_check=False, msg_id=result.msg_id, transaction_id=result.msg_id)
        request = self._transport.request(RequestCode.END_TRANSACTION, encode_header(header))
        if error is not None:
            request.remark = f"executeLocalTransactionBranch exception: {error!r}"
        addr = await self._broker_addr(result.queue)
        await self._transport.invoke_oneway(addr, request, END_TRANSACTION_TIMEOUT_S)

    async def _on_check(self, request: RemotingCommand, ctx: RequestContext) -> None:
        """CHECK_TRANSACTION_STATE from a broker: ask the listener, answer on that connection."""
        header = decode_header(CheckTransactionStateRequestHeader, request.ext_fields)
        msgs = decode_messages(request.body)
        if not msgs:
            log.warning("%s: CHECK_TRANSACTION_STATE without a message", ctx.peer)
            return
        msg = msgs[0]
        group = msg.properties.get(PROPERTY_PRODUCER_GROUP)
        if group != self.group:
            log.warning("%s: check for group %s reached producer of %s", ctx.peer, group,
                        self.group)
            return
        if self.listener is None:
            log.warning("%s: transaction check of %s but no listener", ctx.peer, msg.msg_id)
            return
        state, error = await _run_listener(self.listener.check_local_transaction, msg)
        end = EndTransactionRequestHeader(
            producer_group=self.group, tran_state_table_offset=msg.queue_offset,
            commit_log_offset=msg.commitlog_offset, commit_or_rollback=state.value,
            from_transaction_check=True,
            msg_id=msg.properties.get(PROP_UNIQ_KEY) or msg.offset_msg_id,
            transaction_id=header.transaction_id)
        reply = self._transport.request(RequestCode.END_TRANSACTION, encode_header(end))
        if error is not None:
            reply.remark = f"checkLocalTransactionState exception: {error!r}"
        try:
            await ctx.channel.invoke_oneway(reply, END_TRANSACTION_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - the broker asks again next round
            log.info("%s: END_TRANSACTION after check not sent: %s", ctx.peer, exc)
        return

    async def heartbeat(self) -> None:
        await super().heartbeat()
        self._greeted.update(self.routes.master_addrs())


async def _run_listener(fn: Any, *args: Any) -> tuple[LocalTransactionState, BaseException | None]:
    """Call a listener method (async, or plain in a thread); anything but a state is UNKNOWN."""
    try:
        if inspect.iscoroutinefunction(fn):
            state = await fn(*args)
        else:
            state = await asyncio.to_thread(fn, *args)
            if inspect.isawaitable(state):
                state = await state
    except Exception as exc:  # noqa: BLE001 - Java logs it and reports UNKNOW
        log.warning("transaction listener %s failed: %r", getattr(fn, "__name__", fn), exc)
        return LocalTransactionState.UNKNOWN, exc
    if isinstance(state, LocalTransactionState):
        return state, None
    if state is not None:
        log.warning("transaction listener returned %r, not a LocalTransactionState", state)
    return LocalTransactionState.UNKNOWN, None


__all__ = ["LocalTransactionState", "TransactionListener", "TransactionProducer",
           "TransactionSendResult"]
