"""What the store hands back: statuses, put results and lazily decoded messages."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ._native import MessageBase, PutResultBase
from .errors import InvalidBodyError
from .protocol.message import DEFAULT_MAX_MESSAGE_BYTES, BodyDecodeError, decode_body
from .record import (
    PROP_KEYS,
    PROP_TAGS,
    PROP_UNIQ_KEY,
    SYSFLAG_BORNHOST_V6,
    SYSFLAG_STOREHOST_V6,
    decode_host,
    decode_properties,
    make_msg_id,
)


class PutStatus(Enum):
    """RocketMQ's PutMessageStatus (the ones an embedded store or its replication returns)."""

    PUT_OK = "PUT_OK"
    FLUSH_DISK_TIMEOUT = "FLUSH_DISK_TIMEOUT"
    FLUSH_SLAVE_TIMEOUT = "FLUSH_SLAVE_TIMEOUT"  # stored; no slave acknowledged in slaveTimeout
    SLAVE_NOT_AVAILABLE = "SLAVE_NOT_AVAILABLE"  # stored; no slave connected, or far behind
    SERVICE_NOT_AVAILABLE = "SERVICE_NOT_AVAILABLE"
    MESSAGE_ILLEGAL = "MESSAGE_ILLEGAL"


class GetStatus(Enum):
    """RocketMQ's GetMessageStatus."""

    FOUND = "FOUND"
    NO_MATCHED_MESSAGE = "NO_MATCHED_MESSAGE"
    MESSAGE_WAS_REMOVING = "MESSAGE_WAS_REMOVING"
    OFFSET_FOUND_NULL = "OFFSET_FOUND_NULL"
    OFFSET_OVERFLOW_BADLY = "OFFSET_OVERFLOW_BADLY"
    OFFSET_OVERFLOW_ONE = "OFFSET_OVERFLOW_ONE"
    OFFSET_TOO_SMALL = "OFFSET_TOO_SMALL"
    NO_MATCHED_LOGIC_QUEUE = "NO_MATCHED_LOGIC_QUEUE"
    NO_MESSAGE_IN_QUEUE = "NO_MESSAGE_IN_QUEUE"


class PutResult(PutResultBase):
    """One stored message. msg_id is RocketMQ's offset message id, built on first access.
    PutResult(status, queue_id, queue_offset, commitlog_offset, store_timestamp, host): the
    fields live in the C base, which the native put fills without a Python call."""

    __slots__ = ()
    status: PutStatus
    queue_id: int
    queue_offset: int
    commitlog_offset: int
    store_timestamp: int

    @property
    def msg_id(self) -> str:
        return make_msg_id(self._host, self.commitlog_offset)

    def __repr__(self) -> str:
        return (f"PutResult({self.status.name}, queue_id={self.queue_id}, "
                f"queue_offset={self.queue_offset}, commitlog_offset={self.commitlog_offset})")


class PendingPut:
    """A stored message that may not be on disk yet (MessageStore.put_async)."""

    __slots__ = ("_commit", "result")

    def __init__(self, result: PutResult, commit) -> None:
        self.result = result
        self._commit = commit
        if not commit.async_pending:
            commit.cue()  # wake the sync flusher

    def done(self) -> bool:
        """True once the message is durable (offsets are record boundaries)."""
        return self._commit.flushed > self.result.commitlog_offset

    def wait(self) -> PutResult:
        """Block until durable; status FLUSH_DISK_TIMEOUT past sync_flush_timeout_ms."""
        if not self._commit.wait(self.result.commitlog_offset + 1):
            self.result.status = PutStatus.FLUSH_DISK_TIMEOUT
        return self.result


class PutBatchResult:
    """A batch stored in one queue with consecutive queue offsets."""

    __slots__ = (
        "_host",
        "commitlog_offsets",
        "first_queue_offset",
        "queue_id",
        "status",
        "store_timestamp",
    )

    def __init__(self, status: PutStatus, queue_id: int, first_queue_offset: int,
                 commitlog_offsets: list[int], store_timestamp: int, host: bytes) -> None:
        self.status = status
        self.queue_id = queue_id
        self.first_queue_offset = first_queue_offset
        self.commitlog_offsets = commitlog_offsets
        self.store_timestamp = store_timestamp
        self._host = host

    def __len__(self) -> int:
        return len(self.commitlog_offsets)

    @property
    def msg_ids(self) -> list[str]:
        prefix = self._host.hex().upper()  # make_msg_id, with the host part made once
        return [f"{prefix}{off:016X}" for off in self.commitlog_offsets]

    def __repr__(self) -> str:
        return (f"PutBatchResult({self.status.name}, queue_id={self.queue_id}, "
                f"first_queue_offset={self.first_queue_offset}, count={len(self)})")


