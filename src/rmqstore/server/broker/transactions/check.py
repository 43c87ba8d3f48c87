"""The transaction check: half messages nobody ended are asked about
(TransactionalMessageCheckService, TransactionalMessageServiceImpl.check and
AbstractTransactionalMessageCheckListener of rocketmq-all-4.9.7).

Every transactionCheckInterval the half queue is scanned from its progress offset, in order:

* a half message an op record ended is passed, and so is an older copy of a transaction (same
  UNIQ_KEY) that is ended or was just asked about in this pass;
* one checked transactionCheckMax times already is parked in TRANS_CHECK_MAX_TIME_TOPIC;
* one stored after the scan began, or born less than transactionTimeOut ago (or its
  CHECK_IMMUNITY_TIME_IN_SECONDS), stops the scan: later ones are younger still;
* any other is put back at the tail of the half queue with TRANSACTION_CHECK_TIMES + 1, and its
  producer group (PGROUP) is sent CHECK_TRANSACTION_STATE (39, oneway) about the new copy on the
  channel of the producer heard from last. The producer answers with END_TRANSACTION.

A half message that cannot be handled (put back or parked: properties that no longer fit, a
body flagged compressed that does not inflate) is set aside in rmq_sys_set_aside
(set_aside.py), logged and counted, and the scan goes on; Java retries it every round.

Simplified from Java: a message with an immunity time is not checked before it; Java also
re-stores such a message early (TRAN_PREPARED_QUEUE_OFFSET), which changes nothing a producer sees.
A scan does not yield to the event loop, so no END_TRANSACTION sees it half done; it handles at
most SCAN_BATCH messages and the next scan follows at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from ....message import Message, PutResult
from ....net.dispatch import Channel
from ....protocol import RemotingCommand, RequestCode
from ....protocol.header_codec import encode_header
from ....protocol.headers import CheckTransactionStateRequestHeader
from ....set_aside import TRANSIENT, SetAside
from ..config import MASTER_ID, BrokerConfig
from ..handlers.clients import ClientManager
from .bridge import (
    HALF_TOPIC,
    PROP_CHECK_TIMES,
    PROP_IMMUNITY_S,
    PROP_PGROUP,
    PROP_REAL_QID,
    PROP_REAL_TOPIC,
    PROP_UNIQ_KEY,
    TransactionalMessageBridge,
    check_body,
)
from .ops import OpLedger

log = logging.getLogger(__name__)

SCAN_BATCH = 2000
CHECK_SEND_TIMEOUT_S = 3.0


class TransactionalMessageCheckService:
    def __init__(self, config: BrokerConfig, bridge: TransactionalMessageBridge, ledger: OpLedger,
                 clients: ClientManager, spawn: Callable[[Awaitable[None]], None],
                 set_aside: SetAside) -> None:
        self._config = config
        self._bridge = bridge
        self._ledger = ledger
        self._clients = clients
        self._spawn = spawn
        self._set_aside = set_aside

    async def run(self) -> None:
        """The service loop (cancelled at broker stop)."""
        if self._config.broker_id != MASTER_ID:
            return  # a slave's half queue is a replica; its master asks the producers
        interval_s = max(0.01, self._config.transaction_check_interval_ms / 1000)
        while True:
            await asyncio.sleep(interval_s)
            try:
                while self.check_once():
                    await asyncio.sleep(0)
            except Exception:  # a store error (disk full) or a bug: never the end of checking
                log.exception("transaction check failed; retried in %.1f s", interval_s)

    def check_once(self, now_ms: int | None = None) -> bool:
        """One scan; True if it stopped at SCAN_BATCH with more to look at."""
        start_ms = int(time.time() * 1000) if now_ms is None else now_ms
        ledger, bridge = self._ledger, self._bridge
        end = bridge.max_offset(HALF_TOPIC)
        offset = ledger.half_progress
        handled = 0
        asked: set[str] = set()  # transactions asked about in this pass
        while offset < end and handled < SCAN_BATCH:
            handled += 1
            if ledger.is_ended(offset):
                offset += 1
                continue
            half = bridge.next_half(offset)
            if half is None:
                break
            if half.queue_offset != offset:  # entries lost to retention: nothing to ask about
                offset = half.queue_offset
                continue
            key = half.properties.get(PROP_UNIQ_KEY)
            if key and (key in asked or ledger.key_ended(key)):
                offset += 1  # an older copy of a transaction ended or just asked about
                continue
            if half.store_timestamp >= start_ms or not self._due(half, start_ms):
                break
            try:
                self._resolve(half)
            except TRANSIENT:
                raise  # the store's trouble: this half message is looked at again next scan
            except Exception as exc:  # noqa: BLE001 - no half message may stop the scan
                self._set_aside.put(half, f"{type(exc).__name__}: {exc}")
            if key:
                asked.add(key)
            offset += 1
        ledger.advance(offset)
        return handled >= SCAN_BATCH and offset < end

    def _due(self, half: Message, now_ms: int) -> bool:
        """Past its transaction timeout (born time by the producer's clock, as Java)."""
        timeout_ms = self._config.transaction_timeout_ms
        immunity = half.properties.get(PROP_IMMUNITY_S)
        if immunity is not None:
            try:
                timeout_ms = int(immunity) * 1000
            except ValueError:
                log.warning("half message %s: bad %s %r", half.msg_id, PROP_IMMUNITY_S, immunity)
        age_ms = now_ms - half.born_timestamp
        return not 0 <= age_ms < timeout_ms

    def _resolve(self, half: Message) -> None:
        """needDiscard, else putBackHalfMsgQueue + resolveHalfMsg."""
        props = half.properties
        try:
            checks = int(props.get(PROP_CHECK_TIMES) or 0)
        except ValueError:
            checks = 0
        if checks >= self._config.transaction_check_max:
            self._bridge.discard(half)
            return
        copy = self._bridge.put_back(half, checks + 1)
        self._ledger.supersede(half.queue_offset, copy.queue_offset, copy.commitlog_offset)
        stored = self._bridge.message_at(copy.commitlog_offset)
        group = props.get(PROP_PGROUP, "")
        channel = self._clients.producer_channel(group)
        if stored is None or channel is None:
            log.warning("transaction check of %s skipped: no producer of group %r connected",
                        props.get(PROP_UNIQ_KEY), group)
            return
        self._spawn(_send_check(channel, self._check_request(stored, copy)))

    @staticmethod
    def _check_request(stored: Message, copy: PutResult) -> RemotingCommand:
        props = stored.properties
        uniq = props.get(PROP_UNIQ_KEY)
        header = CheckTransactionStateRequestHeader(
            tran_state_table_offset=copy.queue_offset, commit_log_offset=copy.commitlog_offset,
            msg_id=uniq, transaction_id=uniq, offset_msg_id=copy.msg_id)
        body = check_body(stored, props.get(PROP_REAL_TOPIC, stored.topic),
                          int(props.get(PROP_REAL_QID) or 0))
        return RemotingCommand.request(RequestCode.CHECK_TRANSACTION_STATE,
                                       encode_header(header), body)


async def _send_check(channel: Channel, request: RemotingCommand) -> None:
    """Broker2Client.checkProducerTransactionState: oneway, failures only logged."""
    try:
        await channel.invoke_oneway(request, CHECK_SEND_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - a gone producer is asked again next round
        log.info("%s: CHECK_TRANSACTION_STATE not sent: %s", channel.peer, exc)
