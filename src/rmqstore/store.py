"""MessageStore: the embedded store's facade. It opens and recovers the parts (CommitLog,
ConsumeQueueTable, IndexService, checkpoint, topics, offsets), owns the StoreWriter
(writer.py) and StoreReader (reader.py) it hands them to, and StoreFlush (store_flush.py),
which decides when what they wrote is durable; it runs retention; its put and read methods
delegate to the first two. Byte formats are in their own modules; opening.py checks a store
before it is opened.

Threads: put/put_batch serialize on one put lock (RocketMQ's putMessageLock); gets, queries and
offset calls run concurrently with them; one housekeeping thread flushes and cleans; in sync
flush mode writers share fdatasyncs through GroupCommit after leaving the put lock.

Processes (shared=True): the put lock is also a robust cross-process mutex, the ends of the log
and of each queue are published in a control file, the housekeeping runs in one process at a
time, and sync flush shares fdatasyncs across processes (see shared/).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from . import _native, filenames, sync_failure, sync_journal
from .checkpoint import StoreCheckpoint
from .commitlog import CommitLog
from .config import StoreConfig
from .delay_ladder import parse_delay_levels
from .disk_alarm import DiskAlarm, DiskThresholds
from .errors import (
    InvalidQueueError,
    InvalidTopicError,
    ReplicaStoreError,
    StoreError,
    SyncFailedError,
)
from .flush import Housekeeper
from .index import IndexService
from .offsets import ConsumerOffsetManager
from .opening import check_sizes, take_lock
from .queue_table import ConsumeQueueTable
from .reader import Bodies, StoreReader
from .record import check_topic, encode_host
from .recovery import RecoveryReport, recover
from .replica import ReplicaLog, holds_boundary, read_log, read_log_into
from .replica_dispatch import ReplicaDispatcher
from .retention import Retention, disk_used_ratio
from .segment_queue import Preallocator
from .shared import Sharing
from .store_flush import StoreFlush
from .topic_validator import check_group
from .topics import TopicConfig, TopicConfigManager, TopicRoutes
from .warm import Warmer
from .writer import StoreWriter

if TYPE_CHECKING:
    import asyncio

    from .aio_commit import AsyncGroupCommit
    from .message import GetResult, Message, PendingBatch, PendingPut, PutBatchResult, PutResult
    from .options import PutOptions, RecordInput

log = logging.getLogger(__name__)

OFFSET_PERSIST_INTERVAL_S = 5.0  # flushConsumerOffsetInterval
TOPICS_PERSIST_INTERVAL_S = 10.0  # topics.json written whole at most this often (journaled)
DISK_CHECK_INTERVAL_S = 10.0


def open_store(path: str | os.PathLike, **config) -> MessageStore:
    """Open (creating or recovering) the store at path. Keyword arguments are StoreConfig
    fields. Use it as a context manager, or call close()."""
    return MessageStore(path, StoreConfig(**config))


class MessageStore:
    def __init__(self, path: str | os.PathLike, config: StoreConfig | None = None) -> None:
        self.root = Path(path)
        self.config = config = config or StoreConfig()
        self.root.mkdir(parents=True, exist_ok=True)
        self._sharing = Sharing(self.root, config) if config.shared else None
        self._lock_fd = -1 if config.shared else take_lock(filenames.lock_file(self.root))
        self._closed = False
        self._put_lock = threading.Lock()
        self._store_host = encode_host(*config.store_host)
        try:
            check_sizes(self.root, config)
            self._open_parts(config)
        except BaseException:
            if self._sharing is not None:
                self._sharing.abandon()
            else:
                os.close(self._lock_fd)
            raise
        # The puts are the hot paths: the writer's methods are bound here, sparing every put
        # the delegating method below, which re-packs its keyword arguments (measured, plain
        # 100 B puts: 1.5 us bound against 1.8-2.1 us through the delegation; a batch of 128
        # x 100 B pays it once, about 2% of the batch).
        self.put = self._writer.put  # type: ignore[method-assign]
        self.put_async = self._writer.put_async  # type: ignore[method-assign]
        self.put_batch = self._writer.put_batch  # type: ignore[method-assign]
        self.put_sent = self._writer.put_sent  # type: ignore[method-assign]

    def _open_parts(self, config: StoreConfig) -> None:
        root = self.root
        sharing = self._sharing
        recovers = sharing is None or sharing.first  # a later opener of a shared store: no
        cut_at = sync_failure.read(root) if recovers else None
        abnormal = filenames.abort_file(root).exists() or cut_at is not None
        # Several processes would race to make the same next segment ahead of time.
        self._allocator = Preallocator(config.warm_bytes) \
            if config.background and sharing is None else None
        self.commitlog = CommitLog(filenames.commitlog_dir(root, config.commitlog_path),
                                   config.commitlog_segment_bytes, self._allocator,
                                   self._store_host, config.batch_write_buffer_bytes,
                                   config.commitlog_map_advice, config.stage_single_bytes)
        self._log = self.commitlog.appender.ptr
        if recovers:
            self.commitlog.load()
        if sharing is None:
            queues = ConsumeQueueTable(root, config.consumequeue_units, self._put_lock,
                                       config.mapped_files_budget, clean=not abnormal)
        else:
            queues = sharing.queues
            queues.clean = not abnormal
        self.consume_queues = queues
        queues.set_deliver_delays(parse_delay_levels(config.delay_levels))
        self.checkpoint = StoreCheckpoint(filenames.checkpoint_file(root))
        self.index = IndexService(filenames.index_dir(root), config.index_slots,
                                  config.index_entries, self._index_file_full) \
            if config.index_enable else None
        if self.index is not None:
            self.index.load()
        self.topics = TopicConfigManager(root, sync_each=config.flush == "sync") \
            if sharing is None else sharing.topics
        self.topics.load()
        self.offsets = ConsumerOffsetManager(root) if sharing is None else sharing.offsets
        self.offsets.load()
        # What this open found: the corrupt ranges skipped (logged too).
        self.recovery = RecoveryReport(0)
        if recovers:
            self.recovery = recover(self.commitlog, queues, self.index, self.checkpoint,
                                    abnormal, config.check_crc_on_recover, _native.java_hash,
                                    self.topics.deleted, cut_at)
            if cut_at is not None:  # the cut is durable (CommitLog.truncate syncs it)
                sync_failure.clear(root)
            self.topics.prune_deleted(self.commitlog.min_offset)
            filenames.abort_file(root).touch()
            sync_journal.fsync_dir(root)
        if sharing is None:
            self.commitlog.attach_last()
        else:
            sharing.wire(self.commitlog, self.index,
                         lambda seg: self.retention.retire(seg))  # retention: made below
            self._put_lock = sharing.write_lock
        self._flush = StoreFlush(config, self.root, self.commitlog, queues, self.index,
                                 self.topics, self.checkpoint, sharing)
        self._group_commit = self._flush.group_commit
        self._group_commit.on_fail = self._stop_after_failed_sync
        self._routes = TopicRoutes(self.topics, config.default_queue_nums)
        self._writer = StoreWriter(config, self.commitlog, queues, self._routes, self.index,
                                   self._group_commit, self._put_lock, self._store_host)
        self._reader = StoreReader(self.commitlog, queues, self.index, config.check_crc_on_read,
                                   config.max_message_size)
        self._replica: ReplicaLog | None = None
        if config.replica:
            self._replica = self._new_replica(self.commitlog.max_offset)
        if sharing is not None:
            sharing.write_lock.on_sync_failed = self._failed_elsewhere
            if (failed := self._group_commit.failed_elsewhere) is not None:
                self._failed_elsewhere(failed)  # opened after another process's failed sync
        self.retention = Retention(self.commitlog, queues, self.index, config.retention_hours,
                                   config.disk_clean_forcibly_ratio,
                                   lambda: disk_used_ratio(self.root), self._put_lock)
        self.disk_alarm = DiskAlarm(DiskThresholds(
            config.disk_max_used_ratio, config.disk_clean_forcibly_ratio, config.disk_full_ratio),
            str(root))
        if sharing is not None:
            self.retention.on_deleted = lambda: sharing.retention_done(self.commitlog)
            sharing.opened()
        self._housekeeper = None
        if config.background:
            led = (lambda task: task) if sharing is None else sharing.led
            self._housekeeper = Housekeeper([
                ("flush-commitlog", config.flush_interval_ms / 1000,
                 led(self._flush.flush_commitlog_timed)),
                ("flush-queues", config.consumequeue_flush_interval_ms / 1000,
                 led(self._flush.flush_queues_timed)),
                ("persist-offsets", OFFSET_PERSIST_INTERVAL_S, led(self.offsets.persist)),
                ("persist-topics", TOPICS_PERSIST_INTERVAL_S, led(self.topics.persist)),
                ("disk-check", DISK_CHECK_INTERVAL_S, self._check_disk),
                ("retention", config.clean_interval_ms / 1000, led(self._clean)),
            ])
            self._housekeeper.start()
        self._warmer: Warmer | None = None
        self._start_warmer(config)
        self._flush.start()

    def _start_warmer(self, role: StoreConfig) -> None:
        if role.warms and self._warmer is None:
            appender = self.commitlog.appender
            self._warmer = Warmer(self.commitlog.files, role.warm_bytes,
                                  lambda: appender.mapped_bytes)
            self._warmer.start()

    def _clean(self) -> None:
        if self._sharing is not None:  # every queue, also those only other processes used
            self._sharing.queues.open_all()
        self.retention.clean_once()

    def leads(self, service: str = "store") -> bool:
        """Whether this process runs the background ``service`` now: always, unless the store
        is shared; then exactly one process does at a time ("store": flushing, retention and
        offset persistence; "delay-levels", "timer": those services), and this call takes a
        service over when nobody runs it (its process closed the store or died)."""
        return self._sharing is None or self._sharing.leads(service)

    def resign(self, service: str) -> None:
        """This process stops running ``service`` (a shared store's; see leads)."""
        if self._sharing is not None:
            self._sharing.resign(service)

    # -- writing ----------------------------------------------------------------------------
    # put, put_async and put_batch are bound to the writer's in __init__; these definitions
    # document them.
    def put(self, topic: str, body: bytes, *, queue_id: int | None = None,
            options: PutOptions | None = None, **fields: Any) -> PutResult:
        """Append one message; keyword arguments are PutOptions fields (tags, keys,
        properties, flag, born_timestamp, reconsume_times), or give ``options``. With
        flush="sync" it returns once the message is on disk."""
        return self._writer.put(topic, body, queue_id=queue_id, options=options, **fields)

    def put_async(self, topic: str, body: bytes, *, queue_id: int | None = None,
                  options: PutOptions | None = None, **fields: Any) -> PendingPut:
        """put() without waiting for the disk: stored and readable on return;
        PendingPut.wait() blocks until durable (puts in flight share each fdatasync)."""
        return self._writer.put_async(topic, body, queue_id=queue_id, options=options,
                                      **fields)

    def put_batch(self, topic: str, bodies: list[bytes], *, queue_id: int | None = None,
                  options: PutOptions | None = None, **fields: Any) -> PutBatchResult:
        """Many messages into one queue in one native call, sharing tags, keys, properties
        and flag (see StoreWriter.put_batch)."""
        return self._writer.put_batch(topic, bodies, queue_id=queue_id, options=options,
                                      **fields)

    def put_encoded_batch(self, topic: str, data: bytes, *, queue_id: int,
                          properties: dict[str, str] | None = None) -> PendingBatch:
        """A batch body in RocketMQ's wire encoding into one queue, each entry keeping its
        flag and properties, ``properties`` added to each (see StoreWriter.put_encoded_batch)."""
        return self._writer.put_encoded_batch(topic, data, queue_id=queue_id,
                                              properties=properties)

    # -- the broker's and the services' entry points ----------------------------------------
    def put_record(self, topic: str, body: bytes, queue_id: int | None,
                   record: RecordInput) -> PendingPut:
        """put_async of a message the broker received or a service stores again: ``record``
        may carry what only they set (the producer's address and sysflag, properties already
        encoded, a unit's own tags code)."""
        return self._writer.put_record(topic, body, queue_id, record)

    def put_sent(self, topic: str, queue_id: int, body: bytes, props: bytes, tags_code: int,
                 flag: int, born_ts: int, reconsume_times: int,
                 born_host: bytes | None, keys: list[str]) -> tuple[int, int, int] | None:
        """put_record of a broker's common send, its fields checked by the broker's native
        parse, born_host encoded as records hold it (encode_host; None: the store's):
        (queue offset, commit-log offset, store time); None, with nothing stored, when
        put_record must take it (see StoreWriter.put_sent). Bound to the writer's at open."""
        return self._writer.put_sent(topic, queue_id, body, props, tags_code, flag, born_ts,
                                     reconsume_times, born_host, keys)

    def bind_send_path(self, path: Any, table: dict[str, int], durable_waits: bool) -> bool:
        """Let a broker's native SendPath put common sends many per call (see
        StoreWriter.bind_send_path); False when this store cannot."""
        return self._sharing is None and self._writer.bind_send_path(path, table, durable_waits)

    def put_entries(self, topic: str, data: bytes, queue_id: int,
                    shared: RecordInput) -> PendingBatch:
        """put_encoded_batch of a SEND_BATCH_MESSAGE: ``shared`` gives the request's
        properties, born time and host, sysflag and reconsume times."""
        return self._writer.put_entries(topic, data, queue_id, shared)

    @property
    def store_host_bytes(self) -> bytes:
        """The store host as records hold it (8 or 20 bytes): an offset message id's first
        part."""
        return self._store_host

    def validate_topic(self, topic: str) -> None:
        """Raise InvalidTopicError unless topic follows RocketMQ's rule ([%|a-zA-Z0-9_-],
        1 to 127 characters); a topic put to before passes without a check."""
        self._routes.validate(topic)

    def check_queue(self, topic: str, queue_id: int) -> None:
        """Raise InvalidQueueError unless queue_id is one of topic's queues (a topic not put to
        yet has default_queue_nums); a put checks the same."""
        self._routes.check_queue(topic, queue_id)

    def wait_for_message(self, topic: str, queue_id: int, offset: int, timeout: float) -> bool:
        """Block until the queue holds a message at offset, or timeout seconds pass (woken by
        an append in any process of a shared store)."""
        if self._sharing is not None:
            return self._sharing.wait_for_message(topic, queue_id, offset, timeout,
                                                  lambda: self._closed)
        return self._writer.wait_for_message(topic, queue_id, offset, timeout)

    # -- reading ----------------------------------------------------------------------------
    def get(self, topic: str, queue_id: int, offset: int, max_count: int = 32, *,
            tags: str | list[str] | None = None) -> GetResult:
        """RocketMQ's getMessage, with a tag filter (see StoreReader.get)."""
        return self._reader.get(topic, queue_id, offset, max_count, tags=tags)

    def get_bodies(self, topic: str, queue_id: int, offset: int, max_count: int = 1024,
                   max_bytes: int = 4 << 20) -> Bodies:
        """Bodies only, copied into one buffer (see StoreReader.get_bodies)."""
        return self._reader.get_bodies(topic, queue_id, offset, max_count, max_bytes)

    def get_by_commitlog_offset(self, offset: int) -> Message | None:
        self._catch_up()
        return self._reader.get_by_commitlog_offset(offset)

    def get_by_id(self, msg_id: str) -> Message | None:
        """By RocketMQ's offset message id (store host + commit-log offset)."""
        self._catch_up()
        return self._reader.get_by_id(msg_id)

    def query(self, topic: str, key: str, begin_ms: int = 0, end_ms: int | None = None,
              max_count: int = 32) -> list[Message]:
        """By KEYS or UNIQ_KEY, through the index (see StoreReader.query)."""
        self._catch_up()
        if self._sharing is not None:
            self._sharing.view.catch_up_index()
        return self._reader.query(topic, key, begin_ms, end_ms, max_count)

    def _catch_up(self) -> None:
        """A shared store: map what the other processes appended (reads by queue do this per
        queue; reads by offset need the whole log)."""
        if self._sharing is not None:
            self._sharing.view.catch_up_log()

    def min_offset(self, topic: str, queue_id: int) -> int:
        return self._reader.min_offset(topic, queue_id)

    def max_offset(self, topic: str, queue_id: int) -> int:
        """The next queue offset to be written (the queue's message count since creation)."""
        return self._reader.max_offset(topic, queue_id)

    def offset_for_time(self, topic: str, queue_id: int, timestamp_ms: int) -> int:
        """The first queue offset stored at or after timestamp_ms (StoreReader)."""
        return self._reader.offset_for_time(topic, queue_id, timestamp_ms)

    def earliest_store_time(self) -> int | None:
        """Store time of the oldest message still in the CommitLog."""
        self._catch_up()
        return self._reader.earliest_store_time()

    def topics_and_queues(self) -> list[tuple[str, int]]:
        if self._sharing is not None:
            self._sharing.queues.open_all()
        return self._reader.topics_and_queues()

    # -- replication (rmqstore.ha drives these) ----------------------------------------------
    @property
    def replica(self) -> ReplicaLog:
        """A replica's side (opened with replica=True): append its master's bytes, dispatch
        them (see replica.ReplicaLog). ReplicaStoreError on a store that is not a replica."""
        if self._replica is None:
            raise ReplicaStoreError(f"{self.root} was not opened as a replica")
        return self._replica

    def notify_appends(self, callback: Callable[[], object] | None) -> None:
        """callback() after every append from now on (None: no more), on the appending thread
        with the put lock held, so it must be quick: replication's HAService wakes its links
        with it. One callback at a time."""
        self._writer.on_append = callback

    def read_log_into(self, offset: int, dst: memoryview) -> int | None:
        """A master's side: raw commit-log bytes from ``offset`` into ``dst``, within their
        segment; returns the count (0 at the log's end), None when the log does not hold
        ``offset`` (replica.read_log_into)."""
        return read_log_into(self.commitlog, offset, dst)

    def read_log(self, offset: int, max_bytes: int, head_room: int = 0) -> bytearray | None:
        """A master's side: raw commit-log bytes from ``offset``, within its segment, after
        ``head_room`` free bytes; None when the log does not hold ``offset`` (replica.read_log)."""
        return read_log(self.commitlog, offset, max_bytes, head_room)

    def holds_boundary(self, offset: int) -> bool:
        """Whether a record, a BLANK or the log's end is at ``offset`` (a slave's start)."""
        return holds_boundary(self.commitlog, offset)

    def set_delay_ladder(self, delays_ms: tuple[int, ...]) -> None:
        """The delay of each level (ms) a delay queue's units add to their store time: a
        ScheduleService's own ladder, when it is not config.delay_levels."""
        with self._put_lock:
            self.consume_queues.set_deliver_delays(delays_ms)

    def _new_replica(self, dispatched: int) -> ReplicaLog:
        dispatcher = ReplicaDispatcher(self.commitlog, self.consume_queues, self.index,
                                       parse_delay_levels(self.config.delay_levels), dispatched,
                                       self._put_lock)
        return ReplicaLog(self.commitlog, dispatcher, self._put_lock,
                          self._group_commit.cue if self.config.flush == "sync" else None,
                          self._replica_dispatched, lambda: self._writer.sync_failed_at)

    # -- controller mode (RocketMQ 5): the role changes in place ---------------------------
    def become_replica(self) -> ReplicaLog:
        """Stop taking puts and take a master's bytes instead (ReplicasManager.changeToSlave;
        the HA client to the new master is the caller's). Everything stored so far is
        dispatched already. A replica already: its ReplicaLog."""
        with self._put_lock:
            if self._replica is None:
                self._writer.set_replica(True)
                self.commitlog.appender.detach()
                self._replica = self._new_replica(self.commitlog.max_offset)
                self._take_role_settings(replica=True)
            return self._replica

    def become_master(self) -> None:
        """Take puts again (AutoSwitchHAService.changeToMaster): the caller stopped the HA
        client; every record appended is dispatched first (reput's dispatchBehindBytes == 0),
        then appends continue where the log ends. No-op on a master."""
        replica = self._replica
        if replica is None:
            return
        replica.set_confirm_offset(None)
        while replica.pending():
            replica.dispatch()
        with self._put_lock:
            self._take_role_settings(replica=False)
            self.commitlog.attach_last()
            self._writer.set_replica(False)
            self._replica = None
        self._reader.confirm_offset = None

    def _take_role_settings(self, replica: bool) -> None:
        """The write path's settings of a store opened in the role taken in place: a
        replica's appends come through pwrite, so it runs no warmer and maps the segment it
        writes without readahead (StoreConfig.warm_bytes, commitlog_map_advice); a master
        takes the configured ones back."""
        if self.config.shared:  # never a replica (StoreConfig refuses the pair)
            return
        role = dataclasses.replace(self.config, replica=replica)
        files = self.commitlog.files
        files.advice = role.commitlog_map_advice
        last = files.last()
        if last is not None and not last.full:
            last.advise(role.commitlog_map_advice)
        if self._allocator is not None:
            self._allocator.warm_bytes = role.warm_bytes
        if not role.warms and self._warmer is not None:
            self._warmer.stop()
            self._warmer = None
        self._start_warmer(role)

    def truncate(self, offset: int) -> None:
        """Cut a replica's log at ``offset`` (a record boundary), with the consume-queue units
        and index entries of the records past it (DefaultMessageStore.truncateFiles): the
        divergent tail a returning slave's new master never had."""
        replica = self.replica
        with replica.dispatch_lock, self._put_lock:
            if offset >= self.commitlog.max_offset:
                return
            log.warning("truncating the commit log at %d (%d bytes dropped)", offset,
                        self.commitlog.max_offset - offset)
            # Every queue on disk: one not loaded since the open can hold units past offset.
            for cq in self.consume_queues.load_all_locked():
                if cq.max_phys > offset:
                    cq.truncate_dirty(offset)
            self.commitlog.files.truncate_dirty(offset)
            if self.index is not None:
                self.index.truncate(offset, self.retention.retire)
            replica.truncated(offset)
            self._group_commit.truncated(offset)

    @property
    def confirm_offset(self) -> int | None:
        """Controller mode: the offset up to which readers see records (None: everything)."""
        if self._replica is not None:
            return self._replica.confirm_offset
        return self._reader.confirm_offset

    def set_confirm_offset(self, offset: int | None) -> None:
        """A master's confirm offset (what every in-sync replica holds) caps its reads; a
        replica's (what its master sent) caps its dispatch, which is what its reads see."""
        if self._replica is not None:  # its queues hold nothing past it: no cap needed
            self._replica.set_confirm_offset(offset)
        else:
            self._reader.confirm_offset = offset

    def _replica_dispatched(self, ts: int) -> None:
        # Records up to ts are in their queues: the checkpoint may say so (flush_queues reads
        # the appender's last time), and waiting readers may look.
        self._log.last_ts = max(self._log.last_ts, ts)
        self._writer.notify_arrivals()

    # -- topics -----------------------------------------------------------------------------
    def create_topic(self, topic: str, queue_nums: int = 1) -> TopicConfig:
        """Create or resize a topic (persisted in config/topics.json: durable as a put is,
        at once with sync flush, within a second with async flush)."""
        check_topic(topic)
        if not 1 <= queue_nums <= 1024:
            raise ValueError("queue_nums must be within [1, 1024]")
        cfg = TopicConfig(topic, queue_nums, queue_nums)
        self.topics.put(cfg)
        self._writer.topic_changed(topic)
        return cfg

    def delete_topic(self, topic: str) -> bool:
        """Delete a topic: its config, its consume-queue files (unlinked now, unmapped after
        retention's grace period, as a reader may still hold one) and every group's offsets
        of it; its records stay in the commit log until retention reaches them, as in
        RocketMQ (DefaultMessageStore.cleanUnusedTopic). A later put creates it anew, from
        queue offset 0. False if the topic had neither config nor queues."""
        check_topic(topic)
        if self._sharing is not None:
            raise StoreError("delete_topic is not supported on a shared store (shared=True)")
        with self._put_lock:
            queues = self.consume_queues.remove_topic(topic)
            self._writer.topic_changed(topic)
            self._routes.forget(topic)
        for cq in queues:
            for seg in cq.files.files:
                self.retention.retire(seg)
            cq.files.files = []
        topic_dir = filenames.consumequeue_root(self.root) / topic
        on_disk = topic_dir.is_dir()  # with queues not loaded, perhaps
        shutil.rmtree(topic_dir, ignore_errors=True)
        had_config = self.topics.remove(topic, self.commitlog.max_offset)
        self.offsets.remove(topic=topic)
        log.info("topic %s deleted: %d consume queues loaded", topic, len(queues))
        return had_config or bool(queues) or on_disk

    def _stop_after_failed_sync(self, durable: int) -> None:
        """A sync of the commit log failed (FlushCue.on_fail): no more writes, and the mark
        that ends the log at ``durable`` when the store is next opened (sync_failure.py). A
        shared store's other processes are told through the control file: a sync there could
        succeed over the pages this failure left clean (a file opened after it reports
        nothing), and acknowledge records that the mark cuts."""
        if self._sharing is not None:
            self._group_commit.publish_failure(durable)
        self._writer.stop_after_failed_sync(durable)
        try:
            sync_failure.mark(self.root, durable)
        except OSError as exc:
            log.critical("the mark of the failed sync could not be written (%s): before this "
                         "store takes writes again, its commit log must be cut at offset %d",
                         exc, durable)
        if self._replica is not None:
            self._replica.sync_failed(durable)

    def _failed_elsewhere(self, durable: int) -> None:
        """Another process sharing this store failed to sync its commit log: stop as it did."""
        self._group_commit.fail(SyncFailedError(
            f"a sync of the shared commit log failed in another process (durable to offset "
            f"{durable})"), durable)

    def _check_disk(self) -> None:
        ratio = disk_used_ratio(self.root)
        self.disk_alarm.observe(ratio)
        writable = ratio < self.config.disk_full_ratio
        if writable != self._writer.writable:
            log.warning("disk %.0f%% full: writes %s", ratio * 100,
                        "resumed" if writable else "refused")
        self._writer.set_writable(writable)

    # -- consumer offsets ---------------------------------------------------------------
    def commit_offset(self, group: str, topic: str, queue_id: int, offset: int) -> None:
        """Record the next offset group will consume; on disk within 5 s (async flush) or
        before returning (sync flush). Raises as check_commit does."""
        self.check_commit(group, topic, queue_id, offset)
        self.offsets.commit(group, topic, queue_id, offset)
        if self.config.flush == "sync":
            self.offsets.persist()

    def check_commit(self, group: str, topic: str, queue_id: int, offset: int) -> None:
        """Raise unless the commit names a group (InvalidTopicError for a name outside
        Validators.checkGroup's rule), a topic that exists (InvalidTopicError) and one of its
        queues, at an offset within 0..its max offset (InvalidQueueError): what is committed
        is written to consumerOffset.json, where -5, 10^30 or a 40-digit queue id used to go."""
        check_group(group)
        if self.topics.get(topic) is None:
            raise InvalidTopicError(f"topic {topic[:130]!r} does not exist")
        self._routes.check_queue(topic, queue_id)
        if type(offset) is not int or offset < 0 or not self._reader.covers(topic, queue_id,
                                                                             offset):
            raise InvalidQueueError(f"offset {offset!r} is outside {topic}/{queue_id}'s "
                                    f"0..{self.max_offset(topic, queue_id)}")

    def committed_offset(self, group: str, topic: str, queue_id: int) -> int | None:
        return self.offsets.committed(group, topic, queue_id)

    # -- flushing (store_flush.py) -----------------------------------------------------
    def flush_queues(self) -> None:
        """Flush dirty consume queues and the index (FlushConsumeQueueService)."""
        self._flush.flush_queues()

    def _index_file_full(self, end_ts: int) -> None:
        self.checkpoint.index_ts = end_ts
        self.checkpoint.flush()

    @property
    def sync_failed_at(self) -> int | None:
        """Where the commit log was durable when a sync of it failed: writes are refused until
        the store is reopened, which ends the log there (sync_failure.py). None while no sync
        failed."""
        return self._writer.sync_failed_at

    @property
    def disk_full(self) -> bool:
        """Writes refused while the disk is above disk_full_ratio (the periodic disk check)."""
        return not self._writer.writable

    @property
    def durable_offset(self) -> int:
        """Commit-log offset up to which everything is on disk (record boundaries)."""
        return self._group_commit.flushed

    @property
    def commitlog_syncs(self) -> int:
        """Group commits (fdatasyncs of the commit log) this process ran for sync flush's
        waiters: puts / commitlog_syncs is how many puts each one covered."""
        return self._group_commit.syncs

    def wait_durable(self, offset: int) -> bool:
        """Block until the commit log is durable past offset (one group commit serves every
        waiter); False after sync_flush_timeout_ms."""
        return self._group_commit.wait(offset)

    def async_group_commit(self, loop: asyncio.AbstractEventLoop) -> AsyncGroupCommit:
        """Sync flush led from ``loop`` (a server's): puts made on that loop wait for
        durability with ``future(offset)`` instead of a thread (see aio_commit). Replaces the
        background flusher of puts in flight; made once, closed with the store."""
        return self._flush.async_group_commit(loop, self._put_lock)

    def flush(self) -> None:
        """Make everything written so far durable: log, queues, index, checkpoint, offsets
        (in a shared store, what every process wrote)."""
        self._flush.flush_all()
        self.offsets.persist()

    # -- lifecycle ------------------------------------------------------------------------
    def close(self) -> None:
        """Flush everything, remove the abort marker, release the lock. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._writer.close()
        if self._housekeeper is not None:
            self._housekeeper.stop()
        self._flush.stop()
        if self._warmer is not None:
            self._warmer.stop()
        sharing = self._sharing
        last = sharing is None or sharing.leave_begin()
        if sharing is not None:
            sharing.wake_waiters()
        self.flush()
        if self._allocator is not None:
            self._allocator.close()
        self.retention.close()
        self._reader.close()
        self.consume_queues.close()
        if self.index is not None:
            self.index.close()
        self.commitlog.close()
        self.topics.close()
        self.checkpoint.close()
        if last:  # the last process of a shared store closes it cleanly, as a single one does
            filenames.abort_file(self.root).unlink(missing_ok=True)
            sync_journal.fsync_dir(self.root)
        if sharing is not None:
            sharing.leave_end()
        else:
            os.close(self._lock_fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
