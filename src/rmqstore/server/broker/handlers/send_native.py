"""The common send answered from its frame, before any decoding in Python: the Dispatcher's
frame_handler for SEND_MESSAGE (10) and SEND_MESSAGE_V2 (310).

One C-API call (_native.new_send_path's parse: send_parse.c through send_path.c, without a GIL
drop) reads the frame: a JSON header in the common shape, a two-way request, sysFlag 0, no
batch, queueId >= 0, properties that can be stored as sent and that no broker service rewrites
(delay levels, timers, transactions). Then the checks SendProcessor._target makes, once per
topic config: an existing, writable, non-retry topic that may be sent to, the queue id within
its queues; the broker writable, neither a slave nor in controller mode.
The store takes it only into a queue that took a put before, a body within maxMessageSize and
under the compression threshold, while puts are not refused (MessageStore.put_sent). Anything
else is left, untouched, to SendProcessor, which answers it as it always has; so are every
request while ACL is on (the Dispatcher's request_filter must see each one).

The record stored and the answer are SendProcessor's for the same request: the stored
properties, the born host, the SUCCESS frame template, the traffic counters, the long-poll
wake-up, the sync-flush wait and a SYNC_MASTER's wait for a slave (FLUSH_DISK_TIMEOUT,
SLAVE_NOT_AVAILABLE, FLUSH_SLAVE_TIMEOUT answered through SendProcessor, the two waits joined
by its Outcome), the SUCCESS frame (SendProcessor's template, filled in C: send_path.c). A
SYNC_MASTER's sends are taken here because the Python path costs its loop ~60 us more a send,
and that loop also answers the slave's reports. The
environment variable RMQSTORE_NATIVE_SEND=0 turns the path off (tests compare the two).

A whole read goes first to SendPath.serve (send_read.c) in one call: the leading frames that
are common sends to a topic of the fast table are checked, stored, indexed, answered and
counted there (the traffic counters, and the RPC latencies when the observer is the broker's
RpcLatency: send_counts.c, folded in when read); Python sees each send only when a long-poll
wake-up or another observer needs it. Once a connection's read was served whole, with nothing
to note, on_read arms the connection's ReadFront (send_front.c, its data_received), which
serves its next reads in C without on_read or the Python reader, until anything they read
changes (see new_front); a SYNC_MASTER's front hands each read whose answers wait for a slave
to _hold (a Python call per read fewer than on_read's two). Not with sync flush: on_read may
sync a lone waiting read at once.
A topic enters the table when a send of it passed every check above on the per-frame path;
any change that bears on a check (a topic created, updated or deleted, the broker's
permission, its role) empties the table, so the next send of each topic takes the per-frame
path again. Sends that wait for the disk or a slave (sync flush or SYNC_MASTER, WAIT=true) are
serve's too, a read of them at a time (serve stops where WAIT changes): stored in the one call,
their SUCCESS answers are held, as one piece, until the read's last record is durable (one
when_durable) and/or on a slave (one when_replicated, joined by Outcome), then written in one
transport write; a failed wait answers each send through SendProcessor. Held answers keep
their order against the connection's later waiting sends (durability and replication resolve
in offset order), as the per-frame path's do. ACL on, a controller-mode broker, a slave or a
broker without write permission send nothing through serve; nor does a shared store.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from functools import partial
from time import perf_counter as _perf_counter  # a global name fewer on the hot path

from ...._native import ReadFront, new_send_path
from ....aio_commit import AsyncGroupCommit
from ....errors import InvalidTopicError
from ....message import PutResult, PutStatus
from ....net import ConnectionClosed
from ....net.dispatch import Channel, Dispatcher
from ....protocol import RemotingCommand, RequestCode, ResponseCode
from ....protocol.frame import FRAME_HEADROOM_BYTES
from ....record import encode_host
from ....store import MessageStore
from ....topic_validator import is_not_allowed_send
from ..config import BrokerConfig
from ..longpoll import ArrivalWaiters
from ..metrics.rpc import RPC_LATENCY_BOUNDS_MS, RpcLatency
from ..replication import Replication
from ..role import BrokerRole
from ..stats.traffic import MESSAGE_SIZE_BOUNDS, Traffic, message_type
from ..topics import PERM_WRITE, RETRY_PREFIX, BrokerTopics
from .send_outcome import Outcome

_UNKNOWN = b"?"  # a peer whose born host is not cached yet
ENV_SWITCH = "RMQSTORE_NATIVE_SEND"  # "0": every send takes SendProcessor's path
_SUCCESS = int(ResponseCode.SUCCESS)  # an enum member's lookup costs a read its own call

# SendProcessor's SUCCESS frame: (opaque, store host, commit-log offset, queue id, queue offset).
OkAnswer = Callable[[int, bytes, int, int, int], bytes]
# The answer to a stored message whose durability or replication failed: SendProcessor's.
Answer = Callable[[RemotingCommand, PutResult, int, PutStatus], "RemotingCommand | bytes"]


# A held send of a waiting read (send_read.c's HELD_ITEM): opaque, code, queue id, queue
# offset, phys offset, store time.
HELD = struct.Struct("<iiiqqq")
# What a held read costs beside its answers and items (its callbacks, the group commit's heap
# entry), counted against its connection's buffer cap
HELD_READ_COST = 512
# serve's flags (send_read.c): a note per send; the RPC latencies counted in C; held sends
# not cued (their wait syncs them)
SERVE_NOTES, SERVE_RPC, SERVE_HELD_UNCUED = 1, 2, 4


def native_send_enabled() -> bool:
    return os.environ.get(ENV_SWITCH, "1") != "0"


class NativeSend:
    """Bound to one broker's send path; runs on its event loop only."""

    def __init__(self, config: BrokerConfig, store: MessageStore, topics: BrokerTopics,
                 role: BrokerRole, traffic: Traffic, arrivals: ArrivalWaiters,
                 group_commit: AsyncGroupCommit | None, replication: Replication | None,
                 rewrite_props: frozenset[str], ok_answer: OkAnswer,
                 answer: Answer, born_host: Callable[[str], tuple[str, int] | None],
                 dispatcher: Dispatcher, answer_pieces: tuple[bytes, ...]) -> None:
        self._config, self._topics, self._role = config, topics, role
        self._put_sent, self._validate_topic = store.put_sent, store.validate_topic
        self._traffic, self._notify = traffic, arrivals.notify
        self._pulls, self._listened = arrivals.watched()  # notify() only while not both empty
        # Whether a listener watches a queue of a fast topic: the broker's own (the delay
        # levels', the timer's) watch topics no producer may send to, and serve noted every
        # send for them. Checked again whenever a topic enters the table or a listener comes.
        self._fast_listened = True
        self._listened_seen = -1  # len(listened) when last checked; -1: check again
        # answers: the SUCCESS frame, any other through SendProcessor, when durable if so
        self._ok_answer, self._answer, self._dispatcher = ok_answer, answer, dispatcher
        self._group_commit = group_commit
        # a SYNC_MASTER's (sends with WAIT=true are answered once a slave holds them)
        self._replication = replication if replication is not None and replication.sync \
            else None
        sync_master = self._replication is not None
        self._born_host = born_host
        self._born_hosts: dict[str, bytes | None] = {}  # peer -> born host as stored
        self._host = store.store_host_bytes  # msgId's first part
        self._taken_apart = 0  # sends answered here one frame a call (on_frame)
        path = new_send_path(config.cluster_name, rewrite_props, FRAME_HEADROOM_BYTES,
                             answer_pieces)
        self._path = path
        self._parse, self._serve, self._count_into = path.parse, path.serve, path.count_into
        self._counted_for: object = self  # the observer serve's counting was set for: none yet
        # held sends wait for the group commit, which syncs them: no cue (sync flush)
        self._uncued = SERVE_HELD_UNCUED if group_commit is not None else 0
        self._flags = SERVE_NOTES | self._uncued
        self._may_hold = group_commit is not None or sync_master  # reads whose answers wait
        self._timed = True  # a read's start is wanted: an observer Python tells
        # topic -> how many queue ids serve may put to: the fast table (see the docstring)
        self.fast_topics: dict[str, int] = {}
        self._fast_bound = not role.controller_mode and store.bind_send_path(
            path, self.fast_topics, group_commit is not None or sync_master)
        self._served = 0  # sends answered by serve through on_read (see served)
        # Reads answered whole with no notes are armed for a connection's ReadFront
        # (send_front.c), which serves them without on_read's Python; a SYNC_MASTER's reads
        # too, whose answers it hands to _hold; never a read whose answers may wait for
        # the group commit (sync flush: on_read may sync it at once, sync_now).
        self._fronts = group_commit is None
        # topic -> (the config checked, how many queue ids it takes; 0: none, not ours)
        self._gates: dict[str, tuple[object, int]] = {}
        # What the answer and the observer see of a request taken here, by code.
        self._stand_ins = {code: RemotingCommand(code) for code in (
            RequestCode.SEND_MESSAGE, RequestCode.SEND_MESSAGE_V2)}

    def on_frame(self, channel: Channel, frame: bytes, started: float) -> bool:
        parsed = self._parse(frame)
        if type(parsed) is int:
            return False
        (code, opaque, topic, queue_id, flag, born_ts, reconsume, wait, props, uniq, keys,
         tags_code, body) = parsed  # type: ignore[misc]
        role = self._role  # the broker writable, neither a slave nor in controller mode
        if queue_id >= self._queues_open(topic) \
                or not self._config.broker_permission & PERM_WRITE or role.controller_mode \
                or role.slave:
            return False
        index = [uniq] if uniq else []
        if keys:
            index.extend(k for k in keys.split(" ") if k)  # index.index_keys' rule
        host = self._born_hosts.get(channel.peer, _UNKNOWN)
        if host is _UNKNOWN:
            host = self._encoded_host(channel.peer)
        stored = self._put_sent(topic, queue_id, body, props, tags_code, flag, born_ts,
                                reconsume, host, index)
        if stored is None:
            return False
        self._taken_apart += 1
        self._notify(topic, queue_id)
        self._traffic.stored(topic, message_type(props), 1, len(body))
        qoff, phys, now = stored
        if self._fast_bound:  # every check above passed
            if len(self.fast_topics) >= 4096:
                self.fast_topics.clear()
            self.fast_topics[topic] = self._gates[topic][1]
            self._listened_seen = -1
            self._path.bump_epoch()  # a listener may watch it: fronts ask on_read again
        commit = self._group_commit if wait else None
        replication = self._replication if wait else None
        if commit is None and replication is None:
            self._answer_ok(channel, code, opaque, queue_id, qoff, phys, started)
            return True

        def answer(status: PutStatus) -> None:
            self._answer_stored(status, channel, code, opaque, queue_id, qoff, phys, now,
                                started)

        _wait(commit, replication, phys, answer)
        return True

    def _answer_ok(self, channel: Channel, code: int, opaque: int, queue_id: int, qoff: int,
                   phys: int, started: float) -> None:
        """SendProcessor.answer_put's frame: JSON, PUT_OK, not in controller mode."""
        # What the answer and the observer see of the request: its code and opaque (a
        # command per code, reused: nothing keeps it past the answer).
        request = self._stand_ins[code]
        request.opaque = opaque
        self._dispatcher.respond(channel, request, self._ok_answer(
            opaque, self._host, phys, queue_id, qoff), started)

    def _answer_stored(self, status: PutStatus, channel: Channel, code: int, opaque: int,
                       queue_id: int, qoff: int, phys: int, now: int, started: float) -> None:
        """A waiting send's answer once its record is durable and/or on a slave (PUT_OK), or
        why not (FLUSH_DISK_TIMEOUT, SLAVE_NOT_AVAILABLE, FLUSH_SLAVE_TIMEOUT)."""
        if status is PutStatus.PUT_OK and not self._role.controller_mode:
            self._answer_ok(channel, code, opaque, queue_id, qoff, phys, started)
            return  # else SendProcessor's checks, at answer time
        request = RemotingCommand(code, opaque=opaque)
        result = PutResult(PutStatus.PUT_OK, queue_id, qoff, phys, now, self._host)
        self._dispatcher.respond(channel, request, self._answer(request, result, queue_id, status),
                                 started)

    def on_read(self, channel: Channel, data: bytes,
                max_frame_bytes: int) -> tuple[int, bytes] | None:
        """The Dispatcher's read_handler: the common sends at the start of data stored by
        serve; how many bytes they took and their answers."""
        if not self.fast_topics:  # emptied by any change of role or permission
            return None
        host = self._born_hosts.get(channel.peer, _UNKNOWN)
        if host is _UNKNOWN:
            host = self._encoded_host(channel.peer)
        observer = self._dispatcher.observer
        if observer is not self._counted_for:
            self._count_for(observer)
        started = _perf_counter() if self._timed else 0.0
        pulls, listened = self._pulls, self._listened
        if len(listened) != self._listened_seen:
            self._check_listened()
        # a pull held on some queue, or a listener on a queue of a fast topic
        watched = pulls or self._fast_listened
        served = self._serve(data, host, max_frame_bytes,
                             self._flags | SERVE_NOTES if watched else self._flags)
        if served is None:
            return None
        taken, answers, notes, held = served
        if type(notes) is int:  # counted in C, nobody to tell
            self._served += notes
            if self._fronts and taken == len(data):  # the next reads: the front's alone
                front = channel.front  # type: ignore[attr-defined]
                if front is not None and not front.armed:
                    front.arm(self._path, self._dispatcher, pulls, listened, host,
                              max_frame_bytes, self._flags,
                              partial(self._hold, channel) if self._may_hold else None)
        else:
            self._served += len(notes)
            if watched:
                notify = self._notify
                for _code, topic, queue_id, _size in notes:
                    key = (topic, queue_id)
                    if key in pulls or key in listened:
                        notify(topic, queue_id)
            # an observer serve does not count for; a held read's: at its answer
            if observer is not None and not self._flags & SERVE_RPC and held is None:
                elapsed = _perf_counter() - started
                stand_ins = self._stand_ins
                for code, _topic, _queue_id, _size in notes:
                    observer(stand_ins[code], _SUCCESS, elapsed)
        if held is None:
            return taken, answers
        # A read wholly of waiting sends (a lone producer's send): synced in this call and
        # answered with it; with frames after them, their answers keep waiting for the
        # loop's sync, after the rest of the read's (the order the Python path answers in).
        commit = self._group_commit
        if commit is not None and taken == len(data) and self._replication is None \
                and not self._role.controller_mode \
                and commit.sync_now(_last(held), id(channel), lambda: _send(channel, answers)):
            self._observe_held(held, started)  # durable now, and answered
            return taken, b""
        self._hold(channel, answers, held, started)
        return taken, b""

    def _check_listened(self) -> None:
        """Whether a listener watches a queue serve may put to (_fast_listened)."""
        listened, fast = self._listened, self.fast_topics
        self._fast_listened = any(topic in fast for topic, _queue_id in listened)
        self._listened_seen = len(listened)

    def _count_for(self, observer: object) -> None:
        """serve counts the traffic always, the RPC latencies when the observer is the
        broker's RpcLatency (any other is told of each send from serve's notes)."""
        rpc = observer.served if type(observer) is RpcLatency else None
        self._count_into(self._traffic.served, MESSAGE_SIZE_BOUNDS, rpc, RPC_LATENCY_BOUNDS_MS)
        self._flags = (SERVE_RPC if rpc is not None else SERVE_NOTES if observer is not None
                       else 0) | self._uncued
        # the per-send observer, or a held read's at its answer, wants the read's start
        self._timed = observer is not None and (rpc is None or self._may_hold)
        self._counted_for = observer
        self._path.bump_epoch()

    def _hold(self, channel: Channel, answers: bytes, held: bytes, started: float) -> None:
        """A read of waiting sends (on_read's, or the connection's front's): its SUCCESS
        answers once its last record is durable and/or on a slave, else each send's answer
        for the failed wait. What is held counts against the connection's buffer cap until
        then: a producer that pipelines sends while the disk or the slave lags is read no
        further once it passes the cap."""
        size = len(answers) + len(held) + HELD_READ_COST
        channel.hold(size)

        def answer(status: PutStatus) -> None:
            channel.release(size)
            if status is PutStatus.PUT_OK and not self._role.controller_mode:
                self._observe_held(held, started)
                try:  # _send's, inline: once per waiting read
                    channel.send_frame(answers)
                except ConnectionClosed:
                    pass  # the producer retries; the records are stored
                return
            for opaque, code, queue_id, qoff, phys, now in HELD.iter_unpack(held):
                self._answer_stored(status, channel, code, opaque, queue_id, qoff, phys, now,
                                    started)

        commit, replication = self._group_commit, self._replication
        if commit is None and replication is not None:  # a SYNC_MASTER's: _wait's, inline
            replication.when_replicated(answer)
        else:
            _wait(commit, replication, _last(held), answer)

    def _observe_held(self, held: bytes, started: float) -> None:
        """The observer's SUCCESS for each send of a held read, at its answer."""
        observer = self._dispatcher.observer
        if observer is not None and started:
            elapsed = _perf_counter() - started
            for _opaque, code, *_ in HELD.iter_unpack(held):
                observer(self._stand_ins[code], _SUCCESS, elapsed)

    def new_front(self, conn: Channel, slow: Callable[[bytes], None],
                  handle: Callable[..., None],
                  failed: Callable[[BaseException], None]) -> ReadFront:
        """The Dispatcher's read_front: a server connection's reader in C, disarmed until
        on_read arms it."""
        return ReadFront(conn, slow, handle, failed)

    @property
    def served(self) -> int:
        """Sends answered by serve (a subset of taken): through on_read or a ReadFront."""
        return self._served + self._path.front_served

    @property
    def taken(self) -> int:
        """Sends answered here, per frame or by their read (logged at close: what tests look
        for)."""
        return self._taken_apart + self.served

    def clear_fast(self) -> None:
        """Something a send's checks read changed: every topic takes the per-frame path again
        until a send of it passes them."""
        self.fast_topics.clear()
        self._path.bump_epoch()

    def _encoded_host(self, peer: str) -> bytes | None:
        """The born host SendProcessor stores for a peer, encoded as the record holds it."""
        address = self._born_host(peer)
        host = None if address is None else encode_host(*address)
        if len(self._born_hosts) >= 4096:
            self._born_hosts.clear()
        self._born_hosts[peer] = host
        return host

    def _queues_open(self, topic: str) -> int:
        """How many queue ids a common send to topic may name (0: none; SendProcessor then
        decides): SendProcessor._target's checks, made again whenever its config changes."""
        cfg = self._topics.get(topic)
        gate = self._gates.get(topic)
        if gate is not None and gate[0] is cfg:
            return gate[1]
        queues = 0
        if cfg is not None and not topic.startswith(RETRY_PREFIX) \
                and not is_not_allowed_send(topic) and cfg.perm & PERM_WRITE:
            try:
                self._validate_topic(topic)
                queues = max(cfg.read_queue_nums, cfg.write_queue_nums)
            except InvalidTopicError:
                pass
        if len(self._gates) >= 4096:
            self._gates.clear()
        self._gates[topic] = (cfg, queues)
        return queues


def _last(held: bytes) -> int:
    """The commit-log offset of a held read's last record."""
    return HELD.unpack_from(held, len(held) - HELD.size)[4]


def _send(channel: Channel, answers: bytes) -> None:
    """A held read's SUCCESS answers, written once durable."""
    try:
        channel.send_frame(answers)
    except ConnectionClosed:
        pass  # the producer retries; the records are stored


def _wait(commit: AsyncGroupCommit | None, replication: Replication | None, phys: int,
          answer: Callable[[PutStatus], None]) -> None:
    """answer(status) once the record at commit-log offset phys is durable and/or on a slave
    (at least one of commit and replication is given): one wait, or both joined by Outcome."""
    if replication is None:
        commit.when_durable(phys, lambda ok: answer(  # type: ignore[union-attr]
            PutStatus.PUT_OK if ok else PutStatus.FLUSH_DISK_TIMEOUT))
    elif commit is None:
        replication.when_replicated(answer)
    else:
        outcome = Outcome(2, answer)
        commit.when_durable(phys, outcome.flushed)
        replication.when_replicated(outcome.replicated)
