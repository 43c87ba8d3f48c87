"""The write side of MessageStore: put, put_async, put_batch.

Every append runs under the store's put lock (RocketMQ's putMessageLock); the record and its
consume-queue unit are encoded natively in one call (see _native/append.c), and the native
appender asks to roll a full segment or consume-queue file, which happens here.
"""

from __future__ import annotations

import array
import zlib
from collections.abc import Iterable

import lz4.frame

from . import _native
from .consumequeue import ConsumeQueue
from .errors import MessageTooLargeError
from .index import index_keys
from .message import PendingBatch, PendingPut, PutBatchResult, PutResult, PutStatus
from .record import (
    COMPRESSION_LZ4,
    COMPRESSION_SHIFT,
    PROP_KEYS,
    PROP_TAGS,
    SYSFLAG_BORNHOST_V6,
    SYSFLAG_COMPRESSED,
    SYSFLAG_STOREHOST_V6,
    SYSFLAG_TX_MASK,
    decode_properties,
    encode_host,
    encode_properties,
)

_put_simple = _native.put_simple
_new = object.__new__
_CACHE_MAX = 4096  # producers' addresses and tags repeat: their encodings are kept
_host_cache: dict[tuple[str, int], bytes] = {}
_tags_cache: dict[str, int] = {}
_PUT_OK = PutStatus.PUT_OK  # an enum member lookup costs more than the native append


