"""The store side of transactional messages: half, op, final and discarded messages
(TransactionalMessageBridge, EndTransactionProcessor.endMessageTransaction and
DefaultTransactionalMessageCheckListener.toMessageExtBrokerInner of rocketmq-all-4.9.7).

A half message is the producer's message stored in RMQ_SYS_TRANS_HALF_TOPIC queue 0 with its
destination kept in the REAL_TOPIC / REAL_QID properties and its sysFlag transaction type reset
to "not a transaction" (so it is an ordinary, invisible queue entry). Ending it writes an op
record to RMQ_SYS_TRANS_OP_HALF_TOPIC queue 0: tag ``d``, body the half message's queue offset in
decimal ("42"), as Java does, so a Java broker reading the same store agrees on what is ended.
"""

from __future__ import annotations

import logging
import struct

from ....message import Message, PutResult
from ....options import RecordInput
from ....record import (
    SYSFLAG_BORNHOST_V6,
    SYSFLAG_STOREHOST_V6,
    SYSFLAG_TX_COMMIT,
    SYSFLAG_TX_MASK,
)
from ....store import MessageStore
from ....topic_validator import TRANS_CHECK_MAX_TIME_TOPIC, TRANS_HALF_TOPIC, TRANS_OP_HALF_TOPIC
from ..handlers.send import Placement
from ..topics import BrokerTopics

log = logging.getLogger(__name__)

HALF_TOPIC = TRANS_HALF_TOPIC
OP_TOPIC = TRANS_OP_HALF_TOPIC
CHECK_MAX_TOPIC = TRANS_CHECK_MAX_TIME_TOPIC  # checked too often: parked here, never delivered
SYSTEM_GROUP = "CID_RMQ_SYS_TRANS"  # MixAll.CID_SYS_RMQ_TRANS: owner of the scan's progress
REMOVE_TAG = "d"  # TransactionalMessageUtil.REMOVETAG

PROP_TRAN_MSG = "TRAN_MSG"  # MessageConst.PROPERTY_TRANSACTION_PREPARED
PROP_PGROUP = "PGROUP"
PROP_REAL_TOPIC = "REAL_TOPIC"
PROP_REAL_QID = "REAL_QID"
PROP_CHECK_TIMES = "TRANSACTION_CHECK_TIMES"
PROP_IMMUNITY_S = "CHECK_IMMUNITY_TIME_IN_SECONDS"
PROP_UNIQ_KEY = "UNIQ_KEY"

_BODY_LEN_AT = 84  # BODYLEN in a record with IPv4 hosts (record.py); +12 per IPv6 host


