"""A controller-mode master's side of replication (RocketMQ 5's AutoSwitchHAService and
AutoSwitchHAConnection), on protocol/ha_epoch.py's frames: the 4.x transport of master.py and
master_link.py, plus

- the handshake: a slave names its controller broker id; the master answers with its log's
  end, its last epoch and every entry of its epoch file, from which the slave finds where
  their logs agree (epoch_client.py) and reports from there;
- an empty slave is sent the whole log (from the master's first offset; the last segment's
  start with syncFromLastFile);
- a frame never spans two epochs, and carries its epoch, that epoch's start and the master's
  confirm offset;
- the in-sync replicas (in_sync.py): every ack may grow the set, a closed link shrinks it, and
  sends wait for every member (allAckInSyncStateSet).
"""

from __future__ import annotations

import logging

from ..epoch_file import EpochFile
from ..net.tls import TlsServerConfig
from ..protocol.ha import HAProtocolError
from ..protocol.ha_epoch import (
    MASTER_TRANSFER,
    MasterHandshake,
    SlaveHandshake,
    SlaveMessages,
    encode_transfer,
    pack_transfer_header,
)
from ..store import MessageStore
from .config import HAConfig
from .group_transfer import Callback
from .in_sync import InSyncReplicas
from .master import HAService
from .master_link import MasterLink

log = logging.getLogger(__name__)


class EpochMasterLink(MasterLink):
    """One slave: its handshake, its reports, and frames bounded by epochs."""

    FEEDS_NATIVELY = False  # its frames carry epochs: sent from the event loop

    def __init__(self, service: EpochHAService) -> None:
        super().__init__(service)
        self._epoch_service = service
        self._messages = SlaveMessages()
        self.slave_id: int | None = None
        self.sync_from_last_file = False
        self.master_end_at_transfer = -1  # lastMasterMaxOffset
        self._epoch = (-1, 0, 0)  # the epoch of the frame being packed: number, start, end

    def data_received(self, data: bytes) -> None:
        self.last_read = self._loop.time()
        try:
            messages = self._messages.feed(data)
        except HAProtocolError as exc:
            self.close(f"bad message: {exc}")
            return
        for message in messages:
            if isinstance(message, SlaveHandshake):
                self._handshake(message)
            elif self.slave_id is None:
                self.close("reported before its handshake")
                return
            else:
                self._report(message)
            if self.closed:
                return

    def _handshake(self, hello: SlaveHandshake) -> None:
        service = self._epoch_service
        if hello.broker_id == service.isr.me:
            self.close(f"claims this master's own broker id {hello.broker_id}")
            return
        self.slave_id = hello.broker_id
        self.sync_from_last_file = hello.sync_from_last_file
        if hello.async_learner:
            log.warning("HA: slave %s asks to be an async learner, which this master does not "
                        "support: it is treated as any slave", self.peer)
        service.isr.connected(hello.broker_id)
        answer = MasterHandshake(service.store.commitlog.max_offset, service.epochs.last_epoch,
                                 tuple(service.epochs.entries))
        assert self._transport is not None
        self._transport.write(answer.encode())
        log.info("HA: slave %s is broker %d; handshake with epochs %s, end %d", self.peer,
                 hello.broker_id, service.epochs.entries, answer.max_offset)

    def _report(self, offset: int) -> None:
        service = self._epoch_service
        if self._next is None:
            start = service.epoch_start_offset(offset, self.peer, self.sync_from_last_file)
            if start is None:
                self.close(f"refused its start offset {offset}")
                return
            self._begin(start)
        elif offset > service.store.commitlog.max_offset:
            self.close(f"reported offset {offset}, past this master's end: a diverged log")
            return
        self.ack_offset = offset
        assert self.slave_id is not None
        service.isr.on_ack(self.slave_id, offset, self.master_end_at_transfer)
        if self._next == service.store.commitlog.max_offset:
            self._idle()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.slave_id is not None:
            self._epoch_service.isr.disconnected(self.slave_id)

    HEADER_SIZE = MASTER_TRANSFER.size

    def _frame_limit(self, offset: int) -> int:
        """A frame ends where its epoch does; 0 (the link closed) when no epoch holds it."""
        service = self._epoch_service
        end = service.store.commitlog.max_offset
        self.master_end_at_transfer = end
        epoch = service.epochs.at(offset, end)
        if epoch is None:
            self.close(f"no epoch holds offset {offset} (epochs {service.epochs.entries})")
            return 0
        self._epoch = epoch
        return min(service.config.transfer_batch_bytes, epoch[2] - offset)

    def _pack_header(self, buf: memoryview, offset: int, size: int, at: int) -> None:
        number, start, _ = self._epoch
        pack_transfer_header(buf, offset, size, number, start, self._epoch_service.isr.confirm,
                             at)

    def _heartbeat_frame(self, offset: int) -> bytes:
        service = self._epoch_service
        epoch = service.epochs.at(offset, service.store.commitlog.max_offset)
        number, start = (epoch[0], epoch[1]) if epoch is not None else \
            (service.epochs.last_epoch, service.store.commitlog.max_offset)
        return encode_transfer(offset, b"", number, start, service.isr.confirm)

    def _idle(self) -> None:
        """Nothing left to send: the slave is caught up once it acknowledged all of it (what
        sits in socket buffers on a slow link is not on the slave yet)."""
        if self.slave_id is not None and \
                self.ack_offset >= self._epoch_service.store.commitlog.max_offset:
            self._epoch_service.isr.on_idle(self.slave_id)


class EpochHAService(HAService):
    """The master's HA port in controller mode: an HAService whose links speak ha_epoch and
    whose sends wait for the in-sync replicas."""

    link_class = EpochMasterLink

    def __init__(self, store: MessageStore, epochs: EpochFile, isr: InSyncReplicas,
                 host: str = "0.0.0.0", port: int = 10912,
                 config: HAConfig | None = None, tls: TlsServerConfig | None = None) -> None:
        super().__init__(store, host, port, config, tls)
        self.epochs = epochs
        self.isr = isr

    def epoch_start_offset(self, requested: int, peer: str, from_last_file: bool) -> int | None:
        """Where a slave reporting ``requested`` after its handshake is sent from: an empty
        one from this log's first offset (AutoSwitchHAConnection), or its last segment's
        start with syncFromLastFile; any other as HAService.start_offset checks it."""
        if requested != 0:
            return self.start_offset(requested, peer)
        log_ = self.store.commitlog
        start = log_.max_offset - log_.max_offset % log_.segment_bytes if from_last_file \
            else log_.min_offset
        log.info("HA: slave %s is empty: sending from offset %d", peer, start)
        return start

    def _push_wanted(self) -> bool:
        return True  # the confirm offset follows the log even with no slave linked

    _loop_pushes = True  # _push_all moves the confirm offset

    def _push_all(self) -> None:
        """The log grew (any append, on the loop's thread now): the confirm offset may follow
        it, then the links push."""
        self.isr.appended()
        super()._push_all()

    def when_replicated(self, end: int, callback: Callback, ok: object = True,
                        failed: object = False) -> None:
        """callback(ok) once the in-sync replicas hold every byte below ``end``."""
        self.isr.when_replicated(end, callback, ok, failed)

    async def close(self) -> None:
        await super().close()
        self.isr.close()