class StoreWriter:
    """Mixed into MessageStore; expects its put lock, native appender (_log), consume queues,
    index, topic helpers and group commit."""

    def put(self, topic: str, body: bytes, *, queue_id: int | None = None,
            tags: str | None = None, keys: Iterable[str] = (),
            properties: dict[str, str] | None = None, flag: int = 0,
            born_timestamp: int | None = None, reconsume_times: int = 0,
            born_host: tuple[str, int] | None = None, sysflag: int = 0,
            tags_code: int | None = None) -> PutResult:
        """Append one message. With flush="sync" it returns once the message is on disk
        (status FLUSH_DISK_TIMEOUT if that took longer than sync_flush_timeout_ms).

        born_host is the producer's address (default: the store host); sysflag passes a
        producer's flags through (a body flagged compressed is stored as given); tags_code
        replaces the tag's hash in the consume-queue unit (SCHEDULE_TOPIC_XXXX keeps the
        delivery time there, as RocketMQ 4.x does)."""
        cq = self._plain_targets.get((topic, queue_id))
        if (cq is not None and tags is None and not keys and properties is None and not flag
                and born_timestamp is None and not reconsume_times and born_host is None
                and not sysflag and tags_code is None and type(body) is bytes
                and len(body) < self._plain_limit):
            result = self._put_plain(cq, body)
        else:
            result = self._put(topic, body, queue_id, tags, keys, properties, flag,
                               born_timestamp, reconsume_times, born_host, sysflag, tags_code)
        # Durable positions are record boundaries, so durable > offset covers the record.
        if self._sync and not self._group_commit.wait(result.commitlog_offset + 1):
            result.status = PutStatus.FLUSH_DISK_TIMEOUT
        return result

    def put_async(self, topic: str, body: bytes, *, queue_id: int | None = None,
                  tags: str | None = None, keys: Iterable[str] = (),
                  properties: dict[str, str] | None = None, flag: int = 0,
                  born_timestamp: int | None = None, reconsume_times: int = 0,
                  born_host: tuple[str, int] | None = None, sysflag: int = 0,
                  tags_code: int | None = None) -> PendingPut:
        """put() without waiting for the disk: the message is stored (and readable) when this
        returns; PendingPut.wait() blocks until it is durable. Many puts in flight share each
        fdatasync, which a background flusher runs while anything is pending (sync flush)."""
        cq = self._plain_targets.get((topic, queue_id))
        if (cq is not None and tags is None and not keys and properties is None and not flag
                and born_timestamp is None and not reconsume_times and born_host is None
                and not sysflag and tags_code is None and type(body) is bytes
                and len(body) < self._plain_limit):
            return PendingPut(self._put_plain(cq, body), self._group_commit)
        return PendingPut(self._put(topic, body, queue_id, tags, keys, properties, flag,
                                    born_timestamp, reconsume_times, born_host, sysflag,
                                    tags_code), self._group_commit)

    def _put_plain(self, cq: ConsumeQueue, body: bytes) -> PutResult:
        """The hot path: a topic and queue seen before, no properties, no compression."""
        lock = self._put_lock
        lock.acquire()  # cheaper than `with` on the hot path
        try:
            if self._refusing:
                self._check_writable()
            qoff = _put_simple(self._log, cq.wptr, body, len(body))
            if qoff < 0:
                qoff = self._put_plain_retrying(cq, body, qoff)
            last = self._last  # (phys, store time) of the record just appended
            # Filled here rather than through __init__: a Python frame fewer per put.
            result = _new(PutResult)
            result.status = _PUT_OK
            result.queue_id = cq.queue_id
            result.queue_offset = qoff
            result.commitlog_offset = last[0]
            result.store_timestamp = last[1]
            result._host = self._store_host
            if self._arrival_waiters:
                self._arrival.notify_all()
        finally:
            lock.release()
        return result

    def _put(self, topic, body, queue_id, tags, keys, properties, flag, born_timestamp,
             reconsume_times, born_host=None, sysflag=0, tags_code=None) -> PutResult:
        """The general path: validates, builds properties, compresses, indexes keys."""
        if type(body) is not bytes:
            if not isinstance(body, (bytearray, memoryview)):
                raise TypeError(f"body must be bytes-like, not {type(body).__name__}")
            body = bytes(body)
        if topic not in self._topic_cache:
            self._topic_bytes(topic)  # validates the name, creates the topic config
        if len(body) > self.config.max_message_size:
            raise MessageTooLargeError(
                f"body is {len(body)} bytes; max_message_size is {self.config.max_message_size}")
        keys = [keys] if isinstance(keys, str) else list(keys)
        props = self._properties(tags, keys, properties) if (tags or keys or properties) else b""
        to_index = index_keys(properties, keys or None)  # no keys given: index props' KEYS
        if sysflag & SYSFLAG_COMPRESSED:
            sysflag &= ~(SYSFLAG_BORNHOST_V6 | SYSFLAG_STOREHOST_V6)
        else:
            body, compressed = self._maybe_compress(body)
            sysflag = (sysflag & SYSFLAG_TX_MASK) | compressed
        host = None
        if born_host is not None:
            host = _encoded_host(born_host)
            if len(host) == 20:
                sysflag |= SYSFLAG_BORNHOST_V6
        if tags_code is None:
            tags_code = _tags_code(tags) if tags else 0
        log = self._log
        with self._put_lock:
            self._check_writable()
            qid = self._choose_queue(topic) if queue_id is None else queue_id
            cq = self._cqs.get((topic, qid)) or self._queue_for_write(topic, qid)
            born = -1 if born_timestamp is None else born_timestamp

            def append():
                return _native.put(log, cq.wptr, body, len(body), props, len(props),
                                   tags_code, sysflag, flag, born, reconsume_times, 0,
                                   host if host is not None else _native.NULL)

            qoff = append()
            if qoff < 0:
                qoff = self._append_retrying(cq, append, qoff)
            phys, now = log.last_phys, log.last_ts
            if to_index and self.index is not None:
                self.index.put_keys(topic, to_index, phys, now)
            if queue_id is not None or self._single_queue(topic):
                self._plain_targets[(topic, queue_id)] = cq
            if self._arrival_waiters:
                self._arrival.notify_all()
        return PutResult(PutStatus.PUT_OK, qid, qoff, phys, now, self._store_host)

    def _put_plain_retrying(self, cq: ConsumeQueue, body: bytes, code: int) -> int:
        # Apart from _put_plain: a closure there would cost every put its cells.
        log = self._log
        return self._append_retrying(cq, lambda: _put_simple(log, cq.wptr, body, len(body)),
                                     code)

    def _append_retrying(self, cq: ConsumeQueue, append, code: int) -> int:
        """The native append refused with code: roll the commit-log segment or the
        consume-queue file as it asks, then append again."""
        for _ in range(3):
            if code == -_native.SEGMENT_FULL:
                self.commitlog.roll()
            elif code == -_native.QUEUE_FULL:
                cq.roll()
            elif code == -_native.IO_ERROR:
                raise OSError("writing a record to the commit log failed; it was not appended")
            else:
                raise MessageTooLargeError(
                    f"record does not fit a {self.config.commitlog_segment_bytes}-byte segment")
            code = append()
            if code >= 0:
                return code
        raise RuntimeError(f"append refused with code {code} after rolling")

    def put_batch(self, topic: str, bodies: list[bytes], *, queue_id: int | None = None,
                  tags: str | None = None, keys: Iterable[str] = (),
                  properties: dict[str, str] | None = None, flag: int = 0) -> PutBatchResult:
        """Append many messages to one queue in one native call; they share tags, keys and
        properties and get consecutive queue offsets. Bodies are stored as given (no
        compression). A batch that fits one segment stays in one segment."""
        if topic not in self._topic_cache:
            self._topic_bytes(topic)  # validates the name
        data = b"".join(bodies)
        lens = array.array("i", list(map(len, bodies)))  # from a list: 40% faster than from map
        limit = self.config.max_message_size
        if len(data) > limit and max(lens) > limit:
            raise MessageTooLargeError(f"a body is {max(lens)} bytes; max_message_size is {limit}")
        if tags or keys or properties:
            keys = [keys] if isinstance(keys, str) else list(keys)
            props = self._properties(tags, keys, properties)
            to_index = index_keys(properties, keys or None)  # no keys given: index props' KEYS
            tags_code = _native.java_hash(tags) if tags else 0
        else:
            props, to_index, tags_code = b"", None, 0
        n = len(lens)
        phys = array.array("q", bytes(8 * n))
        appender = self.commitlog.appender
        with self._put_lock:
            if self._refusing:
                self._check_writable()
            qid = self._choose_queue(topic) if queue_id is None else queue_id
            cq = self._cqs.get((topic, qid)) or self._queue_for_write(topic, qid)
            qoff = cq.max_offset
            done = body_at = 0
            stamp = 0  # the first native call takes the time; continuations reuse it
            try:
                while done < n:
                    wrote, stop = appender.put_batch(cq.writer, data, lens, done, body_at, phys,
                                                     props, tags_code, flag, stamp)
                    stamp = self._log.last_ts if done or wrote else 0
                    if wrote:
                        done += wrote
                        if done < n:  # another call follows: where its first body starts
                            body_at += sum(lens[done - wrote:done])
                    if stop == _native.SEGMENT_FULL:
                        self.commitlog.roll()
                    elif stop == _native.QUEUE_FULL:
                        cq.roll()
                    elif stop == _native.TOO_LARGE:
                        raise MessageTooLargeError(
                            f"a record does not fit a {self.config.commitlog_segment_bytes}-byte segment")
                    elif stop == _native.IO_ERROR:
                        raise OSError("writing a batch to the commit log failed; nothing of "
                                      "it was appended")
            finally:
                now = self._log.last_ts
            if to_index and self.index is not None:
                for p in phys:
                    self.index.put_keys(topic, to_index, p, now)
            if self._arrival_waiters:
                self._arrival.notify_all()
        status = PutStatus.PUT_OK
        if n and self._sync and not self._group_commit.wait(phys[-1] + 1):
            status = PutStatus.FLUSH_DISK_TIMEOUT
        return PutBatchResult(status, qid, qoff, phys.tolist(), now, self._store_host)

    def put_encoded_batch(self, topic: str, data: bytes, *, queue_id: int,
                          properties: dict[str, str] | None = None,
                          born_timestamp: int | None = None,
                          born_host: tuple[str, int] | None = None, sysflag: int = 0,
                          reconsume_times: int = 0) -> PendingBatch:
        """Append the messages of a batch body in RocketMQ's wire encoding (what
        SEND_BATCH_MESSAGE carries: per entry TOTALSIZE MAGICCODE BODYCRC FLAG BODYLEN BODY
        PROPLEN PROPERTIES) to one queue, in one native call: each record keeps its entry's
        flag, body and properties (minus WAIT) followed by ``properties``; its unit carries the
        hash of its TAGS; UNIQ_KEY and KEYS are indexed. Nothing is stored when an entry's sizes
        do not add up (ValueError) or a body is over max_message_size. Returns at once; the
        PendingBatch says when the batch is durable."""
        if topic not in self._topic_cache:
            self._topic_bytes(topic)  # validates the name
        data = bytes(data)
        n = _native.check_entries(data, self.config.max_message_size)  # ValueError if bad
        extra = encode_properties(properties) if properties else b""
        host = None
        if born_host is not None:
            host = _encoded_host(born_host)
            if len(host) == 20:
                sysflag |= SYSFLAG_BORNHOST_V6
        sysflag &= SYSFLAG_TX_MASK | SYSFLAG_BORNHOST_V6  # bodies in a batch are never compressed
        born = -1 if born_timestamp is None else born_timestamp
        out = _native.new_entry_reports(max(n, 1))
        appender = self.commitlog.appender
        with self._put_lock:
            if self._refusing:
                self._check_writable()
            cq = self._cqs.get((topic, queue_id)) or self._queue_for_write(topic, queue_id)
            qoff = cq.max_offset
            done = at = stamp = 0
            while done < n:
                wrote, stop = appender.put_entries(cq.writer, data, at, extra, sysflag, born,
                                                   reconsume_times, host, stamp, done == 0,
                                                   out + done)
                if wrote:
                    done += wrote
                    last = out[done - 1]
                    at = last.props_at + last.props_len  # past the last entry written
                stamp = self._log.last_ts if done else 0
                if stop == _native.SEGMENT_FULL:
                    self.commitlog.roll()
                elif stop == _native.QUEUE_FULL:
                    cq.roll()
                elif stop == _native.TOO_LARGE:
                    raise MessageTooLargeError(
                        f"a record does not fit a {self.config.commitlog_segment_bytes}-byte "
                        "segment, or its properties exceed 32767 bytes")
                elif stop == _native.IO_ERROR:
                    raise OSError("writing a batch to the commit log failed; nothing of the "
                                  "rest was appended")
            now = self._log.last_ts
            reports = _native.entry_reports(out, n)
            offsets = [r[0] for r in reports]
            if self.index is not None:
                to_index: list[tuple[str, int]] = []
                for phys, props_at, props_len, uniq_at, uniq_len, has_keys in reports:
                    if has_keys:
                        props = decode_properties(data[props_at:props_at + props_len])
                        to_index.extend((key, phys) for key in index_keys(props))
                    elif uniq_len > 0:
                        start = props_at + uniq_at
                        to_index.append((data[start:start + uniq_len].decode("utf-8", "replace"),
                                         phys))
                self.index.put_many(topic, to_index, now)
            if self._arrival_waiters:
                self._arrival.notify_all()
        return PendingBatch(PutBatchResult(PutStatus.PUT_OK, queue_id, qoff, offsets, now,
                                           self._store_host), self._group_commit)

    def _properties(self, tags, keys, properties) -> bytes:
        props = dict(properties) if properties else {}
        if tags:
            props[PROP_TAGS] = tags
        if keys:
            props[PROP_KEYS] = " ".join(keys)
        return encode_properties(props)

    def _maybe_compress(self, body: bytes) -> tuple[bytes, int]:
        """Compress a body at or over compress_over_bytes when compression is on, keeping
        the result only when it is smaller (incompressible bodies are stored as given)."""
        cfg = self.config
        if cfg.compression is None or len(body) < cfg.compress_over_bytes:
            return body, 0
        if cfg.compression == "lz4":
            packed = lz4.frame.compress(body)
            flags = SYSFLAG_COMPRESSED | (COMPRESSION_LZ4 << COMPRESSION_SHIFT)
        else:  # type bits left 0 (plain zlib) so RocketMQ 4.x clients read it too
            packed = zlib.compress(body, cfg.zlib_level)
            flags = SYSFLAG_COMPRESSED
        if len(packed) >= len(body):
            return body, 0
        return packed, flags



def _encoded_host(address: tuple[str, int]) -> bytes:
    host = _host_cache.get(address)
    if host is None:
        host = encode_host(*address)
        if len(_host_cache) >= _CACHE_MAX:
            _host_cache.clear()
        _host_cache[address] = host
    return host


def _tags_code(tags: str) -> int:
    code = _tags_cache.get(tags)
    if code is None:
        code = _native.java_hash(tags)
        if len(_tags_cache) >= _CACHE_MAX:
            _tags_cache.clear()
        _tags_cache[tags] = code
    return code