class TransactionalMessageBridge:
    """Reads and writes the transaction system topics. Event-loop thread only."""

    def __init__(self, store: MessageStore, topics: BrokerTopics) -> None:
        self._store = store
        self._topics = topics

    def ensure_topics(self) -> None:
        """The half and op topics, one queue each (Java creates them on first use)."""
        self._topics.ensure_system(HALF_TOPIC)
        self._topics.ensure_system(OP_TOPIC)

    # -- SendProcessor hook (send.Rewrite) -------------------------------------------------
    @staticmethod
    def rewrite(place: Placement, props: dict[str, str]) -> Placement | None:
        """parseHalfMessageInner: a TRAN_MSG=true send is stored as a half message."""
        if props.get(PROP_TRAN_MSG, "").lower() != "true":
            return None
        props[PROP_REAL_TOPIC] = place.topic
        props[PROP_REAL_QID] = str(place.queue_id)
        return Placement(HALF_TOPIC, 0, place.sysflag & ~SYSFLAG_TX_MASK)

    # -- reads -------------------------------------------------------------------------------
    def message_at(self, commitlog_offset: int) -> Message | None:
        """lookMessageByOffset; None if nothing valid is stored there."""
        if commitlog_offset < 0:
            return None
        try:
            return self._store.get_by_commitlog_offset(commitlog_offset)
        except (ValueError, IndexError, OSError) as exc:
            log.warning("no message at commit-log offset %d: %s", commitlog_offset, exc)
            return None

    def next_half(self, queue_offset: int) -> Message | None:
        """The half message at queue_offset, or the next one stored after it (entries lost to
        retention are skipped); None at the end of the queue."""
        queue_offset = max(queue_offset, self._store.min_offset(HALF_TOPIC, 0))
        result = self._store.get(HALF_TOPIC, 0, queue_offset, 1)
        return result.messages[0] if result.messages else None

    def half_key(self, queue_offset: int) -> str | None:
        """The transaction key (UNIQ_KEY) of the half message at queue_offset, if stored."""
        half = self.next_half(queue_offset)
        if half is None or half.queue_offset != queue_offset:
            return None
        return half.properties.get(PROP_UNIQ_KEY)

    def op_records(self, queue_offset: int) -> list[tuple[int, int]]:
        """(op queue offset, half queue offset) of every op record from queue_offset on; a
        record whose body is no number names half offset -1 (nothing)."""
        out: list[tuple[int, int]] = []
        cur = max(queue_offset, self._store.min_offset(OP_TOPIC, 0))
        end = self._store.max_offset(OP_TOPIC, 0)
        while cur < end:
            result = self._store.get(OP_TOPIC, 0, cur, 256)
            if not result.messages:
                break
            for m in result.messages:
                out.append((m.queue_offset, _half_offset(m)))
            cur = result.next_offset
        return out

    def progress(self, topic: str) -> int | None:
        return self._store.offsets.committed(SYSTEM_GROUP, topic, 0)

    def commit_progress(self, topic: str, queue_offset: int) -> None:
        """Kept with the consumer offsets; persisted with them (every 5 s and at close)."""
        self._store.offsets.commit(SYSTEM_GROUP, topic, 0, queue_offset)

    def min_offset(self, topic: str) -> int:
        return self._store.min_offset(topic, 0)

    def max_offset(self, topic: str) -> int:
        return self._store.max_offset(topic, 0)

    # -- writes ------------------------------------------------------------------------------
    def put_final(self, half: Message) -> tuple[str, int, PutResult]:
        """endMessageTransaction + sendFinalMessage: the half message in its real topic and
        queue, transaction type COMMIT, without TRAN_MSG / REAL_TOPIC / REAL_QID. Returns
        (topic, queue id, result); raises the store's errors."""
        props = half.properties
        topic = props.pop(PROP_REAL_TOPIC)
        queue_id = int(props.pop(PROP_REAL_QID))
        props.pop(PROP_TRAN_MSG, None)
        sysflag = (half.sysflag & ~SYSFLAG_TX_MASK) | SYSFLAG_TX_COMMIT
        return topic, queue_id, self._put_copy(half, topic, queue_id, props, sysflag)

    def put_back(self, half: Message, check_times: int) -> PutResult:
        """renewHalfMessageInner: the half message stored again at the tail of the half queue
        with TRANSACTION_CHECK_TIMES = check_times (same born time, body and properties)."""
        props = half.properties
        props[PROP_CHECK_TIMES] = str(check_times)
        return self._put_copy(half, HALF_TOPIC, 0, props, half.sysflag)

    def discard(self, half: Message) -> PutResult:
        """resolveDiscardMsg: checked transactionCheckMax times; parked, never delivered."""
        self._topics.ensure_system(CHECK_MAX_TOPIC)
        log.error("half message %s (real topic %s) checked too many times: moved to %s",
                  half.properties.get(PROP_UNIQ_KEY), half.properties.get(PROP_REAL_TOPIC),
                  CHECK_MAX_TOPIC)
        return self._put_copy(half, CHECK_MAX_TOPIC, 0, half.properties, half.sysflag)

    def put_op(self, half_queue_offset: int) -> PutResult:
        """addRemoveTagInTransactionOp: the op record that ends one half message."""
        pending = self._store.put_async(OP_TOPIC, str(half_queue_offset).encode(), queue_id=0,
                                        tags=REMOVE_TAG)
        return pending.result

    def _put_copy(self, src: Message, topic: str, queue_id: int, props: dict[str, str],
                  sysflag: int) -> PutResult:
        return self._store.put_record(topic, bytes(src.body_view), queue_id,
                                      RecordInput.copy_of(src, props, sysflag=sysflag)).result


def check_body(msg: Message, topic: str, queue_id: int) -> bytes:
    """CHECK_TRANSACTION_STATE's body (MessageDecoder.encode of the half message after
    sendCheckMessage set its real topic and queue): the stored record with TOPIC and QUEUEID
    replaced and TOTALSIZE fixed; every other field as stored."""
    record = bytes(msg.record_view)
    sysflag = msg.sysflag
    body_len_at = _BODY_LEN_AT + (12 if sysflag & SYSFLAG_BORNHOST_V6 else 0) \
        + (12 if sysflag & SYSFLAG_STOREHOST_V6 else 0)
    (body_len,) = struct.unpack_from(">i", record, body_len_at)
    topic_at = body_len_at + 4 + body_len
    props_at = topic_at + 1 + record[topic_at]
    name = topic.encode("utf-8")
    out = bytearray(record[:topic_at])
    out += bytes([len(name)]) + name + record[props_at:]
    struct.pack_into(">ii", out, 0, len(out), struct.unpack_from(">i", record, 4)[0])
    struct.pack_into(">i", out, 12, queue_id)
    return bytes(out)


def _half_offset(op: Message) -> int:
    if op.tags != REMOVE_TAG:
        log.error("op record at %d has tag %r, not %r; ignored", op.queue_offset, op.tags,
                  REMOVE_TAG)
        return -1
    try:
        return int(op.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        log.error("op record at %d has body %r, not a queue offset", op.queue_offset, op.body[:40])
        return -1
