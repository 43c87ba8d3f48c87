"""Records a service cannot process, set aside where an operator finds them.

The services that read records back (delay levels, timers, the broker's transaction check)
now and then meet a record they cannot act on: a REAL_TOPIC that is no topic, a REAL_QID that
is not one of its queues, a body flagged compressed that does not inflate, properties that no
longer fit once the service adds its own. Retrying such a record forever stops its queue for
every producer, across restarts. Instead the service logs it, counts it, copies it into one
system topic and goes on with the next record:

    rmq_sys_set_aside, queue 0: one record per record set aside, holding
      body        the original's stored bytes, as they are (a compressed body still compressed)
      sysFlag     0: no reader tries to inflate a body that may not inflate
      flag, born time and host, reconsume times: the original's
      properties  the original's, plus
        SET_ASIDE_FROM      "<topic>:<queue id>:<queue offset>" of the original
        SET_ASIDE_OFFSET    its commit-log offset (the original stays there until retention)
        SET_ASIDE_SYSFLAG   its sysFlag
        SET_ASIDE_BY        the service: "delay-levels", "timer", "transaction-check"
        SET_ASIDE_REASON    why, one line

Why a topic and not a log file or a %DLQ%: the copy is a record like any other, so it keeps
RocketMQ's format, the store's retention and durability, and every tool that reads a topic
reads it (a pull, `mqadmin queryMsgByOffset`, the embedded get, `rmqstore inspect`); a %DLQ%
belongs to a consumer group that may subscribe to it, which a record no service can deliver
must not reach unasked. The rmq_sys_ prefix makes it a system topic producers cannot write
(topic_validator). Its max offset is the count of records ever set aside.
"""

from __future__ import annotations

import logging

from .errors import DiskFullError, FlushTimeoutError, StoreClosedError, StoreError
from .message import Message, PendingPut
from .options import RecordInput
from .store import MessageStore
from .topic_validator import SET_ASIDE_TOPIC

log = logging.getLogger(__name__)

PROP_FROM = "SET_ASIDE_FROM"
PROP_OFFSET = "SET_ASIDE_OFFSET"
PROP_SYSFLAG = "SET_ASIDE_SYSFLAG"
PROP_BY = "SET_ASIDE_BY"
PROP_REASON = "SET_ASIDE_REASON"
MAX_REASON_CHARS = 300

# Errors that say nothing about the record: the service keeps its place and tries again.
TRANSIENT = (DiskFullError, StoreClosedError, FlushTimeoutError, OSError)


class SetAside:
    """One service's door to rmq_sys_set_aside. Any thread (a put is thread-safe)."""

    def __init__(self, store: MessageStore, service: str) -> None:
        self._store = store
        self.service = service
        self.count = 0  # set aside by this service since it started

    def put(self, msg: Message, reason: str) -> PendingPut | None:
        """Copy msg into rmq_sys_set_aside and log why; the pending put (wait on it before
        persisting progress past msg), or None when even the copy could not be stored (the
        original stays where it is, and the log line names it). Transient store errors
        propagate: the caller retries msg later."""
        self.count += 1
        where = f"{msg.topic}:{msg.queue_id}:{msg.queue_offset}"
        reason = " ".join(reason.split())[:MAX_REASON_CHARS]
        marks = {PROP_FROM: where, PROP_OFFSET: str(msg.commitlog_offset),
                 PROP_SYSFLAG: str(msg.sysflag), PROP_BY: self.service, PROP_REASON: reason}
        body = bytes(msg.body_view)
        try:
            try:
                pending = self._put(msg, body, {**msg.properties, **marks})
            except StoreError:  # the original's properties are what does not fit: marks only
                pending = self._put(msg, body, marks)
        except TRANSIENT:
            self.count -= 1
            raise
        except StoreError as exc:
            log.error("%s: %s (commit-log offset %d) cannot be processed: %s; nor set aside "
                      "(%s): left in place, passed over", self.service, where,
                      msg.commitlog_offset, reason, exc)
            return None
        log.error("%s: %s (commit-log offset %d) cannot be processed: %s; set aside in %s at "
                  "queue offset %d", self.service, where, msg.commitlog_offset, reason,
                  SET_ASIDE_TOPIC, pending.result.queue_offset)
        return pending

    def _put(self, msg: Message, body: bytes, props: dict[str, str]) -> PendingPut:
        return self._store.put_record(SET_ASIDE_TOPIC, body, 0, RecordInput.copy_of(
            msg, props, sysflag=0))


def set_aside_total(store: MessageStore) -> int:
    """Records ever set aside in this store, by every service (the topic's max offset)."""
    return store.max_offset(SET_ASIDE_TOPIC, 0)