class PendingBatch:
    """A stored batch that may not be on disk yet (MessageStore.put_encoded_batch): ``batch``
    describes every record, ``result`` the last one, whose durability covers the others."""

    __slots__ = ("_commit", "batch", "result")

    def __init__(self, batch: PutBatchResult, commit) -> None:
        self.batch = batch
        offsets = batch.commitlog_offsets
        self.result = PutResult(batch.status, batch.queue_id,
                                batch.first_queue_offset + len(offsets) - 1,
                                offsets[-1] if offsets else -1, batch.store_timestamp,
                                batch._host)
        self._commit = commit
        if not commit.async_pending:
            commit.cue()  # wake the sync flusher

    def done(self) -> bool:
        return self._commit.flushed > self.result.commitlog_offset

    def wait(self) -> PutBatchResult:
        """Block until durable; status FLUSH_DISK_TIMEOUT past sync_flush_timeout_ms."""
        if not self._commit.wait(self.result.commitlog_offset + 1):
            self.batch.status = self.result.status = PutStatus.FLUSH_DISK_TIMEOUT
        return self.batch


class Message(MessageBase):
    """A stored message, decoded lazily from its segment.

    `body` is the body (a copy; a compressed one inflated on first read, at most
    max_body_bytes, else InvalidBodyError); `body_view` is a zero-copy view of the stored
    bytes (compressed as stored), valid while you hold it, even after retention deletes the
    segment's file. The record's header fields (size, queue_id, flag, queue_offset,
    commitlog_offset, sysflag, born_timestamp, store_timestamp, reconsume_times,
    prepared_transaction_offset) are plain read-only ints; the others are decoded when asked
    for. A read builds its messages in one native call (_native.build_messages)."""

    __slots__ = ()

    def __new__(cls, view: memoryview, fields, base: int, body: bytes | None = None,
                max_body_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> Message:
        """fields[base:base + 16]: the record's parsed fields (record.RecordField order) with
        positions in view. body: the final body when the reader already has it; otherwise an
        uncompressed one is copied from the view now and a compressed one is left for _inflate
        when body is first read."""
        return super().__new__(cls, view, fields, base, body, max_body_bytes)

    def _inflate(self) -> bytes:
        # Called by the body getter the first time a compressed body is read. Inflating it here,
        # not in the reader, keeps a body that does not inflate (or a zlib bomb) from failing the
        # read of every message beside it, and spares readers that never look.
        try:
            return decode_body(self.body_view, self.sysflag, self._max_body)
        except BodyDecodeError as exc:
            raise InvalidBodyError(f"message at commit-log offset {self.commitlog_offset}: "
                                   f"{exc}") from None

    @property
    def topic(self) -> str:
        p = self._topic_pos
        return str(self._view[p:p + self._topic_len], "utf-8")

    @property
    def body_view(self) -> memoryview:
        p = self._body_pos
        return self._view[p:p + self._body_len]

    @property
    def properties(self) -> dict[str, str]:
        p = self._props_pos
        n = self._props_len
        return decode_properties(self._view[p:p + n]) if n else {}

    @property
    def tags(self) -> str | None:
        return self.properties.get(PROP_TAGS)

    @property
    def keys(self) -> list[str]:
        return [k for k in self.properties.get(PROP_KEYS, "").split(" ") if k]

    @property
    def uniq_key(self) -> str | None:
        return self.properties.get(PROP_UNIQ_KEY)

    def _record_start(self) -> int:
        """The record's position in the view: 72 bytes (+12 per IPv6 host) before its body."""
        sysflag = self.sysflag
        extra = (12 if sysflag & SYSFLAG_BORNHOST_V6 else 0) + \
            (12 if sysflag & SYSFLAG_STOREHOST_V6 else 0)
        return self._body_pos - (88 + extra)

    @property
    def record_view(self) -> memoryview:
        """The whole stored record (TOTALSIZE bytes, as RocketMQ's pull responses carry it),
        zero-copy, valid while you hold it."""
        start = self._record_start()
        return self._view[start:start + self.size]

    def _hosts(self) -> tuple[bytes, bytes]:
        """(born host, store host) bytes; the record starts 88 bytes (+12 per IPv6 host)
        before its body."""
        sysflag = self.sysflag
        bh = 20 if sysflag & SYSFLAG_BORNHOST_V6 else 8
        sh = 20 if sysflag & SYSFLAG_STOREHOST_V6 else 8
        start = self._body_pos - (72 + bh + sh)
        born = bytes(self._view[start + 48:start + 48 + bh])
        store = bytes(self._view[start + 56 + bh:start + 56 + bh + sh])
        return born, store

    @property
    def born_host(self) -> tuple[str, int]:
        return decode_host(self._hosts()[0])

    @property
    def store_host(self) -> tuple[str, int]:
        return decode_host(self._hosts()[1])

    @property
    def msg_id(self) -> str:
        return make_msg_id(self._hosts()[1], self.commitlog_offset)

    def __repr__(self) -> str:
        return (f"Message(topic={self.topic!r}, queue_id={self.queue_id}, "
                f"queue_offset={self.queue_offset}, size={self.size})")


@dataclass
class GetResult:
    """RocketMQ's GetMessageResult: the messages plus where to read next."""

    status: GetStatus
    messages: list[Message]
    next_offset: int
    min_offset: int
    max_offset: int

    def __iter__(self):
        return iter(self.messages)

    def __len__(self) -> int:
        return len(self.messages)
